import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiagnosticReport, Observation, Provenance, RiskAssessment } from 'fhir/r4.js';
import { readAnalysisFields } from '../../src/fhir/analysis-fields.js';
import { FhirClient } from '../../src/fhir/client.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { analysisKey } from '../../src/fhir/identifiers.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { writeAnalysis } from '../../src/fhir/write-analysis.js';
import type { FaultyProxy } from './support.js';
import { startFaultyProxy } from './support.js';
import {
  forStudy,
  indeterminateReport,
  lumbarOsteoporosisReport,
  lumbarReportNewModel,
  withCalibration,
  withFractures,
  withoutFractures,
} from './reports.js';

/**
 * One result set per study with a lifecycle, against the FHIR server over HTTP: a re-analysis updates the
 * same resources to a new version (amended: new model; corrected: same algorithm, corrected calibration),
 * the earlier version stays in the history and is named by the new Provenance, an older analysis replayed
 * later changes nothing, and there is never a second current result.
 */
let server: StartedFhirServer;
let proxy: FaultyProxy;
let fhir: FhirClient;

beforeAll(async () => {
  server = await startFhirServer({ port: 0 });
  proxy = await startFaultyProxy(server.baseUrl);
  fhir = new FhirClient({ baseUrl: server.baseUrl });
});
afterAll(async () => {
  await proxy?.close();
  await server?.close();
});

async function current(patient: string): Promise<{ dr: DiagnosticReport[]; obs: Observation[]; risk: RiskAssessment[] }> {
  return {
    dr: await fhir.search<DiagnosticReport>('DiagnosticReport', { patient }),
    obs: await fhir.search<Observation>('Observation', { patient }),
    risk: await fhir.search<RiskAssessment>('RiskAssessment', { patient }),
  };
}

async function provenancesOf(ref: string): Promise<Provenance[]> {
  return (await fhir.search<Provenance>('Provenance', { _count: 1000 })).filter((p) => p.target.some((t) => t.reference === ref));
}

describe('re-analysis supersedes the study result set in place', () => {
  it('a new model version: same resources, status amended, old version in history, linked by Provenance; replays change nothing', async () => {
    const patient = 'Patient/lc-model';
    const v1 = forStudy(lumbarOsteoporosisReport(), 'lc1');
    const v2 = forStudy(lumbarReportNewModel(), 'lc1');
    const first = await writeAnalysis(fhir, v1, { patient, issued: '2024-03-06T10:00:00Z' });
    const second = await writeAnalysis(fhir, v2, { patient, issued: '2024-05-01T10:00:00Z' });
    expect(second.outcome).toBe('superseded');
    expect(second.diagnosticReport.id).toBe(first.diagnosticReport.id);
    expect(second.observation.id).toBe(first.observation.id);
    expect(second.riskAssessment?.id).toBe(first.riskAssessment?.id);
    expect(second.fractures.map((f) => f.id)).toEqual(first.fractures.map((f) => f.id));
    expect(second.device.id).not.toBe(first.device.id);

    const now = await current(patient);
    expect([now.dr.length, now.obs.length, now.risk.length]).toEqual([1, 2, 1]);
    const dr = now.dr[0]!;
    const obs = now.obs.find((o) => o.id === first.observation.id)!;
    expect([dr.status, obs.status, now.risk[0]!.status]).toEqual(['amended', 'amended', 'amended']);
    expect(obs.valueQuantity?.value).toBe(75);
    expect(obs.device?.reference).toBe(`Device/${second.device.id}`);
    expect(readAnalysisFields(dr)).toMatchObject({ analysisKey: analysisKey(v2), superseded: [analysisKey(v1)] });

    // The new analysis' Provenance names the versions it revised; the earlier result is that version, unchanged.
    const provs = await provenancesOf(`Observation/${obs.id}`);
    expect(provs).toHaveLength(2);
    const revising = provs.find((p) => p.entity?.some((e) => e.role === 'revision'))!;
    expect(revising.id).toBe(second.provenance.id);
    const revised = revising.entity!.filter((e) => e.role === 'revision').map((e) => e.what.reference!);
    expect(revised.map((r) => r.replace(/\/_history\/.+$/, '')).sort()).toEqual(
      [`DiagnosticReport/${dr.id}`, `Observation/${obs.id}`, `Observation/${first.fractures[0]!.id}`, `RiskAssessment/${first.riskAssessment!.id}`].sort(),
    );
    const old = await fhir.request<Observation>('GET', revised.find((r) => r.startsWith(`Observation/${obs.id}/`))!);
    expect([old.body.status, old.body.valueQuantity?.value]).toEqual(['final', 74.1]);
    expect(old.body.meta?.versionId).not.toBe(obs.meta?.versionId);
    for (const r of [dr, obs, revising]) expect(fhirValidationIssues(r), r.resourceType).toEqual([]);

    // A late retry of the old analysis must not resurrect it; a retry of the new one writes nothing.
    const stale = await writeAnalysis(fhir, v1, { patient });
    expect(stale.outcome).toBe('stale');
    const again = await writeAnalysis(fhir, v2, { patient });
    expect(again.outcome).toBe('unchanged');
    const after = await fhir.read<DiagnosticReport>('DiagnosticReport', dr.id!);
    expect(after.meta?.versionId).toBe(dr.meta?.versionId);
    expect(await provenancesOf(`Observation/${obs.id}`)).toHaveLength(2);
  });

  it('a corrected calibration by the same algorithm: status corrected', async () => {
    const patient = 'Patient/lc-cal';
    const report = forStudy(lumbarOsteoporosisReport(), 'lc2');
    await writeAnalysis(fhir, report, { patient });
    const w = await writeAnalysis(fhir, withCalibration(report, 1.1, -2.5), { patient });
    expect(w.outcome).toBe('superseded');
    const { dr, obs } = await current(patient);
    expect(dr.map((d) => d.status)).toEqual(['corrected']);
    expect(obs.map((o) => o.status)).toEqual(['corrected', 'corrected']);
    expect(readAnalysisFields(dr[0])?.calibration).toMatchObject({ method: 'asynchronous', slopeHuPerMgCm3: 1.1, interceptHu: -2.5, traceable: true });
  });

  it('an uncalibrated (preliminary) result becomes final when a calibrated analysis replaces it', async () => {
    const patient = 'Patient/lc-prelim';
    const base = forStudy(lumbarOsteoporosisReport(), 'lc3');
    const nominal = { ...base, calibration: { method: 'nominal' as const, slope: 1, intercept: 0, uncalibrated: true, references: {} } };
    await writeAnalysis(fhir, nominal, { patient });
    expect((await current(patient)).dr.map((d) => d.status)).toEqual(['preliminary']);
    await writeAnalysis(fhir, base, { patient });
    const { dr, obs } = await current(patient);
    expect(dr.map((d) => d.status)).toEqual(['final']);
    expect(obs.map((o) => o.status)).toEqual(['final', 'final']);
  });

  it('a fracture the re-analysis no longer finds is amended to grade 0; a new one is created final', async () => {
    const patient = 'Patient/lc-fx';
    const report = forStudy(lumbarOsteoporosisReport(), 'lc4');
    const first = await writeAnalysis(fhir, report, { patient });
    const second = await writeAnalysis(fhir, withFractures(withoutFractures(withCalibration(report, 1.09, -3.0)), { T11: 0.33 }), { patient });
    expect(second.fractures).toHaveLength(2);
    const l3 = await fhir.read<Observation>('Observation', first.fractures[0]!.id);
    expect(l3.status).toBe('corrected');
    expect(l3.valueCodeableConcept?.coding?.[0]?.code).toBe('genant-0');
    const t11 = (await current(patient)).obs.find((o) => o.bodySite?.text === 'T11')!;
    expect(t11.status).toBe('final');
    expect(t11.valueCodeableConcept?.coding?.[0]?.code).toBe('genant-2');
    const dr = (await current(patient)).dr[0]!;
    expect(dr.result).toHaveLength(3);
    expect(dr.conclusion).toContain('T11 (Genant grade 2');
    expect(dr.conclusion).not.toContain('L3 (Genant');
  });

  it('an indeterminate re-analysis withdraws the value and the risk statement, it does not leave them current', async () => {
    const patient = 'Patient/lc-ind';
    const report = forStudy(lumbarOsteoporosisReport(), 'lc5');
    const first = await writeAnalysis(fhir, report, { patient });
    const ind = indeterminateReport();
    await writeAnalysis(fhir, { ...ind, input: { ...ind.input, studyInstanceUid: report.input.studyInstanceUid, seriesInstanceUid: report.input.seriesInstanceUid } }, { patient });
    const obs = await fhir.read<Observation>('Observation', first.observation.id);
    expect(obs.status).toBe('amended');
    expect(obs.valueQuantity).toBeUndefined();
    expect(obs.dataAbsentReason).toBeDefined();
    const risk = await fhir.read<RiskAssessment>('RiskAssessment', first.riskAssessment!.id);
    expect(risk.status).toBe('amended');
    expect(risk.prediction).toBeUndefined();
    expect(fhirValidationIssues(risk)).toEqual([]);
  });

  it('two different analyses of one study racing: one current set, the other analysis superseded, never two', async () => {
    const patient = 'Patient/lc-race';
    const v1 = forStudy(lumbarOsteoporosisReport(), 'lc6');
    const v2 = forStudy(lumbarReportNewModel(), 'lc6');
    await Promise.all([writeAnalysis(fhir, v1, { patient }), writeAnalysis(fhir, v2, { patient })]);
    const { dr, obs } = await current(patient);
    expect(dr).toHaveLength(1);
    expect(obs.filter((o) => o.code.coding?.some((c) => c.code === 'vbmd-trabecular-qct'))).toHaveLength(1);
    const f = readAnalysisFields(dr[0])!;
    expect([f.analysisKey, ...f.superseded].sort()).toEqual([analysisKey(v1), analysisKey(v2)].sort());
  });

  it('a re-analysis whose commit answer is lost is retried into one new version, not two', async () => {
    const patient = 'Patient/lc-lost';
    const report = forStudy(lumbarOsteoporosisReport(), 'lc7');
    await writeAnalysis(fhir, report, { patient });
    const viaProxy = new FhirClient({ baseUrl: proxy.url, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
    proxy.failNext('after'); // the supersede transaction commits, its answer is lost; the retry finds it done
    const w = await writeAnalysis(viaProxy, forStudy(lumbarReportNewModel(), "lc7"), { patient });
    expect(['superseded', 'unchanged']).toContain(w.outcome);
    const dr = (await current(patient)).dr;
    expect(dr).toHaveLength(1);
    const history = await fhir.request<{ entry?: unknown[] }>('GET', `DiagnosticReport/${dr[0]!.id}/_history`);
    expect(history.body.entry).toHaveLength(2);
  });

  it('sequential mode (no transactions) supersedes with If-Match too, and a re-run after a crash mid-way completes it', async () => {
    const patient = 'Patient/lc-seq';
    const seq = new FhirClient({ baseUrl: proxy.url, writeMode: 'sequential', retry: { retries: 0 } });
    const report = forStudy(lumbarOsteoporosisReport(), 'lc8');
    const first = await writeAnalysis(seq, report, { patient });
    const v2 = forStudy(lumbarReportNewModel(), 'lc8');
    // Model card, Device, summary Observation pass; the fracture update commits but its answer is lost.
    proxy.failNext('pass', 3);
    proxy.failNext('after');
    await expect(writeAnalysis(seq, v2, { patient })).rejects.toThrow();
    const half = await fhir.read<DiagnosticReport>('DiagnosticReport', first.diagnosticReport.id);
    expect(readAnalysisFields(half)?.analysisKey).toBe(analysisKey(report)); // the report still names the old analysis
    const done = await writeAnalysis(new FhirClient({ baseUrl: proxy.url, writeMode: 'sequential', retry: { baseDelayMs: 5, maxDelayMs: 20 } }), v2, { patient });
    expect(done.outcome).toBe('superseded');
    const { dr, obs, risk } = await current(patient);
    expect([dr.length, obs.length, risk.length]).toEqual([1, 2, 1]);
    expect(readAnalysisFields(dr[0])).toMatchObject({ analysisKey: analysisKey(v2), superseded: [analysisKey(report)] });
    expect([dr[0]!.status, ...obs.map((o) => o.status), risk[0]!.status]).toEqual(['amended', 'amended', 'amended', 'amended']);
  });
});
