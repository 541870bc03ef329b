import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Observation } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { copyStudies, deleteStudy, uploadBaseStudy } from '../support/study-archive.js';
import type { ArchiveSpec, ArchiveStudy } from '../support/study-archive.js';
import { parsePrometheusText } from '../support/prometheus-text.js';
import { runVbmd, spawnVbmd, waitFor } from '../support/vbmd-process.js';
import type { VbmdProcess } from '../support/vbmd-process.js';

/**
 * The archive backfill's acceptance, with `vbmd start` and `vbmd backfill` as processes, a real Orthanc and
 * the FHIR server over HTTP. 50 small CT studies over three years: 40 of 20 patients registered in FHIR
 * under the MRN system, 6 of patients FHIR does not know, 4 of a patient registered twice. Then:
 *  - every matched study is analysed once, into its own patient's chart; the 10 others are held for review
 *    with nothing written;
 *  - an order-sign study arriving during the backfill finishes before the backfill's waiting studies;
 *  - a re-run queues nothing and changes nothing.
 */
const MRN = 'urn:oid:2.16.840.1.113883.3.9999.18';
const TOKEN = 'backfill-api-token';

let orthanc: OrthancHandle;
let fhir: StartedFhirServer;
let key: CdsClientKey;
let work: string;
let baseStudy: string;
let archive: ArchiveStudy[];
let service: VbmdProcess | undefined;
let env: Record<string, string>;

function specs(): ArchiveSpec[] {
  const out: ArchiveSpec[] = [];
  const day0 = Date.UTC(2022, 0, 10);
  for (let i = 0; i < 50; i++) {
    const patientId = i < 40 ? `MRN-${String(i % 20).padStart(3, '0')}` : i < 46 ? `UNKNOWN-${i}` : 'MRN-TWICE';
    const date = new Date(day0 + i * 22 * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');
    out.push({ patientId, accessionNumber: `BF-${i}`, studyDate: date });
  }
  return out;
}

async function putPatient(id: string, mrn: string): Promise<void> {
  const r = await fetch(`${fhir.baseUrl}/Patient/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id, identifier: [{ system: MRN, value: mrn }], name: [{ family: 'ARCHIVE', given: [mrn] }] }),
  });
  expect(r.ok).toBe(true);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-backfill-'));
  [orthanc, fhir, key] = await Promise.all([startOrthanc(), startFhirServer(), generateClientKey('https://ehr.backfill.test')]);
  baseStudy = await uploadBaseStudy(orthanc);
  archive = await copyStudies(orthanc, baseStudy, specs());
  for (let p = 0; p < 20; p++) await putPatient(`pt-${p}`, `MRN-${String(p).padStart(3, '0')}`);
  await putPatient('pt-twice-a', 'MRN-TWICE');
  await putPatient('pt-twice-b', 'MRN-TWICE');
  await putPatient('pt-order', 'MRN-ORDER');
  const port = await freeLoopbackPort();
  env = {
    FHIR_BASE_URL: fhir.baseUrl,
    FHIR_BEARER_TOKEN: 'backfill-fhir-token',
    DICOMWEB_URL: orthanc.dicomWebUrl,
    CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
    ANALYZE_API_TOKENS: TOKEN,
    PATIENT_MRN_SYSTEM: MRN,
    VBMD_DATA_DIR: join(work, 'data'),
    PORT: String(port),
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    QIDO_POLL_INTERVAL_S: '0.5',
    JOB_BACKOFF_MS: '200',
    AUDIT_TO_FHIR: 'false',
    LOG_LEVEL: 'warn',
  };
}, 180_000);

afterAll(async () => {
  await service?.stop();
  await Promise.allSettled([orthanc?.stop(), fhir?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Job {
  id: string;
  state: string;
  attempts: number;
  failedReason?: string;
  createdAt: string;
  finishedAt?: string;
  data: { trigger: string; studyInstanceUid: string };
}

async function api<T>(path: string): Promise<T> {
  const r = await fetch(`${env.PUBLIC_BASE_URL}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await r.json()) as T;
}

async function summaries(): Promise<Observation[]> {
  const r = await fetch(`${fhir.baseUrl}/Observation?code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}&_count=1000`);
  return (((await r.json()) as { entry?: { resource: Observation }[] }).entry ?? []).map((e) => e.resource);
}

async function orderSign(accession: string): Promise<void> {
  const url = `${env.PUBLIC_BASE_URL}/cds-services/vbmd-order-sign`;
  const sr = { resourceType: 'ServiceRequest', id: 'sr-order', status: 'draft', intent: 'order', subject: { reference: 'Patient/pt-order' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '71250' }] }, identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: accession }] };
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` },
    body: JSON.stringify({ hook: 'order-sign', hookInstance: crypto.randomUUID(), context: { userId: 'Practitioner/dr-bf', patientId: 'pt-order', draftOrders: { resourceType: 'Bundle', entry: [{ resource: sr }] } }, prefetch: { vbmdObservations: { resourceType: 'Bundle', type: 'searchset', entry: [] } } }),
  });
  expect(r.status).toBe(200);
}

describe('vbmd backfill', () => {
  it('analyses every matched study once, holds the rest, lets an order go first, and a re-run does nothing', async () => {
    service = spawnVbmd(['start'], env);
    await waitFor('the service', async () => ((await fetch(`${env.PUBLIC_BASE_URL}/healthz`)).ok ? true : undefined), 60_000);

    // A dry run lists and checks, queues nothing.
    const dry = await runVbmd(['backfill', '--from', '2022-01-01', '--to', '2024-12-31', '--dry-run', '--json'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, wouldQueue: 50, counts: { found: 50, skipped: 0, unusable: 0, queued: 0 } });
    expect((await api<{ counts: Record<string, number> }>('/api/jobs?state=waiting')).counts).toMatchObject({ waiting: 0, completed: 0, active: 0 });

    const t0 = Date.now();
    const first = runVbmd(['backfill', '--from', '2022-01-01', '--to', '2024-12-31', '--json'], env);
    // Once the backfill is under way, an oncologist signs a CT order and the study arrives.
    await waitFor('three backfill studies done', async () => ((await api<{ counts: { completed: number } }>('/api/jobs?state=completed')).counts.completed >= 3 ? true : undefined), 120_000);
    await orderSign('ORDER-1');
    const [ordered] = await copyStudies(orthanc, baseStudy, [{ patientId: 'MRN-ORDER', accessionNumber: 'ORDER-1', studyDate: '20260101' }]);
    const result = await first;
    const elapsedS = (Date.now() - t0) / 1000;
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as { counts: Record<string, number>; ratePerMinute: number };
    expect(summary.counts).toEqual({ found: 50, skipped: 0, unusable: 0, queued: 0, done: 40, failed: 0, needsReview: 10 });
    process.stderr.write(`backfill: 50 studies (40 analysed, 10 held) in ${elapsedS.toFixed(1)} s, ${summary.ratePerMinute.toFixed(1)} studies/min with one worker process\n`);

    // Every matched study analysed once, into its own patient's chart.
    const obs = await summaries();
    for (const s of archive.slice(0, 40)) {
      const mine = obs.filter((o) => JSON.stringify(o).includes(s.studyInstanceUid));
      expect(mine, s.accessionNumber).toHaveLength(1);
      expect(mine[0]!.subject?.reference).toBe(`Patient/pt-${Number(s.patientId.slice(4))}`);
    }
    // The unmatched and the doubly registered: held for review, nothing written.
    for (const s of archive.slice(40)) {
      expect(obs.some((o) => JSON.stringify(o).includes(s.studyInstanceUid))).toBe(false);
      const job = await api<Job>(`/api/jobs/study-${s.studyInstanceUid}`);
      expect(job.state).toBe('needs-review');
      expect(job.failedReason).toMatch(s.patientId === 'MRN-TWICE' ? /several Patients .* have the study's DICOM PatientID/ : /no Patient .* has the study's DICOM PatientID/);
    }

    // The order's study went ahead of the backfill's waiting ones: once it was queued, at most the one
    // backfill study then running (one worker, concurrency 1) finished before it.
    const order = await waitFor('the order study', async () => {
      const j = await api<Job>(`/api/jobs/study-${ordered!.studyInstanceUid}`);
      return j.state === 'completed' ? j : undefined;
    }, 60_000);
    expect(order.data.trigger).toBe('qido-poll');
    const backfill = await Promise.all(archive.map((s) => api<Job>(`/api/jobs/study-${s.studyInstanceUid}`)));
    const queuedAt = Date.parse(order.createdAt);
    const orderDone = Date.parse(order.finishedAt!);
    const between = backfill.filter((j) => Date.parse(j.finishedAt!) > queuedAt && Date.parse(j.finishedAt!) < orderDone);
    const after = backfill.filter((j) => Date.parse(j.finishedAt!) > orderDone);
    expect(between.length).toBeLessThanOrEqual(1);
    expect(after.length).toBeGreaterThan(5);
    expect(obs.filter((o) => o.subject?.reference === 'Patient/pt-order')).toHaveLength(1);

    // A re-run: everything is skipped; no job runs again, nothing new in FHIR.
    const again = await runVbmd(['backfill', '--from', '2022-01-01', '--to', '2024-12-31', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { counts: Record<string, number> }).counts).toEqual({ found: 50, skipped: 50, unusable: 0, queued: 0, done: 0, failed: 0, needsReview: 0 });
    expect((await summaries()).length).toBe(obs.length);
    const after2 = await Promise.all(archive.map((s) => api<Job>(`/api/jobs/study-${s.studyInstanceUid}`)));
    expect(after2.map((j) => [j.state, j.attempts, j.finishedAt])).toEqual(backfill.map((j) => [j.state, j.attempts, j.finishedAt]));
    const { counts } = await api<{ counts: Record<string, number> }>('/api/jobs?state=completed');
    expect(counts).toMatchObject({ completed: 41, 'needs-review': 10, failed: 0, waiting: 0, active: 0 });
    // The latest run's progress is on /metrics of the service.
    const metrics = parsePrometheusText(await (await fetch(`${env.PUBLIC_BASE_URL}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text());
    expect(metrics.value('vbmd_backfill_studies', { state: 'found' })).toBe(50);
    expect(metrics.value('vbmd_backfill_studies', { state: 'skipped' })).toBe(50);
    expect(metrics.value('vbmd_jobs', { queue: 'embedded', state: 'needs-review' })).toBe(10);
  }, 400_000);
});
