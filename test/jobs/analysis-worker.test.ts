import type { Server } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VbmdReport } from '../../src/bmd/report.js';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { FhirClient } from '../../src/fhir/client.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { analysisJobId } from '../../src/jobs/analysis-job.js';
import type { AnalysisJobData } from '../../src/jobs/analysis-job.js';
import { createAnalysisHandler } from '../../src/jobs/analysis-worker.js';
import { createStudyApiRouter, staticTokenAuthorizer } from '../../src/jobs/http-api.js';
import type { JobInfo, JobState, JobWorker } from '../../src/jobs/queue.js';
import { SqliteJobQueue } from '../../src/jobs/sqlite-queue.js';
import { startStudyPoller } from '../../src/jobs/study-poller.js';
import { SqliteWatchStore } from '../../src/jobs/watches.js';
import { syntheticVolume, tempDir, writeSeries } from '../dicom/synthetic-series.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { lumbarOsteoporosisReport } from '../fhir/reports.js';
import { startFaultyProxy } from '../fhir/support.js';

/**
 * The analysis worker (createAnalysisHandler). The right patient's chart, with real parts: DICOM studies in a folder (the sandbox's source), a FHIR
 * server over HTTP, the embedded queue, the watch store, the QIDO poller and the study API. The attack
 * from the field: an order-sign for patient A carrying the accession of patient B's study put B's result in
 * A's chart. Now the study's DICOM patient is compared with the order's FHIR Patient before anything is
 * read or written; a disagreement, or two orders claiming one accession, holds the job as needs-review
 * (visible in the API, reason without PHI) and writes nothing. Only the measurement is a stand-in (a fixed
 * report, counted), since the engine is not what is under test here. And a failed FHIR write (a real
 * proxy answering 503) is retried from the analysis the first attempt saved, not by analysing again.
 */
const MRN = 'urn:oid:2.16.840.1.113883.3.9999.1';
const RIS = '1.2.826.0.1.3680043.8.498.77';
let fhirServer: StartedFhirServer;
let fhir: FhirClient;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let queue: SqliteJobQueue<AnalysisJobData>;
let watches: SqliteWatchStore;
let worker: JobWorker;
let api: Server;
let apiBase: string;
const analyzed: string[] = [];
const uids: Record<string, string> = {};

async function putPatient(resource: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${fhirServer.baseUrl}/Patient/${String(resource.id)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', ...resource }),
  });
  expect(res.ok).toBe(true);
}

async function writeStudy(name: string, meta: Record<string, unknown>): Promise<void> {
  const uid = `2.25.${BigInt(`0x${crypto.randomUUID().replace(/-/g, '')}`)}`;
  uids[name] = uid;
  await writeSeries(join(tmp.dir, name), { studyInstanceUid: uid, ...meta }, syntheticVolume([16, 16, 4]));
}

beforeAll(async () => {
  [fhirServer, tmp] = await Promise.all([startFhirServer(), tempDir('patient-check')]);
  fhir = new FhirClient({ baseUrl: fhirServer.baseUrl, retry: { retries: 0 } });
  await putPatient({ id: 'pa', identifier: [{ system: MRN, value: 'MRN-A' }], name: [{ family: 'Alpha', given: ['Ann'] }], birthDate: '1950-01-01' });
  await putPatient({ id: 'pb', identifier: [{ system: MRN, value: 'MRN-B' }], name: [{ family: 'Beta', given: ['Bob'] }], birthDate: '1960-02-02' });
  await putPatient({ id: 'pn', name: [{ family: 'Nomad', given: ['Nina'] }], birthDate: '1970-03-03' });
  const acsnIssuer = { IssuerOfAccessionNumberSequence: [{ UniversalEntityID: RIS, UniversalEntityIDType: 'ISO' }] };
  await writeStudy('of-b', { patientId: 'MRN-B', patientName: 'BETA^BOB', patientBirthDate: '19600202', accessionNumber: 'ACC-B' });
  await writeStudy('of-a', { patientId: 'MRN-A', patientName: 'ALPHA^ANN', patientBirthDate: '19500101', accessionNumber: 'ACC-A', extraAttributes: acsnIssuer });
  await writeStudy('claimed-twice', { patientId: 'MRN-A', patientName: 'ALPHA^ANN', patientBirthDate: '19500101', accessionNumber: 'ACC-C' });
  await writeStudy('other-issuer', { patientId: 'MRN-A', patientName: 'ALPHA^ANN', patientBirthDate: '19500101', accessionNumber: 'ACC-I', extraAttributes: acsnIssuer });
  await writeStudy('of-n', { patientId: 'LOCAL-9', patientName: 'NOMAD^NINA', patientBirthDate: '19700303', accessionNumber: 'ACC-N' });
  await writeStudy('stranger', { patientId: 'LOCAL-7', patientName: 'STRANGER^SAM', patientBirthDate: '19800101', accessionNumber: 'ACC-S' });

  const db = new Database(':memory:');
  queue = new SqliteJobQueue<AnalysisJobData>({ db, retry: { retries: 1, baseDelayMs: 20 }, pollMs: 20 });
  watches = new SqliteWatchStore(db);
  const base = lumbarOsteoporosisReport();
  worker = queue.process(
    createAnalysisHandler({
      source: () => new FolderDicomSource(tmp.dir),
      analyze: async (_source, ref): Promise<VbmdReport> => {
        analyzed.push(ref.studyInstanceUid!);
        return { ...base, input: { ...base.input, studyInstanceUid: ref.studyInstanceUid, seriesInstanceUid: `${ref.studyInstanceUid}.1` } };
      },
      fhir,
      watches,
      patientMatch: { mrnSystem: MRN },
    }),
    { concurrency: 1 },
  );
  const app = express();
  app.use(createStudyApiRouter({ queue, authorize: staticTokenAuthorizer(['ops']) }));
  await new Promise<void>((r) => (api = app.listen(0, '127.0.0.1', () => r())));
  apiBase = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()));
  await fhirServer?.close();
  await tmp?.cleanup();
});

async function settled(name: string): Promise<JobInfo<AnalysisJobData>> {
  const id = analysisJobId(uids[name]!);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const j = await queue.get(id);
    const done: JobState[] = ['completed', 'failed', 'needs-review'];
    if (j && done.includes(j.state)) return j;
    if (Date.now() > deadline) throw new Error(`job for ${name} did not settle: ${JSON.stringify(j)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The QIDO poller's settle rule: a study is queued on the second poll that sees the same instances. */
async function pollTwice(): Promise<void> {
  const poller = startStudyPoller({ watches, source: () => new FolderDicomSource(tmp.dir), queue, intervalMs: 60_000 }, false);
  await poller.pollOnce();
  await poller.pollOnce();
  await poller.stop();
}

/** The summary vBMD Observations in a patient's chart. */
async function observationsOf(patient: string): Promise<unknown[]> {
  return fhir.search('Observation', { patient: `Patient/${patient}`, code: VBMD_SUMMARY_CODE_TOKEN });
}

const apiGet = async (path: string) => (await fetch(`${apiBase}${path}`, { headers: { authorization: 'Bearer ops' } })).json() as Promise<Record<string, unknown>>;

describe('a result goes only to the chart of the patient whose images were measured', () => {
  it("order-sign for patient A with the accession of B's study: held for review, nothing written, visible in the API without PHI", async () => {
    const w = await watches.upsert({ patientId: 'pa', serviceRequestId: 'sr-a1', accessionNumber: 'ACC-B', hook: 'order-sign', ttlMs: 3600_000 });
    await pollTwice();
    const job = await settled('of-b');
    expect(job.state).toBe('needs-review');
    expect(job.failedReason).toContain('PatientID is not among the identifiers of Patient/pa');
    expect(job.failedReason).not.toMatch(/MRN-B|BETA|Bob/i);
    expect(analyzed).not.toContain(uids['of-b']);
    expect(await observationsOf('pa')).toHaveLength(0);
    expect(await observationsOf('pb')).toHaveLength(0);
    expect((await watches.get(w.id))?.status).toBe('queued');
    expect(await apiGet(`/api/jobs/${job.id}`)).toMatchObject({ state: 'needs-review', failedReason: job.failedReason });
    const listing = (await apiGet('/api/jobs?state=needs-review')) as { counts: Record<string, number>; jobs: { id: string }[] };
    expect(listing.jobs.map((j) => j.id)).toContain(job.id);
    expect(listing.counts['needs-review']).toBeGreaterThanOrEqual(1);
  });

  it('two orders claiming one accession: held, even when one of them is the right patient', async () => {
    await watches.upsert({ patientId: 'pa', serviceRequestId: 'sr-c1', accessionNumber: 'ACC-C', hook: 'order-sign', ttlMs: 3600_000 });
    await watches.upsert({ patientId: 'pb', serviceRequestId: 'sr-c2', accessionNumber: 'ACC-C', hook: 'order-sign', ttlMs: 3600_000 });
    await pollTwice();
    const job = await settled('claimed-twice');
    expect(job.state).toBe('needs-review');
    expect(job.failedReason).toMatch(/2 orders claim the study's accession number/);
    expect(analyzed).not.toContain(uids['claimed-twice']);
  });

  it('an order whose accession has another issuer than the study: held', async () => {
    await watches.upsert({ patientId: 'pa', serviceRequestId: 'sr-i1', accessionNumber: 'ACC-I', accessionSystem: 'urn:oid:9.9.9', hook: 'order-sign', ttlMs: 3600_000 });
    await pollTwice();
    const job = await settled('other-issuer');
    expect(job.state).toBe('needs-review');
    expect(job.failedReason).toContain('accession issuer differs');
  });

  it('the right patient (PatientID of the MRN system, accession issuer agreeing): written, and the order found only then', async () => {
    const w = await watches.upsert({ patientId: 'pa', serviceRequestId: 'sr-a2', accessionNumber: 'ACC-A', accessionSystem: `urn:oid:${RIS}`, hook: 'order-sign', ttlMs: 3600_000 });
    await pollTwice();
    const job = await settled('of-a');
    expect(job.state).toBe('completed');
    expect(await observationsOf('pa')).toHaveLength(1);
    expect(await watches.get(w.id)).toMatchObject({ status: 'found', studyInstanceUid: uids['of-a'] });
  });

  it('a caller naming a patient is checked too: against the order, else by name and birth date', async () => {
    // B's study again, now through the analyze API naming pn: the order for its accession names pa.
    await queue.add({ studyInstanceUid: uids['of-b']!, patient: 'Patient/pn', trigger: 'api' }, { jobId: analysisJobId(uids['of-b']!) });
    const conflicting = await settled('of-b');
    expect(conflicting.state).toBe('needs-review');
    expect(conflicting.failedReason).toContain('the request names Patient/pn but the order');
    // No order, and pn has no identifiers: the study's name and birth date decide, and they differ.
    await queue.add({ studyInstanceUid: uids.stranger!, patient: 'Patient/pn', trigger: 'api' }, { jobId: analysisJobId(uids.stranger!) });
    const wrong = await settled('stranger');
    expect(wrong.state).toBe('needs-review');
    expect(wrong.failedReason).toContain('birth date differs from that of Patient/pn');
    // Patient pn has no identifiers: name and birth date agree with the study, so it is written.
    await queue.add({ studyInstanceUid: uids['of-n']!, patient: 'Patient/pn', trigger: 'api' }, { jobId: analysisJobId(uids['of-n']!) });
    expect((await settled('of-n')).state).toBe('completed');
    expect(await observationsOf('pn')).toHaveLength(1);
    expect(await observationsOf('pb')).toHaveLength(0);
  });
});

describe('a failed FHIR write is retried from the stored analysis', () => {
  it('the next attempt writes the saved report: the study is downloaded and analysed once', async () => {
    const proxy = await startFaultyProxy(fhirServer.baseUrl);
    const db = new Database(':memory:');
    const q = new SqliteJobQueue<AnalysisJobData>({ db, retry: { retries: 2, baseDelayMs: 20 }, pollMs: 20 });
    const base = lumbarOsteoporosisReport();
    const runs: string[] = [];
    const w = q.process(
      createAnalysisHandler({
        source: () => new FolderDicomSource(tmp.dir),
        analyze: async (_source, ref): Promise<VbmdReport> => {
          runs.push(ref.studyInstanceUid!);
          return { ...base, input: { ...base.input, studyInstanceUid: ref.studyInstanceUid, seriesInstanceUid: `${ref.studyInstanceUid}.9` } };
        },
        // No retries inside the client: the write fails the attempt and the queue runs the job again.
        fhir: new FhirClient({ baseUrl: proxy.url, retry: { retries: 0 } }),
        watches: new SqliteWatchStore(db),
        patientMatch: { mrnSystem: MRN },
      }),
      { concurrency: 1 },
    );
    try {
      await writeStudy('write-retry', { patientId: 'MRN-B', patientName: 'BETA^BOB', patientBirthDate: '19600202', accessionNumber: 'ACC-W' });
      proxy.failNext('before', 1);
      const id = analysisJobId(uids['write-retry']!);
      await q.add({ studyInstanceUid: uids['write-retry']!, patient: 'Patient/pb', trigger: 'api' }, { jobId: id });
      const deadline = Date.now() + 20_000;
      while ((await q.get(id))?.state !== 'completed') {
        if (Date.now() > deadline) throw new Error(`not completed: ${JSON.stringify(await q.get(id))}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      expect((await q.get(id))?.attempts).toBe(2);
      expect(proxy.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([503, 200]);
      expect(runs).toEqual([uids['write-retry']]);
      expect(await observationsOf('pb')).toHaveLength(1);
    } finally {
      await w.close();
      await q.close();
      await proxy.close();
    }
  });
});
