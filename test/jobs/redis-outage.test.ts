import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { loadEnvConfig } from '../../src/config.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';
import { freeLoopbackPort } from '../support/orthanc.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';

/**
 * The production service on a real Redis, with Redis taken away: hooks and the study API answer at once
 * (an error, never a hang), and come back with Redis. A Redis without persistence is refused at start, and
 * one restarted without persistence under a running service is reported (error log line, /readyz), not
 * silent.
 */
const ROOT = resolve(__dirname, '../..');
let fhir: StartedFhirServer;
let key: CdsClientKey;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-redis-outage-'));
  [fhir, key] = await Promise.all([startFhirServer(), generateClientKey('https://ehr.outage.test')]);
});
afterAll(async () => {
  await fhir?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function productionEnv(redisUrl: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const port = await freeLoopbackPort();
  return {
    FHIR_BASE_URL: fhir.baseUrl,
    FHIR_BEARER_TOKEN: 'fhir-token',
    // Nothing listens there: no DICOM is read in these tests.
    DICOMWEB_URL: `http://127.0.0.1:${await freeLoopbackPort()}/dicom-web`,
    CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
    ANALYZE_API_TOKENS: 'api-token',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    PORT: String(port),
    HOST: '127.0.0.1',
    VBMD_DATA_DIR: join(work, `data-${port}`),
    REDIS_URL: redisUrl,
    RUN_WORKER: 'false',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

async function timed(base: string, path: string, init: RequestInit): Promise<{ status: number; ms: number }> {
  const t0 = Date.now();
  const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
  await res.arrayBuffer();
  return { status: res.status, ms: Date.now() - t0 };
}

async function patientView(base: string): Promise<{ status: number; ms: number }> {
  const url = `${base}/cds-services/vbmd-patient-view`;
  const empty = { resourceType: 'Bundle', type: 'searchset', entry: [] };
  return timed(base, '/cds-services/vbmd-patient-view', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` },
    body: JSON.stringify({ hook: 'patient-view', hookInstance: crypto.randomUUID(), context: { userId: 'Practitioner/u', patientId: 'p1' }, prefetch: { vbmdObservations: empty, riskAssessments: empty } }),
  });
}

describe('Redis stopped under a running service', () => {
  let redis: RedisHandle;
  let service: RunningService;
  afterAll(async () => {
    await service?.close();
    await redis?.stop();
  });

  it('hooks and the study API answer within 1 s while Redis is down, and work again when it is back', async () => {
    redis = await startRedis({ persistence: 'aof' });
    service = await startService(loadEnvConfig(await productionEnv(redis.url)), { quiet: true });
    const base = service.url!;
    expect((await patientView(base)).status).toBe(200);

    await redis.pause();
    for (let i = 0; i < 3; i++) {
      const hook = await patientView(base);
      expect(hook.status).toBe(503);
      expect(hook.ms).toBeLessThan(1000);
    }
    const analyze = await timed(base, '/api/studies/1.2.3.4.5/analyze', { method: 'POST', headers: { authorization: 'Bearer api-token' } });
    expect(analyze.status).toBe(503);
    expect(analyze.ms).toBeLessThan(1000);
    const ready = await timed(base, '/readyz', {});
    expect(ready.status).toBe(503);

    await redis.resume({ persistence: 'aof' });
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await patientView(base)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  }, 120_000);
});

describe('Redis persistence', () => {
  it('a start on a Redis without persistence is refused, naming the fix; allowed with REDIS_REQUIRE_PERSISTENCE=false', async () => {
    const redis = await startRedis({ persistence: 'none' });
    try {
      await expect(startService(loadEnvConfig(await productionEnv(redis.url)), { quiet: true })).rejects.toThrow(/does not persist.*appendonly.*REDIS_REQUIRE_PERSISTENCE=false/);
      const s = await startService(loadEnvConfig(await productionEnv(redis.url, { REDIS_REQUIRE_PERSISTENCE: 'false' })), { quiet: true });
      await s.close();
    } finally {
      await redis.stop();
    }
  }, 60_000);

  it('Redis restarted without persistence under a running service: the loss is logged and /readyz reports it', async () => {
    const redis = await startRedis({ persistence: 'aof' });
    const env = await productionEnv(redis.url, { LOG_LEVEL: 'info' });
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'start'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const base = env.PUBLIC_BASE_URL!;
    const readyz = async () => (await fetch(`${base}/readyz`, { headers: { authorization: 'Bearer api-token' } }).catch(() => undefined));
    try {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && (await readyz())?.status === undefined) await new Promise((r) => setTimeout(r, 200));
      // Work the service holds only in Redis: a queued study.
      expect((await timed(base, '/api/studies/1.2.3.4.6/analyze', { method: 'POST', headers: { authorization: 'Bearer api-token' } })).status).toBe(202);

      await redis.pause();
      await redis.resume({ persistence: 'none' });
      const until = Date.now() + 30_000;
      while (Date.now() < until && !stderr.includes("came back without this service's data")) await new Promise((r) => setTimeout(r, 200));
      const line = stderr.split('\n').find((l) => l.includes("came back without this service's data"));
      expect(line, `stderr was:\n${stderr.slice(-2000)}`).toBeDefined();
      expect(JSON.parse(line!).level).toBe(50); // pino error
      const res = await readyz();
      expect(res!.status).toBe(503);
      const body = (await res!.json()) as { checks: { queue: { ok: boolean; error?: string } } };
      expect(body.checks.queue.ok).toBe(false);
      expect(body.checks.queue.error).toMatch(/does not persist.*came back without this service's data/);
      // Through the outage every line on stderr is the start banner or one structured log line: no raw stack traces.
      const lines = stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('vbmd service on '));
      expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await redis.stop();
    }
  }, 120_000);
});
