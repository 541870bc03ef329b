import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle } from 'fhir/r4.js';
import type { VbmdReport } from '../../src/bmd/report.js';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { runCohort } from '../../src/population/query.js';
import { FhirSearchSource } from '../../src/population/sources/fhir-search.js';
import { forStudy, indeterminateReport, lumbarOsteoporosisReport, thoracicContrastReport } from '../fhir/reports.js';

/**
 * End to end with the real FHIR mapping (src/fhir/bundle.ts): the transactions vbmd writes, posted to the
 * FHIR test server, read back by the cohort. Guards the Observation layout the cohort depends on.
 */
let server: StartedFhirServer;
async function write(report: VbmdReport, patient: string): Promise<void> {
  const bundle = buildAnalysisBundle(report, { patient: `Patient/${patient}`, issued: '2025-01-01T00:00:00Z' });
  const res = await fetch(server.baseUrl, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) });
  expect(res.status, JSON.stringify(await res.clone().json())).toBe(200);
  expect(((await res.json()) as Bundle).type).toBe('transaction-response');
}

beforeAll(async () => {
  server = await startFhirServer({ port: 0 });
  const lumbar = lumbarOsteoporosisReport();
  await write(lumbar, 'A');
  // The same analysis written twice (a retry) must stay one scan: the write is idempotent.
  await write(lumbar, 'A');
  // An older scan of A, measured higher: 2022 -> 2024 decline.
  await write({ ...forStudy(lumbar, '2'), input: { ...forStudy(lumbar, '2').input, acquisitionDateTime: '2022-03-05T09:00:00Z' }, summary: { ...lumbar.summary, vbmd: 90 } }, 'A');
  await write(thoracicContrastReport(), 'B');
  await write(indeterminateReport(), 'C');
});
afterAll(async () => {
  await server?.close();
});

describe('cohort over the Observations vbmd writes', () => {
  it('reads value, category, basis, study and status from the mapped Observations', async () => {
    const r = await runCohort(new FhirSearchSource(server.baseUrl, { pageSize: 2 }), { asOf: '2025-06-01' });
    const byPatient = new Map(r.rows.map((x) => [x.patient, x]));
    const thoracic = thoracicContrastReport();
    expect(r.summary.patients).toBe(3);
    expect(r.summary.scansRead).toBe(4);
    const a = byPatient.get('A')!;
    expect(a).toMatchObject({ latestVbmdMgCm3: 74.1, category: 'osteoporosis', basis: 'lumbar', status: 'final', scans: 2, studyUid: '1.2.826.0.1.3680043.8.498.1001' });
    expect(a.latestEffective).toBe('2024-03-05T09:41:12+01:00');
    // 90 -> 74.1 between 2022-03-05T09:00Z and 2024-03-05T08:41:12Z.
    const years = (Date.parse('2024-03-05T08:41:12Z') - Date.parse('2022-03-05T09:00:00Z')) / (365.25 * 86_400_000);
    expect(a.trend!.pctPerYear).toBeCloseTo(((74.1 - 90) / years / 90) * 100, 6);
    const b = byPatient.get('B')!;
    expect(b.basis).toBe('thoracic-extrapolated');
    expect(b.latestVbmdMgCm3).toBe(thoracic.summary.vbmd === null ? null : Math.round(thoracic.summary.vbmd * 10) / 10);
    expect(b.category).toBe(thoracic.summary.category);
    const c = byPatient.get('C')!;
    expect(c).toMatchObject({ latestVbmdMgCm3: null, category: 'indeterminate', scans: 1, latestScanIndeterminate: true });
  });
});
