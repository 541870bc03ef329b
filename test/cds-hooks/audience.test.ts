import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClientKeyFile, signClientJwt } from '../../cds-hooks/client-jwt.js';
import { loadEnvConfig, serviceMode } from '../../src/config.js';
import { startService } from '../../src/cli/service.js';
import type { RunningService } from '../../src/cli/service.js';

/**
 * The CDS client JWT's `aud` is checked against the service's configured URL, never against the Host
 * header a caller sends (the caller would choose the audience its token was minted for). A production
 * start without PUBLIC_BASE_URL is refused.
 */
let dir: string;
let service: RunningService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vbmd-aud-'));
  service = await startService(loadEnvConfig({ VBMD_DATA_DIR: join(dir, 'data'), PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', RUN_WORKER: 'false' }), {
    quiet: true,
    skipDemoStudies: true,
  });
}, 120_000);

afterAll(async () => {
  await service?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function getWithHost(path: string, host: string, token: string): Promise<number> {
  const u = new URL(`${service.url!}${path}`);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', headers: { host, authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('CDS client JWT audience', () => {
  it('a token minted for another host is refused even when the Host header names that host', async () => {
    const key = await readClientKeyFile(service.sandbox!.cdsClientKeyFile);
    const forged = await signClientJwt(key, 'http://other-service.example:8080/cds-services');
    expect(await getWithHost('/cds-services', 'other-service.example:8080', forged)).toBe(401);
    const right = await signClientJwt(key, `${service.publicBaseUrl}/cds-services`);
    expect(await getWithHost('/cds-services', 'other-service.example:8080', right)).toBe(200);
  });

  it('production refuses to start without PUBLIC_BASE_URL', () => {
    const env = {
      FHIR_BASE_URL: 'https://ehr.example.org/fhir',
      FHIR_BEARER_TOKEN: 't',
      DICOMWEB_URL: 'https://pacs.example.org/dicom-web',
      CDS_CLIENTS: JSON.stringify([{ iss: 'https://ehr.example.org', jwks_url: 'https://ehr.example.org/jwks.json' }]),
    };
    expect(() => serviceMode(loadEnvConfig(env))).toThrow(/PUBLIC_BASE_URL is not set/);
    expect(serviceMode(loadEnvConfig({ ...env, PUBLIC_BASE_URL: 'https://vbmd.example.org' }))).toBe('production');
  });
});
