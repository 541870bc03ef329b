import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { copyStudies, deleteStudy, uploadBaseStudy } from '../support/study-archive.js';
import type { ArchiveStudy } from '../support/study-archive.js';
import { parsePrometheusText } from '../support/prometheus-text.js';
import { spawnVbmd, waitFor } from '../support/vbmd-process.js';
import type { VbmdProcess } from '../support/vbmd-process.js';

/**
 * Operations end to end with `vbmd start` as a process (its supervised worker a child of it), Orthanc and
 * the FHIR server over HTTP: an order-sign hook with an X-Correlation-Id -> the study is polled, retrieved,
 * analysed and written; then
 *  - the three AuditEvents of that study (hook data read, study retrieval, result write) are on the FHIR
 *    server, for the right Patient, carrying the hook's correlation id, valid R4;
 *  - every log line of the study (web process and worker) carries that correlation id, and no line carries
 *    the patient's id, MRN or name;
 *  - /metrics refuses without the API token, and with it parses as Prometheus text with the worker's own
 *    series (stage times, retrieval bytes, FHIR write latency) merged in over IPC, hook latency, jobs by state
 *    and a JWT rejection counted by reason.
 */
const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.7';
const CORRELATION = 'ops-test-correlation-0001';
const TOKEN = 'ops-api-token';

let orthanc: OrthancHandle;
let fhir: StartedFhirServer;
let key: CdsClientKey;
let work: string;
let study: ArchiveStudy;
let service: VbmdProcess | undefined;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-ops-'));
  [orthanc, fhir, key] = await Promise.all([startOrthanc(), startFhirServer(), generateClientKey('https://ehr.ops.test')]);
  const base = await uploadBaseStudy(orthanc);
  [study] = await copyStudies(orthanc, base, [{ patientId: 'MRN-OPS-1', accessionNumber: 'ACC-OPS-1', studyDate: '20250301' }]);
  await deleteStudy(orthanc, base);
  const put = await fetch(`${fhir.baseUrl}/Patient/p-ops`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id: 'p-ops', identifier: [{ system: MRN_SYSTEM, value: 'MRN-OPS-1' }], name: [{ family: 'ARCHIVE', given: ['MRN-OPS-1'] }] }),
  });
  expect(put.ok).toBe(true);
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await Promise.allSettled([orthanc?.stop(), fhir?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('operations: correlation id, audit trail and metrics of one study', () => {
  it('order-sign -> poll -> job -> retrieval -> write, followed by one correlation id, audited and measured', async () => {
    const port = await freeLoopbackPort();
    const base = `http://127.0.0.1:${port}`;
    service = spawnVbmd(['start'], {
      FHIR_BASE_URL: fhir.baseUrl,
      FHIR_BEARER_TOKEN: 'ops-fhir-token',
      DICOMWEB_URL: orthanc.dicomWebUrl,
      CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
      ANALYZE_API_TOKENS: TOKEN,
      PATIENT_MRN_SYSTEM: MRN_SYSTEM,
      VBMD_DATA_DIR: join(work, 'data'),
      PORT: String(port),
      PUBLIC_BASE_URL: base,
      QIDO_POLL_INTERVAL_S: '0.5',
      LOG_LEVEL: 'info',
    });
    const logLines = service.logs;
    await waitFor('the service', async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined), 60_000);

    const hookUrl = `${base}/cds-services/vbmd-order-sign`;
    const signed = await fetch(hookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, hookUrl)}`, 'x-correlation-id': CORRELATION },
      body: JSON.stringify({
        hook: 'order-sign',
        hookInstance: crypto.randomUUID(),
        fhirServer: fhir.baseUrl,
        context: {
          userId: 'Practitioner/dr-ops',
          patientId: 'p-ops',
          draftOrders: {
            resourceType: 'Bundle',
            entry: [{ resource: { resourceType: 'ServiceRequest', id: 'sr-ops', status: 'draft', intent: 'order', subject: { reference: 'Patient/p-ops' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '71250' }] }, identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: study.accessionNumber }] } }],
          },
        },
        prefetch: { vbmdObservations: { resourceType: 'Bundle', type: 'searchset', entry: [] } },
      }),
    });
    expect(signed.status).toBe(200);
    expect(signed.headers.get('x-correlation-id')).toBe(CORRELATION);
    // A hook call with a forged token: rejected, and counted by reason.
    expect((await fetch(hookUrl, { method: 'POST', headers: { authorization: 'Bearer not.a.jwt' }, body: '{}' })).status).toBe(401);

    const api = { authorization: `Bearer ${TOKEN}` };
    const job = await waitFor(
      'the job to complete',
      async () => {
        const j = (await (await fetch(`${base}/api/jobs/study-${study.studyInstanceUid}`, { headers: api })).json()) as { state: string; failedReason?: string; data: { correlationId?: string } };
        if (j.state === 'failed' || j.state === 'needs-review') throw new Error(`job ${j.state}: ${j.failedReason}`);
        return j.state === 'completed' ? j : undefined;
      },
      120_000,
    );
    expect(job.data.correlationId).toBe(CORRELATION);

    // Audit: the three accesses to p-ops's data, on the FHIR server, joined by the correlation id.
    const bundle = (await (await fetch(`${fhir.baseUrl}/AuditEvent?_count=100`)).json()) as { entry?: { resource: AuditEvent }[] };
    const events = (bundle.entry ?? []).map((e) => e.resource).filter((e) => e.entity?.some((x) => x.what?.reference === 'Patient/p-ops'));
    const kinds = events.map((e) => `${e.type.code}/${e.subtype?.[0]?.code ?? '-'}/${e.action}`).sort();
    expect(kinds).toEqual(['110104/-/R', 'rest/create/C', 'rest/search-type/E']);
    for (const e of events) {
      expect(e.outcome).toBe('0');
      expect(e.entity?.find((x) => x.type?.code === 'XrequestId')?.what?.identifier?.value).toBe(CORRELATION);
      expect(fhirValidationIssues(e).filter((i) => i.severity === 'error')).toEqual([]);
    }
    const retrieval = events.find((e) => e.type.code === '110104')!;
    expect(retrieval.entity?.some((x) => x.what?.identifier?.value === `urn:oid:${study.studyInstanceUid}`)).toBe(true);
    const write = events.find((e) => e.subtype?.[0]?.code === 'create')!;
    expect(write.meta?.profile?.[0]).toBe('https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientCreate');
    expect(write.entity?.some((x) => x.what?.reference?.startsWith('Observation/'))).toBe(true);

    // Metrics: protected; parsed; the worker's series arrived over IPC.
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const scraped = await fetch(`${base}/metrics`, { headers: api });
    expect(scraped.headers.get('content-type')).toContain('text/plain');
    const m = parsePrometheusText(await scraped.text());
    expect(m.value('vbmd_jobs', { queue: 'embedded', state: 'completed' })).toBe(1);
    for (const stage of ['load', 'spine', 'roi', 'calibration', 'model', 'total']) expect(m.value('vbmd_analysis_stage_seconds_count', { stage })).toBe(1);
    expect(m.value('vbmd_model_inference_seconds_count', {})).toBe(1);
    expect(m.value('vbmd_retrieval_bytes_sum', { priority: 'interactive' })).toBeGreaterThan(500_000);
    expect(m.value('vbmd_retrieval_seconds_count', { priority: 'interactive', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(m.value('vbmd_fhir_write_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(m.value('vbmd_cds_hook_seconds_count', { service: 'vbmd-order-sign', status: '200' })).toBe(1);
    expect(m.value('vbmd_cds_jwt_rejections_total', { reason: 'malformed' })).toBe(1);
    expect(m.types.get('vbmd_analysis_stage_seconds')).toBe('histogram');

    // Logs: the study's path, hook to write, under one correlation id; no patient identity in any line.
    await waitFor('the write log line', async () => (logLines.some((l) => l.includes('analysis job done')) ? true : undefined), 10_000);
    const json = logLines.filter((l) => l.startsWith('{'));
    const parsed = json.map((l) => JSON.parse(l) as { msg: string; correlationId?: string; stage?: string });
    const ofStudy = parsed.filter((l) => l.correlationId === CORRELATION);
    expect(new Set(ofStudy.map((l) => l.stage))).toEqual(new Set(['hook', 'poll', 'job']));
    expect(ofStudy.some((l) => l.msg === 'CDS hook answered')).toBe(true);
    for (const msg of ['watched study arrived; analysis queued', 'analysis job done']) {
      expect(parsed.filter((l) => l.msg === msg).every((l) => l.correlationId === CORRELATION), msg).toBe(true);
      expect(ofStudy.some((l) => l.msg === msg), msg).toBe(true);
    }
    for (const l of json) expect(l).not.toMatch(/p-ops|MRN-OPS-1|ARCHIVE/);
  }, 240_000);
});
