import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device, Observation, Provenance, RiskAssessment } from 'fhir/r4.js';
import { FhirClient } from '../../src/fhir/client.js';
import { UCUM_MG_PER_CM3, VBMD_CODE_SYSTEM, VBMD_SUMMARY_CODE, VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { FhirError } from '../../src/fhir/fhir-error.js';
import { startFhirServer } from '../../src/fhir/server/start.js';
import type { StartedFhirServer } from '../../src/fhir/server/start.js';
import { writeAnalysis } from '../../src/fhir/write-analysis.js';
import type { FaultyProxy } from './support.js';
import { startFaultyProxy } from './support.js';
import { forStudy, indeterminateReport, lumbarOsteoporosisReport, lumbarReportNewModel, thoracicContrastReport } from './reports.js';

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

async function countFor(patient: string): Promise<Record<string, number>> {
  const obs = await direct.search<Observation>('Observation', { patient });
  const risk = await direct.search<RiskAssessment>('RiskAssessment', { patient });
  const obsIds = new Set(obs.map((o) => `Observation/${o.id}`));
  const prov = (await direct.search<Provenance>('Provenance', { _count: 1000 })).filter((p) =>
    p.target.some((t) => obsIds.has(t.reference ?? '')),
  );
  return { Observation: obs.length, RiskAssessment: risk.length, Provenance: prov.length };
}

describe('writeAnalysis over HTTP', () => {
  it('writes one valid set, reads it back by patient + code + _sort=-date, and a second write adds nothing', async () => {
    const client = new FhirClient({ baseUrl: server.baseUrl });
    const ctx = { patient: 'Patient/rt-1', serviceRequest: 'ServiceRequest/order-1', issued: '2024-03-06T10:00:00Z' };
    const first = await writeAnalysis(client, lumbarOsteoporosisReport(), ctx);
    expect([first.device.created, first.observation.created, first.riskAssessment?.created, first.provenance.created]).toEqual([true, true, true, true]);

    const second = await writeAnalysis(client, lumbarOsteoporosisReport(), { ...ctx, issued: '2024-03-07T10:00:00Z' });
    expect(second.observation).toEqual({ ...first.observation, created: false });
    expect(second.riskAssessment).toEqual({ ...first.riskAssessment, created: false });
    expect(second.provenance).toEqual({ ...first.provenance, created: false });
    expect(second.device).toEqual({ ...first.device, created: false });
    expect(await countFor('Patient/rt-1')).toEqual({ Observation: 1, RiskAssessment: 1, Provenance: 1 });

    const found = await direct.search<Observation>('Observation', { patient: 'Patient/rt-1', code: VBMD_SUMMARY_CODE_TOKEN, _sort: '-date' });
    expect(found).toHaveLength(1);
    const obs = found[0];
    expect(obs.id).toBe(first.observation.id);
    expect(obs.issued).toBe('2024-03-06T10:00:00Z');
    expect(obs.code.coding?.[0]).toMatchObject({ system: VBMD_CODE_SYSTEM, code: VBMD_SUMMARY_CODE.code });
    expect(obs.valueQuantity).toEqual({ value: 74.1, ...UCUM_MG_PER_CM3 });
    expect(obs.device?.reference).toBe(`Device/${first.device.id}`);
    expect(obs.basedOn?.[0].reference).toBe('ServiceRequest/order-1');

    const risk = await direct.read<RiskAssessment>('RiskAssessment', first.riskAssessment!.id);
    expect(risk.basis?.[0].reference).toBe(`Observation/${obs.id}`);
    const prov = await direct.read<Provenance>('Provenance', first.provenance.id);
    expect(prov.target.map((t) => t.reference).sort()).toEqual([`Observation/${obs.id}`, `RiskAssessment/${risk.id}`].sort());
    expect(prov.agent[0].who?.reference).toBe(`Device/${first.device.id}`);
    const device = await direct.read<Device>('Device', first.device.id);

    // Resources as stored (references resolved) pass the R4 validator with no issue at all.
    for (const r of [obs, risk, prov, device]) expect(fhirValidationIssues(r), r.resourceType).toEqual([]);
  });

  it('a new model version adds a new set and keeps the old one', async () => {
    const client = new FhirClient({ baseUrl: server.baseUrl });
    const ctx = { patient: 'Patient/rt-2' };
    const v1 = await writeAnalysis(client, forStudy(lumbarOsteoporosisReport(), '2'), ctx);
    const v2 = await writeAnalysis(client, forStudy(lumbarReportNewModel(), '2'), ctx);
    expect(v2.observation.created).toBe(true);
    expect(v2.observation.id).not.toBe(v1.observation.id);
    expect(v2.device.id).not.toBe(v1.device.id);
    expect(await countFor('Patient/rt-2')).toEqual({ Observation: 2, RiskAssessment: 2, Provenance: 2 });
    const devices = await direct.search<Device>('Device', {});
    expect(devices.map((d) => d.version?.find((v) => v.type?.coding?.[0]?.code === 'model-version')?.value)).toEqual(
      expect.arrayContaining(['0.3.0', '0.4.0']),
    );
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
    expect(await countFor(patient)).toEqual({ Observation: 1, RiskAssessment: 1, Provenance: 1 });
  });

  it('five concurrent writes of the same analysis (duplicate job deliveries) make exactly one set', async () => {
    const client = new FhirClient({ baseUrl: server.baseUrl });
    const report = forStudy(lumbarOsteoporosisReport(), 'concurrent');
    const results = await Promise.all(Array.from({ length: 5 }, () => writeAnalysis(client, report, { patient: 'Patient/rt-conc' })));
    expect(results.filter((r) => r.observation.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.observation.id)).size).toBe(1);
    expect(await countFor('Patient/rt-conc')).toEqual({ Observation: 1, RiskAssessment: 1, Provenance: 1 });
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
    proxy.failNext('pass'); // Device
    proxy.failNext('after'); // Observation committed, answer lost: the writer gives up here
    await expect(writeAnalysis(noRetry, report, { patient })).rejects.toBeInstanceOf(FhirError);
    expect(await countFor(patient)).toEqual({ Observation: 1, RiskAssessment: 0, Provenance: 0 });
    const written = await writeAnalysis(new FhirClient({ baseUrl: proxy.url, writeMode: 'sequential', retry: fastRetry }), report, { patient });
    expect(written.observation.created).toBe(false);
    expect(written.riskAssessment?.created).toBe(true);
    expect(await countFor(patient)).toEqual({ Observation: 1, RiskAssessment: 1, Provenance: 1 });
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
    expect(await countFor('Patient/rt-fail')).toEqual({ Observation: 0, RiskAssessment: 0, Provenance: 0 });
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
    expect(await countFor('Patient/rt-other')).toEqual({ Observation: 0, RiskAssessment: 0, Provenance: 0 });
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
