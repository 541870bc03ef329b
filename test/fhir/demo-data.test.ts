import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Observation, Patient, RiskAssessment } from 'fhir/r4.js';
import { FhirClient } from '../../src/fhir/client.js';
import { DEMO_DATA_TAG, VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { DEMO_PATIENT_IDS, demoPatientList, seedDemoData } from '../../src/sandbox/demo/patients.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';

let server: StartedFhirServer;
let client: FhirClient;
const NOW = new Date('2026-06-01T12:00:00Z');
beforeAll(async () => {
  server = await startFhirServer();
  client = new FhirClient({ baseUrl: server.baseUrl });
});
afterAll(async () => {
  await server?.close();
});

describe('seedDemoData', () => {
  it('loads synthetic patients with years of results, idempotently, all tagged demo', async () => {
    const first = await seedDemoData(server.baseUrl, { now: NOW });
    expect(first.patientIds).toEqual(DEMO_PATIENT_IDS);
    await seedDemoData(server.repository, { now: NOW }); // second time, straight into the repository
    const patients = await client.search<Patient>('Patient', { _count: 100 });
    expect(patients.map((p) => p.id).sort()).toEqual(Object.values(DEMO_PATIENT_IDS).sort());
    for (const p of patients) {
      expect(p.name?.[0].family).toMatch(/^Demo-/);
      expect(p.meta?.tag).toContainEqual(expect.objectContaining({ system: DEMO_DATA_TAG.system, code: 'demo' }));
    }
    const all = await client.search<Observation>('Observation', { code: VBMD_SUMMARY_CODE_TOKEN, _count: 100 });
    expect(all).toHaveLength(first.analyses);
    for (const o of all) {
      expect(o.meta?.tag).toContainEqual(expect.objectContaining({ code: 'demo' }));
      expect(fhirValidationIssues(o)).toEqual([]);
    }
  });

  it('lists the demo patients for pickers, clearly synthetic', () => {
    const list = demoPatientList();
    expect(list.map((p) => p.id).sort()).toEqual(Object.values(DEMO_PATIENT_IDS).sort());
    for (const p of list) expect(p.name).toMatch(/Demo-.*\(synthetic\)$/);
  });

  it('the declining patient goes from normal to osteoporosis over about four years', async () => {
    const obs = await client.search<Observation>('Observation', {
      patient: `Patient/${DEMO_PATIENT_IDS.declining}`,
      code: VBMD_SUMMARY_CODE_TOKEN,
      _sort: '-date',
    });
    const cats = obs.map((o) => o.interpretation?.[0].coding?.[0].code);
    expect(cats[0]).toBe('L'); // osteoporosis range: Low, never the critical LL
    expect(cats[cats.length - 1]).toBe('N');
    const years = (Date.parse(obs[0].effectiveDateTime!) - Date.parse(obs[obs.length - 1].effectiveDateTime!)) / (365.25 * 86400_000);
    expect(years).toBeGreaterThan(3.5);
    expect(years).toBeLessThan(4.5);
    const values = obs.map((o) => o.valueQuantity?.value ?? NaN);
    expect([...values].sort((a, b) => a - b)).toEqual(values); // newest first = lowest first
    const risks = await client.search<RiskAssessment>('RiskAssessment', { patient: `Patient/${DEMO_PATIENT_IDS.declining}` });
    expect(risks).toHaveLength(obs.length);
  });

  it('the thoracic patient has thoracic-extrapolated results, the latest contrast-enhanced', async () => {
    const obs = await client.search<Observation>('Observation', { patient: `Patient/${DEMO_PATIENT_IDS.thoracic}`, _sort: '-date' });
    expect(obs.every((o) => o.method?.coding?.[0].code === 'basis-thoracic-extrapolated')).toBe(true);
    expect(obs[0].note?.some((n) => n.text.includes('Contrast-enhanced'))).toBe(true);
    const stable = await client.search<Observation>('Observation', { patient: `Patient/${DEMO_PATIENT_IDS.stableNormal}` });
    expect(stable.every((o) => o.interpretation?.[0].coding?.[0].code === 'N')).toBe(true);
    const osteopenic = await client.search<Observation>('Observation', { patient: `Patient/${DEMO_PATIENT_IDS.osteopenic}` });
    expect(osteopenic.every((o) => o.interpretation?.[0].coding?.[0].code === 'L')).toBe(true);
  });
});
