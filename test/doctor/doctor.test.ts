import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../cds-hooks/client-jwt.js';
import { skewResult } from '../../src/doctor/checks.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/index.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/index.js';
import { EMBEDDED_SCHEMA_VERSION } from '../../src/jobs/sqlite-schema.js';
import { freeLoopbackPort, startOrthanc } from '../support/orthanc.js';
import type { OrthancHandle } from '../support/orthanc.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';
import { runVbmd } from '../support/vbmd-process.js';

/**
 * `vbmd doctor` (the real command) against a good deployment (Orthanc, the FHIR server, Redis with AOF, the
 * committed model) and broken ones: servers that do not answer, a missing model file, an embedded store
 * written by a newer vbmd, Redis down, incomplete settings. Each problem is named in plain words and fails
 * the command; a good deployment passes.
 */
let orthanc: OrthancHandle;
let fhir: StartedFhirServer;
let redis: RedisHandle;
let work: string;
let good: Record<string, string>;

interface Report {
  ok: boolean;
  checks: { check: string; status: string; message: string }[];
}

async function doctor(env: Record<string, string>): Promise<{ code: number | null; report: Report }> {
  const r = await runVbmd(['doctor', '--json'], { ...env, LOG_LEVEL: 'silent' }, 60_000);
  return { code: r.code, report: JSON.parse(r.stdout) as Report };
}

const byName = (r: Report, name: string) => r.checks.find((c) => c.check === name);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vbmd-doctor-'));
  const key = await generateClientKey('https://ehr.doctor.test');
  [orthanc, fhir, redis] = await Promise.all([startOrthanc(), startFhirServer(), startRedis({ persistence: 'aof' })]);
  good = {
    FHIR_BASE_URL: fhir.baseUrl,
    FHIR_BEARER_TOKEN: 'doctor-token',
    DICOMWEB_URL: orthanc.dicomWebUrl,
    CDS_CLIENTS: JSON.stringify([{ iss: key.iss, jwks: { keys: [key.publicJwk] } }]),
    PUBLIC_BASE_URL: 'http://127.0.0.1:8080',
    REDIS_URL: redis.url,
    VBMD_DATA_DIR: join(work, 'good'),
  };
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([orthanc?.stop(), fhir?.close(), redis?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('vbmd doctor', () => {
  it('passes a good deployment, every check ok or not applicable', async () => {
    const { code, report } = await doctor(good);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.checks.filter((c) => c.status !== 'ok' && c.status !== 'skip')).toEqual([]);
    for (const name of ['settings', 'FHIR server', 'PACS', 'Redis', 'Redis persistence', 'model', 'clock vs the FHIR server', 'clock vs Redis', 'data folder']) {
      expect(byName(report, name)?.status, name).toBe('ok');
    }
    expect(byName(report, 'model')?.message).toMatch(/vbmd-resunet3d .* matches its SHA-256/);
  });

  it('names each problem of a broken one: servers away, model missing, store from a newer vbmd', async () => {
    const dataDir = join(work, 'broken');
    mkdirSync(dataDir, { recursive: true });
    const db = new Database(join(dataDir, 'vbmd.sqlite'));
    db.pragma(`user_version = ${EMBEDDED_SCHEMA_VERSION + 3}`);
    db.close();
    const closed = await freeLoopbackPort();
    const { REDIS_URL: _r, ...noRedis } = good;
    const { code, report } = await doctor({
      ...noRedis,
      FHIR_BASE_URL: `http://127.0.0.1:${closed}/fhir`,
      DICOMWEB_URL: `http://127.0.0.1:${closed}/dicom-web`,
      VBMD_MODEL_FILE: join(work, 'vbmd-resunet3d-9.9.9.onnx'),
      VBMD_DATA_DIR: dataDir,
    });
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(byName(report, 'FHIR server')).toMatchObject({ status: 'fail', message: expect.stringContaining(`127.0.0.1:${closed}`) });
    expect(byName(report, 'PACS')).toMatchObject({ status: 'fail', message: expect.stringMatching(/connection was refused/) });
    expect(byName(report, 'model')).toMatchObject({ status: 'fail', message: expect.stringContaining('vbmd-resunet3d-9.9.9.onnx') });
    expect(byName(report, 'embedded store')).toMatchObject({ status: 'fail', message: expect.stringMatching(/newer than this vbmd/) });
    expect(byName(report, 'Redis')?.status).toBe('skip');
  });

  it('says when Redis does not answer, and when settings are incomplete', async () => {
    const closed = await freeLoopbackPort();
    const down = await doctor({ ...good, REDIS_URL: `redis://127.0.0.1:${closed}` });
    expect(down.code).toBe(1);
    expect(byName(down.report, 'Redis')).toMatchObject({ status: 'fail', message: expect.stringMatching(/did not answer/) });
    const { CDS_CLIENTS: _c, ...incomplete } = good;
    const bad = await doctor(incomplete);
    expect(bad.code).toBe(1);
    expect(byName(bad.report, 'settings')).toMatchObject({ status: 'fail', message: expect.stringContaining('CDS_CLIENTS is not set') });
    // The servers are still checked: one run says everything that is wrong.
    expect(byName(bad.report, 'FHIR server')?.status).toBe('ok');
    const unparsable = await doctor({ ...good, QIDO_POLL_INTERVAL_S: 'soon' });
    expect(unparsable.report.checks).toEqual([{ check: 'settings', status: 'fail', message: expect.stringContaining('QIDO_POLL_INTERVAL_S') }]);
  });

  it('judges clock skew: seconds agree, beyond 5 s a warning, beyond the 30 s JWT tolerance a failure', () => {
    expect(skewResult('the FHIR server', 1.2).status).toBe('ok');
    expect(skewResult('the FHIR server', -12).status).toBe('warn');
    expect(skewResult('Redis', 45)).toMatchObject({ status: 'fail', message: expect.stringMatching(/45 s ahead of Redis/) });
  });
});
