import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import express from 'express';
import { Redis } from 'ioredis';
import { createStudyApiRouter, staticTokenAuthorizer } from '../../src/jobs/http-api.js';
import { SqliteJobQueue } from '../../src/jobs/sqlite-queue.js';
import type { AnalysisJobData } from '../../src/jobs/analysis-job.js';
import { RedisWatchStore, SqliteWatchStore } from '../../src/jobs/watches.js';
import type { WatchStore } from '../../src/jobs/watches.js';
import { startStudyPoller } from '../../src/jobs/study-poller.js';
import type { DicomSource, SeriesCandidate } from '../../src/dicom/source.js';
import { VbmdError } from '../../src/util/errors.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';

/**
 * Study arrival: the analyze API and ImagingStudy notification (auth, validation, one job per study), the
 * persisted watches (SQLite and Redis), and the QIDO poller's settle rule.
 */
let server: Server;
let base: string;
let queue: SqliteJobQueue<AnalysisJobData>;
let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
  queue = new SqliteJobQueue<AnalysisJobData>({ db: new Database(':memory:'), retry: { retries: 1, baseDelayMs: 10 } });
  const app = express();
  app.use(createStudyApiRouter({ queue, authorize: staticTokenAuthorizer(['s3cret']) }));
  await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await queue.close();
  await redis?.stop();
});

const post = (path: string, body?: unknown, token = 's3cret') =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });

describe('study API', () => {
  it('queues one job per study, authenticated, and shows its state', async () => {
    expect((await post('/api/studies/1.2.3.4/analyze', undefined, '')).status).toBe(401);
    expect((await post('/api/studies/1.2.3.4/analyze', undefined, 'wrong')).status).toBe(401);
    const r = await post('/api/studies/1.2.3.4/analyze', { patient: 'Patient/p1', accessionNumber: 'A1' });
    expect(r.status).toBe(202);
    const body = (await r.json()) as { jobId: string; created: boolean; status: string };
    expect(body).toMatchObject({ jobId: 'study-1.2.3.4', created: true });
    expect(r.headers.get('location')).toBe(body.status);
    const again = (await (await post('/api/studies/1.2.3.4/analyze')).json()) as { created: boolean };
    expect(again.created).toBe(false);
    const re = (await (await post('/api/studies/1.2.3.4/analyze?reanalyze=true')).json()) as { jobId: string; created: boolean };
    expect(re.created).toBe(true);
    expect(re.jobId).toMatch(/^study-1\.2\.3\.4-r\d+$/);
    const job = await fetch(body.status, { headers: { authorization: 'Bearer s3cret' } });
    expect(await job.json()).toMatchObject({ id: 'study-1.2.3.4', state: 'waiting', data: { studyInstanceUid: '1.2.3.4', patient: 'Patient/p1', trigger: 'api' } });
    const listing = await fetch(`${base}/api/jobs?state=waiting`, { headers: { authorization: 'Bearer s3cret' } });
    expect(await listing.json()).toMatchObject({ state: 'waiting', counts: { waiting: 2, failed: 0 } });
    expect((await fetch(`${base}/api/jobs?state=bogus`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(400);
  });

  it('rejects a bad UID or body with a clear 400', async () => {
    const bad = await post('/api/studies/not-a-uid/analyze');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain('DICOM UID');
    const badBody = await post('/api/studies/1.2.3.5/analyze', { patient: '123' });
    expect(((await badBody.json()) as { message: string }).message).toContain('patient: must be Patient/<id>');
  });

  it('takes a FHIR ImagingStudy notification (bare or in a Bundle)', async () => {
    const study = {
      resourceType: 'ImagingStudy',
      id: 'is-1',
      status: 'available',
      identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.3.9' }],
      subject: { reference: 'Patient/p9' },
      basedOn: [{ reference: 'ServiceRequest/sr9' }],
    };
    const r = await post('/api/notifications/imaging-study', { resourceType: 'Bundle', type: 'history', entry: [{ resource: study }] });
    expect(r.status).toBe(202);
    expect((await queue.get('study-1.2.3.9'))?.data).toEqual({
      studyInstanceUid: '1.2.3.9',
      patient: 'Patient/p9',
      serviceRequest: 'ServiceRequest/sr9',
      imagingStudy: 'ImagingStudy/is-1',
      trigger: 'imagingstudy-notification',
      // A fresh correlation id for the study's log lines, as the response header says.
      correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect((await post('/api/notifications/imaging-study', { resourceType: 'ImagingStudy', identifier: [] })).status).toBe(400);
  });
});

describe.each([
  ['SQLite', async (): Promise<WatchStore> => new SqliteWatchStore(new Database(':memory:'))],
  ['Redis', async (): Promise<WatchStore> => new RedisWatchStore(new Redis(redis.url), `t${Date.now()}`)],
])('watches (%s)', (_label, make) => {
  it('upserts per order, lists due ones, finds by accession, expires and marks found', async () => {
    const store = await make();
    const a = await store.upsert({ patientId: 'p1', serviceRequestId: 'sr1', accessionNumber: 'ACC1', hook: 'order-select', ttlMs: 60_000 });
    const a2 = await store.upsert({ patientId: 'p1', serviceRequestId: 'sr1', accessionNumber: 'ACC1', hook: 'order-sign', ttlMs: 60_000 });
    expect(a2.id).toBe(a.id);
    expect(a2.hook).toBe('order-sign');
    await store.upsert({ patientId: 'p2', serviceRequestId: 'sr2', hook: 'order-sign', ttlMs: 60_000 }); // no accession: not polled
    await store.upsert({ patientId: 'p3', serviceRequestId: 'sr3', accessionNumber: 'ACC3', hook: 'order-sign', ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 10));
    const now = new Date();
    expect((await store.due(now, 10)).map((w) => w.accessionNumber)).toEqual(['ACC1']);
    expect(await store.expire(now)).toBe(1);
    expect((await store.findByAccession('ACC1'))?.id).toBe(a.id);
    await store.markFound(a.id, '1.2.3');
    expect(await store.get(a.id)).toMatchObject({ status: 'found', studyInstanceUid: '1.2.3' });
    expect(await store.due(now, 10)).toEqual([]);
  });

  it('lists every order naming an accession, with its issuer; queued is not found; refuses unstorable watches', async () => {
    const store = await make();
    const x = await store.upsert({ patientId: 'pa', serviceRequestId: 'sx1', accessionNumber: 'ACC-X', accessionSystem: 'urn:oid:1.2.3', hook: 'order-sign', ttlMs: 60_000 });
    const y = await store.upsert({ patientId: 'pb', serviceRequestId: 'sx2', accessionNumber: 'ACC-X', hook: 'order-sign', ttlMs: 60_000 });
    expect((await store.listByAccession('ACC-X')).map((w) => [w.id, w.patientId, w.accessionSystem])).toEqual([
      [x.id, 'pa', 'urn:oid:1.2.3'],
      [y.id, 'pb', undefined],
    ]);
    await store.markQueued(x.id, '1.2.9');
    expect(await store.get(x.id)).toMatchObject({ status: 'queued', studyInstanceUid: '1.2.9' });
    expect((await store.due(new Date(), 10)).map((w) => w.id)).toEqual([y.id]);
    // A re-signed order does not reopen a queued watch.
    expect((await store.upsert({ patientId: 'pa', serviceRequestId: 'sx1', accessionNumber: 'ACC-X', hook: 'order-sign', ttlMs: 60_000 })).status).toBe('queued');
    await expect(store.upsert({ patientId: 'p'.repeat(100), accessionNumber: 'ACC-Y', hook: 'order-sign', ttlMs: 60_000 })).rejects.toThrow(/Not a storable watch/);
    await expect(store.upsert({ patientId: 'pc', accessionNumber: 'A'.repeat(10_000), hook: 'order-sign', ttlMs: 60_000 })).rejects.toThrow(/Not a storable watch/);
    expect(await store.listByAccession('A'.repeat(10_000))).toEqual([]);
  });
});

describe('QIDO poller', () => {
  it('queues a watched study only once its instance count stopped changing, and treats not-found as not yet', async () => {
    const watches = new SqliteWatchStore(new Database(':memory:'));
    const q = new SqliteJobQueue<AnalysisJobData>({ db: new Database(':memory:'), retry: { retries: 0, baseDelayMs: 1 } });
    const w = await watches.upsert({ patientId: 'p1', serviceRequestId: 'sr1', accessionNumber: 'ACC9', hook: 'order-sign', ttlMs: 60_000 });
    let instances = 0;
    const source: DicomSource = {
      description: 'fake PACS',
      findSeries: async () => {
        if (instances === 0) throw new VbmdError('not-found', 'No study with accession ACC9.');
        return [{ studyInstanceUid: '1.2.840.9', seriesInstanceUid: '1.2.840.9.1', instanceCount: instances, accessionNumber: 'ACC9' } as SeriesCandidate];
      },
      loadSlices: async () => [],
      studyIdentity: async () => undefined,
    };
    const poller = startStudyPoller({ watches, source, queue: q, intervalMs: 60_000 }, false);
    expect((await poller.pollOnce()).queued).toBe(0); // not there yet
    instances = 100;
    expect((await poller.pollOnce()).queued).toBe(0); // first seen
    instances = 200;
    expect((await poller.pollOnce()).queued).toBe(0); // still arriving
    expect((await poller.pollOnce()).queued).toBe(1); // stable: queued
    // The job is the study record: the order's patient and ServiceRequest, and the last search's answer.
    expect((await q.get('study-1.2.840.9'))?.data).toMatchObject({
      patient: 'Patient/p1',
      serviceRequest: 'ServiceRequest/sr1',
      watchId: w.id,
      trigger: 'qido-poll',
      dicom: { identity: {}, series: [{ seriesInstanceUid: '1.2.840.9.1', instanceCount: 200 }] },
    });
    expect((await watches.get(w.id))?.status).toBe('queued');
    await poller.stop();
    await q.close();
  });
  it('looks at a first-seen study again after the settle time, not a whole interval later', async () => {
    const watches = new SqliteWatchStore(new Database(':memory:'));
    const q = new SqliteJobQueue<AnalysisJobData>({ db: new Database(':memory:'), retry: { retries: 0, baseDelayMs: 1 } });
    await watches.upsert({ patientId: 'p2', serviceRequestId: 'sr2', accessionNumber: 'ACC10', hook: 'order-sign', ttlMs: 60_000 });
    let searches = 0;
    const source: DicomSource = {
      description: 'fake PACS',
      findSeries: async () => {
        searches++;
        return [{ studyInstanceUid: '1.2.840.10', seriesInstanceUid: '1.2.840.10.1', instanceCount: 50, accessionNumber: 'ACC10' } as SeriesCandidate];
      },
      loadSlices: async () => [],
      studyIdentity: async () => ({ patientId: 'MRN-2' }),
    };
    const poller = startStudyPoller({ watches, source, queue: q, intervalMs: 60_000, settleMs: 50 }, false);
    expect((await poller.pollOnce()).queued).toBe(0); // first seen
    const deadline = Date.now() + 5000;
    while (!(await q.get('study-1.2.840.10')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect((await q.get('study-1.2.840.10'))?.data).toMatchObject({ watchId: expect.any(String), dicom: { identity: { patientId: 'MRN-2' } } });
    expect(searches).toBe(2);
    await poller.stop();
    await q.close();
  });
  it('never looks at a watch twice at once: rounds skip a watch whose re-check is pending or searching', async () => {
    const watches = new SqliteWatchStore(new Database(':memory:'));
    const q = new SqliteJobQueue<AnalysisJobData>({ db: new Database(':memory:'), retry: { retries: 0, baseDelayMs: 1 } });
    await watches.upsert({ patientId: 'p3', serviceRequestId: 'sr3', accessionNumber: 'ACC11', hook: 'order-sign', ttlMs: 60_000 });
    let searches = 0;
    let searching = 0;
    let overlapped = false;
    const source: DicomSource = {
      description: 'slow fake PACS',
      findSeries: async () => {
        searches++;
        overlapped ||= searching > 0;
        searching++;
        await new Promise((r) => setTimeout(r, 100)); // a search that takes a while, as a loaded PACS does
        searching--;
        return [{ studyInstanceUid: '1.2.840.11', seriesInstanceUid: '1.2.840.11.1', instanceCount: 50, accessionNumber: 'ACC11' } as SeriesCandidate];
      },
      loadSlices: async () => [],
      studyIdentity: async () => undefined,
    };
    const poller = startStudyPoller({ watches, source, queue: q, intervalMs: 60_000, settleMs: 50 }, false);
    expect((await poller.pollOnce()).queued).toBe(0); // first seen; its re-check is pending
    expect((await poller.pollOnce()).queued).toBe(0); // pending: skipped
    await new Promise((r) => setTimeout(r, 100)); // the re-check is searching now
    expect((await poller.pollOnce()).queued).toBe(0); // searching: skipped
    const deadline = Date.now() + 5000;
    while (!(await q.get('study-1.2.840.11')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await q.get('study-1.2.840.11')).toBeDefined();
    expect({ searches, overlapped }).toEqual({ searches: 2, overlapped: false });
    await poller.stop();
    await q.close();
  });
});
