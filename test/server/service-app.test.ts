import { createServer } from 'node:http';
import type { Server } from 'node:http';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { FhirClient } from '../../src/fhir/client.js';
import { staticTokenAuthorizer } from '../../src/jobs/http-api.js';
import { SqliteJobQueue } from '../../src/jobs/sqlite-queue.js';
import type { AnalysisJobData } from '../../src/jobs/analysis-job.js';
import { createServiceApp } from '../../src/server.js';
import { freeLoopbackPort } from '../support/orthanc.js';
import { testCdsDeps } from '../support/cds-app.js';

/**
 * The composed HTTP service (src/server.ts) on loopback: CDS and API JSON carry nosniff and no-store (cards
 * carry PHI), and /readyz tells an anonymous caller only which checks pass, never the internal URLs in the
 * failure reasons (an API token sees those).
 */
let server: Server;
let base: string;
let key: CdsClientKey;
let queue: SqliteJobQueue<AnalysisJobData>;
let deadFhir: string;

beforeAll(async () => {
  key = await generateClientKey('https://ehr.headers.test');
  server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  // Nothing listens there: the FHIR readiness check fails with a message naming the server's URL.
  deadFhir = `http://127.0.0.1:${await freeLoopbackPort()}/fhir`;
  const fhir = new FhirClient({ baseUrl: deadFhir, retry: { retries: 0 } });
  queue = new SqliteJobQueue<AnalysisJobData>({ db: new Database(':memory:'), retry: { retries: 0, baseDelayMs: 10 } });
  const app = createServiceApp({
    cds: testCdsDeps({ clients: [key], publicBaseUrl: base }).deps,
    queue,
    apiAuthorize: staticTokenAuthorizer(['ops-token']),
    publicBaseUrl: base,
    readiness: [
      { name: 'fhir', check: async () => void (await fhir.request('GET', 'metadata')) },
      { name: 'queue', check: () => queue.ping() },
    ],
  });
  server.on('request', app);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await queue.close();
});

describe('service HTTP surface', () => {
  it('CDS hook answers and API JSON are nosniff and no-store', async () => {
    const url = `${base}/cds-services/vbmd-patient-view`;
    const hook = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` },
      body: JSON.stringify({
        hook: 'patient-view',
        hookInstance: crypto.randomUUID(),
        context: { userId: 'Practitioner/u1', patientId: 'p1' },
        prefetch: { vbmdObservations: { resourceType: 'Bundle', type: 'searchset', entry: [] }, riskAssessments: { resourceType: 'Bundle', type: 'searchset', entry: [] } },
      }),
    });
    expect(hook.status).toBe(200);
    const jobs = await fetch(`${base}/api/jobs`, { headers: { authorization: 'Bearer ops-token' } });
    expect(jobs.status).toBe(200);
    for (const res of [hook, jobs]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('/readyz names failing checks but no internal URL for an anonymous caller; details with an API token', async () => {
    const anon = await fetch(`${base}/readyz`);
    expect(anon.status).toBe(503);
    expect(anon.headers.get('cache-control')).toBe('no-store');
    const text = await anon.text();
    expect(JSON.parse(text)).toEqual({ status: 'not-ready', checks: { fhir: { ok: false }, queue: { ok: true } } });
    expect(text).not.toContain('127.0.0.1');
    const ops = (await (await fetch(`${base}/readyz`, { headers: { authorization: 'Bearer ops-token' } })).json()) as {
      checks: { fhir: { ok: boolean; error?: string } };
    };
    expect(ops.checks.fhir.ok).toBe(false);
    expect(ops.checks.fhir.error).toContain(new URL(deadFhir).origin);
  });
});
