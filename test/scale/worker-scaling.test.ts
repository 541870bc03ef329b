import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Observation } from 'fhir/r4.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../cds-hooks/client-jwt.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { analysisJobId } from '../../src/jobs/analysis-job.js';
import type { AnalysisJobData, AnalysisJobResult } from '../../src/jobs/analysis-job.js';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import { parsePrometheusText } from '../support/prometheus-text.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';
import { copyStudies, uploadBaseStudy } from '../support/study-archive.js';
import type { ArchiveStudy } from '../support/study-archive.js';
import { spawnVbmd, waitFor } from '../support/vbmd-process.js';
import type { VbmdProcess } from '../support/vbmd-process.js';

/**
 * Many workers on one Redis (the scale-out topology in the README): 1, 2 and 4 `vbmd start --worker-only`
 * processes against one Orthanc and one FHIR server take the same BullMQ queue of STUDIES small studies.
 * Each round starts from an empty Redis and an empty FHIR server; the clock runs from queueing (workers
 * already up, model loaded) to the last job done. Every study must be written exactly once (one summary
 * Observation per study, exactly one job result that created it), whatever the number of workers. The
 * studies per minute are printed, not asserted: on a shared 2-core machine they measure the neighbours as
 * much as the queue (speed targets belong in `npm run bench`).
 */
const STUDIES = 12;
const MRN = 'urn:oid:2.16.840.1.113883.3.9999.19';

let orthanc: OrthancHandle;
let redis: RedisHandle;
let work: string;
let studies: ArchiveStudy[];
let cdsClients: string;
const rates: { workers: number; perMinute: number; seconds: number }[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-scale-'));
  const key = await generateClientKey('https://ehr.scale.test');
  cdsClients = JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]);
  [orthanc, redis] = await Promise.all([startOrthanc(), startRedis({ persistence: 'aof' })]);
  const base = await uploadBaseStudy(orthanc);
  studies = await copyStudies(orthanc, base, Array.from({ length: STUDIES }, (_, i) => ({ patientId: `SC-${i}`, accessionNumber: `SC-ACC-${i}`, studyDate: '20240105' })));
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([orthanc?.stop(), redis?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
  if (rates.length > 0) process.stderr.write(`worker scaling (${STUDIES} studies): ${rates.map((r) => `${r.workers} worker(s) ${r.perMinute.toFixed(1)}/min (${(r.perMinute / r.workers).toFixed(1)}/min per process, ${r.seconds.toFixed(1)} s)`).join('; ')}\n`);
});

async function round(workers: number): Promise<void> {
  const flush = new Redis(redis.url);
  await flush.flushall();
  await flush.quit();
  const fhir: StartedFhirServer = await startFhirServer();
  const procs: VbmdProcess[] = [];
  const queue = new BullMqJobQueue<AnalysisJobData>({ redisUrl: redis.url, retry: { retries: 2, baseDelayMs: 200 } });
  try {
    for (const [i, s] of studies.entries()) {
      const r = await fetch(`${fhir.baseUrl}/Patient/sc-${i}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient', id: `sc-${i}`, identifier: [{ system: MRN, value: s.patientId }] }) });
      expect(r.ok).toBe(true);
    }
    const env = {
      FHIR_BASE_URL: fhir.baseUrl,
      FHIR_BEARER_TOKEN: 'scale-token',
      DICOMWEB_URL: orthanc.dicomWebUrl,
      CDS_CLIENTS: cdsClients,
      PUBLIC_BASE_URL: 'http://127.0.0.1:9',
      REDIS_URL: redis.url,
      PATIENT_MRN_SYSTEM: MRN,
      VBMD_DATA_DIR: join(work, `data-${workers}`),
      AUDIT_TO_FHIR: 'false',
      LOG_LEVEL: 'warn',
      ANALYZE_API_TOKENS: 'scale-metrics-token',
      // A lone worker serves its own /metrics (scraped below).
      ...(workers === 1 ? { METRICS_PORT: String(await freeLoopbackPort()) } : {}),
    };
    for (let i = 0; i < workers; i++) procs.push(spawnVbmd(['start', '--worker-only'], env));
    await Promise.all(procs.map((p, i) => waitFor(`worker ${i} to start`, async () => (p.logs.some((l) => l.includes('vbmd worker running')) ? true : undefined), 90_000)));
    const t0 = performance.now();
    for (const s of studies) await queue.add({ studyInstanceUid: s.studyInstanceUid, trigger: 'api' }, { jobId: analysisJobId(s.studyInstanceUid) });
    await waitFor('every job to finish', async () => {
      const c = await queue.counts();
      if (c.failed + c['needs-review'] > 0) throw new Error(`jobs failed: ${JSON.stringify(c)}`);
      return c.completed === STUDIES ? true : undefined;
    }, 240_000, 100);
    const seconds = (performance.now() - t0) / 1000;
    rates.push({ workers, seconds, perMinute: (STUDIES / seconds) * 60 });

    // Exactly once: one summary Observation per study, one job that created it.
    const bundle = (await (await fetch(`${fhir.baseUrl}/Observation?code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}&_count=1000`)).json()) as { entry?: { resource: Observation }[] };
    const obs = (bundle.entry ?? []).map((e) => e.resource);
    expect(obs).toHaveLength(STUDIES);
    for (const [i, s] of studies.entries()) {
      expect(obs.filter((o) => JSON.stringify(o).includes(s.studyInstanceUid) && o.subject?.reference === `Patient/sc-${i}`)).toHaveLength(1);
      const job = await queue.get(analysisJobId(s.studyInstanceUid));
      expect((job?.result as AnalysisJobResult).created).toBe(true);
      expect(job?.attempts).toBe(1);
    }
    if ('METRICS_PORT' in env) {
      const url = `http://127.0.0.1:${env.METRICS_PORT}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      const m = parsePrometheusText(await (await fetch(url, { headers: { authorization: 'Bearer scale-metrics-token' } })).text());
      expect(m.value('vbmd_analysis_stage_seconds_count', { stage: 'total' })).toBe(STUDIES);
      expect(m.value('vbmd_fhir_write_seconds_count', { outcome: 'ok' })).toBe(STUDIES);
      expect(m.value('vbmd_jobs', { queue: 'bullmq', state: 'completed' })).toBe(STUDIES);
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await queue.close();
    await fhir.close();
  }
}

describe('many worker processes on one Redis', () => {
  it.each([1, 2, 4])('%i worker process(es): every study written exactly once', async (n) => round(n), 360_000);
});
