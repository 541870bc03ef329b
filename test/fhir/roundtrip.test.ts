import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device, DiagnosticReport, DocumentReference, Observation, Provenance, RiskAssessment } from 'fhir/r4.js';
import { FhirClient } from '../../src/fhir/client.js';
import { UCUM_MG_PER_CM3, VBMD_CODE_SYSTEM, VBMD_SUMMARY_CODE, VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { FhirError } from '../../src/fhir/fhir-error.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { writeAnalysis } from '../../src/fhir/write-analysis.js';
import type { FaultyProxy } from './support.js';
import { startFaultyProxy } from './support.js';
import { forStudy, indeterminateReport, lumbarOsteoporosisReport, thoracicContrastReport, withFractures } from './reports.js';

/**
 * Round trip over real HTTP: the mapping written by the client through a transaction to the in-process FHIR
 * server, read back by the searches the CDS service and the SMART app use. A proxy injects 503s.
 */
let server: StartedFhirServer;
let proxy: FaultyProxy;
let direct: FhirClient;
const fastRetry = { baseDelayMs: 5, maxDelayMs: 20 };

beforeAll(async () => {
  server = await startFhirServer({ port: 0 });
  proxy = await startFaultyProxy(server.baseUrl);
  direct = new FhirClient({ baseUrl: server.baseUrl });
});
afterAll(async () => {
  await proxy?.close();
  await server?.close();
});

/** The patient's vbmd resources by kind (summary Observations and fracture findings apart). */
async function countFor(patient: string): Promise<Record<string, number>> {
  const obs = await direct.search<Observation>('Observation', { patient });
  const summary = obs.filter((o) => o.code.coding?.some((c) => c.code === VBMD_SUMMARY_CODE.code));
  const risk = await direct.search<RiskAssessment>('RiskAssessment', { patient });
  const reports = await direct.search<DiagnosticReport>('DiagnosticReport', { patient });
  const ids = new Set([...obs.map((o) => `Observation/${o.id}`), ...reports.map((r) => `DiagnosticReport/${r.id}`)]);
  const prov = (await direct.search<Provenance>('Provenance', { _count: 1000 })).filter((p) => p.target.some((t) => ids.has(t.reference ?? '')));
  return {
    DiagnosticReport: reports.length,
    Observation: summary.length,
    Fracture: obs.length - summary.length,
    RiskAssessment: risk.length,
    Provenance: prov.length,
  };
}
const ONE_SET = { DiagnosticReport: 1, Observation: 1, Fracture: 1, RiskAssessment: 1, Provenance: 1 };
const ONE_SET_NO_FRACTURE = { ...ONE_SET, Fracture: 0 };
const NOTHING = { DiagnosticReport: 0, Observation: 0, Fracture: 0, RiskAssessment: 0, Provenance: 0 };

describe('writeAnalysis over HTTP', () => {
  it('writes one valid set (DiagnosticReport, Observations, RiskAssessment, Device, model card, Provenance), reads it back, and a second write adds nothing', async () => {
    const client = new FhirClient({ baseUrl: server.baseUrl });
    const ctx = { patient: 'Patient/rt-1', serviceRequest: 'ServiceRequest/order-1', issued: '2024-03-06T10:00:00Z' };
    const first = await writeAnalysis(client, lumbarOsteoporosisReport(), ctx);
    expect(first.outcome).toBe('created');
    expect([first.device, first.modelCard, first.diagnosticReport, first.observation, ...first.fractures, first.riskAssessment, first.provenance].map((w) => w?.created)).toEqual(
      [true, true, true, true, true, true, true],
    );

    const second = await writeAnalysis(client, lumbarOsteoporosisReport(), { ...ctx, issued: '2024-03-07T10:00:00Z' });
    expect(second.outcome).toBe('unchanged');
    expect(second.observation).toEqual({ ...first.observation, created: false });
    expect(second.diagnosticReport).toEqual({ ...first.diagnosticReport, created: false });
    expect(second.fractures).toEqual(first.fractures.map((f) => ({ ...f, created: false })));
    expect(second.riskAssessment).toEqual({ ...first.riskAssessment, created: false });
    expect(second.provenance).toEqual({ ...first.provenance, created: false });
    expect(second.device).toEqual({ ...first.device, created: false });
    expect(await countFor('Patient/rt-1')).toEqual(ONE_SET);

    const found = await direct.search<Observation>('Observation', { patient: 'Patient/rt-1', code: VBMD_SUMMARY_CODE_TOKEN, _sort: '-date' });
    expect(found).toHaveLength(1);
    const obs = found[0];
    expect(obs.id).toBe(first.observation.id);
    expect(obs.issued).toBe('2024-03-06T10:00:00Z');
    expect(obs.code.coding?.[0]).toMatchObject({ system: VBMD_CODE_SYSTEM, code: VBMD_SUMMARY_CODE.code });
    expect(obs.valueQuantity).toEqual({ value: 74.1, ...UCUM_MG_PER_CM3 });
    expect(obs.device?.reference).toBe(`Device/${first.device.id}`);
    expect(obs.basedOn?.[0].reference).toBe('ServiceRequest/order-1');

    // The report is found by patient and lists the Observations; each Observation is searchable by itself.
    const dr = (await direct.search<DiagnosticReport>('DiagnosticReport', { patient: 'Patient/rt-1' }))[0]!;
    expect(dr.id).toBe(first.diagnosticReport.id);
    expect(dr.result?.map((r) => r.reference)).toEqual([`Observation/${obs.id}`, `Observation/${first.fractures[0]!.id}`]);
    expect(dr.basedOn?.[0].reference).toBe('ServiceRequest/order-1');
    const fracture = await direct.read<Observation>('Observation', first.fractures[0]!.id);
    expect(fracture.bodySite?.text).toBe('L3');
    const risk = await direct.read<RiskAssessment>('RiskAssessment', first.riskAssessment!.id);
    expect(risk.basis?.[0].reference).toBe(`Observation/${obs.id}`);
    const prov = await direct.read<Provenance>('Provenance', first.provenance.id);
    expect(prov.target.map((t) => t.reference).sort()).toEqual(
      [`DiagnosticReport/${dr.id}`, `Observation/${obs.id}`, `Observation/${fracture.id}`, `RiskAssessment/${risk.id}`].sort(),
    );
    expect(prov.agent[0].who?.reference).toBe(`Device/${first.device.id}`);
    expect(prov.entity?.find((e) => e.role === 'derivation')?.what.reference).toBe(`DocumentReference/${first.modelCard!.id}`);
    const device = await direct.read<Device>('Device', first.device.id);
    expect(device.extension?.find((e) => e.url.endsWith('modelCardDescription'))?.valueReference?.reference).toBe(`DocumentReference/${first.modelCard!.id}`);
    const card = await direct.read<DocumentReference>('DocumentReference', first.modelCard!.id);

    // Resources as stored (references resolved) pass the R4 validator with no issue at all.
    for (const r of [obs, fracture, dr, risk, prov, device, card]) expect(fhirValidationIssues(r), r.resourceType).toEqual([]);
  });

  it('a transaction of more than 8 conditional entries (several fractured levels) is written whole', async () => {
    const report = withFractures(forStudy(lumbarOsteoporosisReport(), 'many-fx'), { T8: 0.22, T9: 0.3, T10: 0.45, T11: 0.28, L4: 0.5 });
    const written = await writeAnalysis(direct, report, { patient: 'Patient/rt-fx' });
    expect(written.fractures).toHaveLength(6);
    expect(await countFor('Patient/rt-fx')).toEqual({ ...ONE_SET, Fracture: 6 });
    const again = await writeAnalysis(direct, report, { patient: 'Patient/rt-fx' });
    expect(again.outcome).toBe('unchanged');
    expect(await countFor('Patient/rt-fx')).toEqual({ ...ONE_SET, Fracture: 6 });
  });

  it.each(['before', 'after'] as const)('an injected 503 (%s the server commits) is retried into exactly one set', async (mode) => {
    const client = new FhirClient({ baseUrl: proxy.url, retry: fastRetry });
    const patient = `Patient/rt-503-${mode}`;
    const start = proxy.requests.length;
    proxy.failNext(mode);
    const written = await writeAnalysis(client, forStudy(thoracicContrastReport(), mode === 'before' ? '31' : '32'), { patient });
    const seen = proxy.requests.slice(start).filter((r) => r.method === 'POST').map((r) => r.status);
    expect(seen).toEqual([503, 200]);
    // 'after': the first attempt was committed, so the retry found everything (created false) - no duplicate.
    expect(written.observation.created).toBe(mode === 'before');
    expect(await countFor(patient)).toEqual(ONE_SET_NO_FRACTURE);
  });

  it('five concurrent writes of the same analysis (duplicate job deliveries) make exactly one set', async () => {
    const client = new FhirClient({ baseUrl: server.baseUrl });
    const report = forStudy(lumbarOsteoporosisReport(), 'concurrent');
    const results = await Promise.all(Array.from({ length: 5 }, () => writeAnalysis(client, report, { patient: 'Patient/rt-conc' })));
    expect(results.filter((r) => r.observation.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.observation.id)).size).toBe(1);
    expect(await countFor('Patient/rt-conc')).toEqual(ONE_SET);
  });

  it('concurrent writes of different studies sharing a new Device leave no dangling Device reference', async () => {
    const client = new FhirClient({ baseUrl: server.baseUrl });
    const base = lumbarOsteoporosisReport();
    const reports = Array.from({ length: 6 }, (_, i) =>
      forStudy({ ...base, model: { name: 'race-model', version: '9.9.9', sha256: 'c'.repeat(64) } }, `race-${i}`),
    );
    const written = await Promise.all(reports.map((r, i) => writeAnalysis(client, r, { patient: `Patient/rt-race-${i}` })));
    expect(new Set(written.map((w) => w.device.id)).size).toBe(1);
    for (const w of written) {
      const obs = await direct.read<Observation>('Observation', w.observation.id);
      const device = await direct.read<Device>('Device', obs.device!.reference!.split('/')[1]);
      expect(device.id).toBe(w.device.id);
    }
  });

  it('sequential mode (servers without transactions): a crash mid-way is completed by the re-run, one set', async () => {
    const noRetry = new FhirClient({ baseUrl: proxy.url, writeMode: 'sequential', retry: { retries: 0 } });
    const report = forStudy(lumbarOsteoporosisReport(), 'seq');
    const patient = 'Patient/rt-seq';
    proxy.failNext('pass'); // model card
    proxy.failNext('pass'); // Device
    proxy.failNext('after'); // summary Observation committed, answer lost: the writer gives up here
    await expect(writeAnalysis(noRetry, report, { patient })).rejects.toBeInstanceOf(FhirError);
    expect(await countFor(patient)).toEqual({ ...NOTHING, Observation: 1 });
    const written = await writeAnalysis(new FhirClient({ baseUrl: proxy.url, writeMode: 'sequential', retry: fastRetry }), report, { patient });
    expect(written.outcome).toBe('created');
    expect(written.observation.created).toBe(false);
    expect(written.riskAssessment?.created).toBe(true);
    expect(written.diagnosticReport.created).toBe(true);
    expect(await countFor(patient)).toEqual(ONE_SET);
    const risk = await direct.read<RiskAssessment>('RiskAssessment', written.riskAssessment!.id);
    expect(risk.basis?.[0].reference).toBe(`Observation/${written.observation.id}`);
    expect(risk.performer?.reference).toBe(`Device/${written.device.id}`);
    const prov = await direct.read<Provenance>('Provenance', written.provenance.id);
    expect(fhirValidationIssues(prov)).toEqual([]);
  });

  it('gives up after the retries with a FhirError naming the server, status and diagnostics', async () => {
    const client = new FhirClient({ baseUrl: proxy.url, retry: { ...fastRetry, retries: 2 } });
    proxy.failNext('before', 3);
    const err = await writeAnalysis(client, forStudy(thoracicContrastReport(), '4'), { patient: 'Patient/rt-fail' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    const fe = err as FhirError;
    expect(fe.code).toBe('remote');
    expect(fe.status).toBe(503);
    expect(fe.message).toContain(new URL(proxy.url).origin);
    expect(fe.message).toContain('injected 503');
    expect(await countFor('Patient/rt-fail')).toEqual(NOTHING);
  });

  it('honours Retry-After', async () => {
    const client = new FhirClient({ baseUrl: proxy.url, retry: fastRetry });
    proxy.failNext('before', 1, 1);
    const t0 = Date.now();
    await writeAnalysis(client, forStudy(thoracicContrastReport(), '5'), { patient: 'Patient/rt-ra' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('refuses to report an existing result of the same study for a different patient', async () => {
    const report = forStudy(thoracicContrastReport(), '8');
    await writeAnalysis(direct, report, { patient: 'Patient/rt-owner' });
    const err = await writeAnalysis(direct, report, { patient: 'Patient/rt-other' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bad-input' });
    expect((err as Error).message).toContain('another patient');
    expect(await countFor('Patient/rt-other')).toEqual(NOTHING);
  });

  it('writes an indeterminate result as an Observation without value and no RiskAssessment', async () => {
    const written = await writeAnalysis(direct, indeterminateReport(), { patient: 'Patient/rt-ind' });
    expect(written.riskAssessment).toBeUndefined();
    const obs = await direct.read<Observation>('Observation', written.observation.id);
    expect(obs.valueQuantity).toBeUndefined();
    expect(obs.dataAbsentReason?.coding?.[0]?.code).toBe('unknown');
    expect(obs.status).toBe('preliminary');
    expect(fhirValidationIssues(obs)).toEqual([]);
  });

  it('returns the newest result first with _sort=-date across studies', async () => {
    const patient = 'Patient/rt-trend';
    await writeAnalysis(direct, forStudy(thoracicContrastReport(), '7'), { patient }); // 2023-06-11
    await writeAnalysis(direct, forStudy(indeterminateReport(), '7'), { patient }); // 2022-01-20
    await writeAnalysis(direct, forStudy(lumbarOsteoporosisReport(), '7'), { patient }); // 2024-03-05
    const found = await direct.search<Observation>('Observation', { patient, code: VBMD_SUMMARY_CODE_TOKEN, _sort: '-date', _count: 2 });
    expect(found.map((o) => o.effectiveDateTime)).toEqual(['2024-03-05T09:41:12+01:00', '2023-06-11', '2022-01-20']);
  });
});
