import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateLimits, parseByteRate } from '../../src/backfill/limits.js';
import { createRetrievalGate } from '../../src/backfill/retrieval-gate.js';
import { DicomWebSource } from '../../src/dicom/dicomweb/source.js';
import type { SeriesCandidate } from '../../src/dicom/source.js';
import { RedisLeaseStore, SqliteLeaseStore, SqliteOpsSettings } from '../../src/jobs/ops-settings.js';
import { withLogContext } from '../../src/util/log-context.js';
import { Redis } from 'ioredis';
import { startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';
import { copyStudies, uploadBaseStudy } from '../support/study-archive.js';

/**
 * The backfill's PACS limits on real WADO-RS retrievals from Orthanc: a byte-rate cap stretches a backfill
 * retrieval to at least bytes/rate and leaves an interactive one alone; a cap of one concurrent retrieval
 * serialises two, and raising it while they wait lets the second start at once; the Redis lease store gives
 * the last slot to exactly one of two workers.
 */
let orthanc: OrthancHandle;
let redis: RedisHandle;
let source: DicomWebSource;
let settings: SqliteOpsSettings;
let series: SeriesCandidate[];
const REFRESH_MS = 50;

beforeAll(async () => {
  [orthanc, redis] = await Promise.all([startOrthanc(), startRedis()]);
  const base = await uploadBaseStudy(orthanc);
  const studies = await copyStudies(orthanc, base, [
    { patientId: 'G-1', accessionNumber: 'G-1', studyDate: '20240101' },
    { patientId: 'G-2', accessionNumber: 'G-2', studyDate: '20240101' },
  ]);
  const db = new Database(':memory:');
  settings = new SqliteOpsSettings(db);
  const gate = createRetrievalGate({ settings, leases: new SqliteLeaseStore(db), refreshMs: REFRESH_MS, waitStepMs: 20 });
  source = new DicomWebSource({ baseUrl: orthanc.dicomWebUrl, allowInsecureHttp: true, retrievalGate: gate });
  series = await Promise.all(studies.map(async (s) => (await source.findSeries({ studyInstanceUid: s.studyInstanceUid }))[0]!));
}, 120_000);

afterAll(async () => {
  source?.close();
  await Promise.allSettled([orthanc?.stop(), redis?.stop()]);
});

/** Loads one series as a backfill (or interactive) job would; returns [start, end] ms and bytes read. */
async function retrieve(s: SeriesCandidate, priority: 'backfill' | 'interactive'): Promise<{ start: number; end: number; bytes: number }> {
  const start = performance.now();
  const slices = await withLogContext({ correlationId: 'gate-test', priority }, () => source.loadSlices(s));
  return { start, end: performance.now(), bytes: slices.reduce((n, x) => n + x.pixels.byteLength, 0) };
}

describe('backfill retrieval limits', () => {
  it('paces a backfill retrieval to the byte-rate cap and leaves interactive ones alone', async () => {
    await updateLimits(settings, { maxConcurrentRetrievals: null, maxBytesPerSecond: parseByteRate('1MB') });
    const free = await retrieve(series[0]!, 'interactive');
    const paced = await retrieve(series[0]!, 'backfill');
    expect(paced.bytes).toBeGreaterThan(1_000_000);
    // Wire bytes exceed the pixel bytes counted here, so bytes/rate is a lower bound of the paced time.
    expect(paced.end - paced.start).toBeGreaterThanOrEqual((paced.bytes / (1024 * 1024)) * 1000 * 0.95);
    expect(free.end - free.start).toBeLessThan(paced.end - paced.start);
  });

  it('serialises backfill retrievals at one at a time, and a raised cap applies while they wait', async () => {
    await updateLimits(settings, { maxConcurrentRetrievals: 1, maxBytesPerSecond: parseByteRate('2MB') });
    // The gate re-reads limits at most every refreshMs (50 ms here): the previous test's paced retrieval may
    // have cached 'no cap' just now, and both would then start at once.
    await new Promise((r) => setTimeout(r, REFRESH_MS * 3));
    const [a, b] = await Promise.all([retrieve(series[0]!, 'backfill'), retrieve(series[1]!, 'backfill')]);
    const [first, second] = a.start <= b.start && a.end <= b.end ? [a, b] : [b, a];
    expect(second.end - first.end).toBeGreaterThan(400);
    // No overlap: the second's data came only after the first released its slot (its own pacing ~0.6 s).
    expect(second.end - second.start).toBeGreaterThan(first.end - first.start + 300);

    const both = Promise.all([retrieve(series[0]!, 'backfill'), retrieve(series[1]!, 'backfill')]);
    await new Promise((r) => setTimeout(r, 100));
    await updateLimits(settings, { maxConcurrentRetrievals: 2 });
    const [c, d] = await both;
    // Raised while the second waited: they overlap now.
    expect(Math.min(c.end, d.end)).toBeGreaterThan(Math.max(c.start, d.start) + 200);
  });

  it('Redis leases: of two workers asking for the last slot, exactly one gets it; a released slot is free again', async () => {
    const r1 = new Redis(redis.url);
    const r2 = new Redis(redis.url);
    try {
      const a = new RedisLeaseStore(r1, 'gate-test:leases');
      const b = new RedisLeaseStore(r2, 'gate-test:leases');
      const got = await Promise.all([a.tryAcquire('w1', 1, 10_000), b.tryAcquire('w2', 1, 10_000)]);
      expect(got.filter(Boolean)).toHaveLength(1);
      expect(await a.count()).toBe(1);
      await (got[0] ? a.release('w1') : b.release('w2'));
      expect(await b.tryAcquire('w3', 1, 50)).toBe(true);
      await new Promise((r) => setTimeout(r, 80));
      // An expired lease (its worker died) no longer counts.
      expect(await a.tryAcquire('w4', 1, 10_000)).toBe(true);
    } finally {
      r1.disconnect();
      r2.disconnect();
    }
  });
});
