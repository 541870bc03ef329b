import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle } from 'fhir/r4.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { runCohort } from '../../src/population/query.js';
import { FhirSearchSource } from '../../src/population/sources/fhir-search.js';
import { NdjsonDirectorySource } from '../../src/population/sources/ndjson-dir.js';
import { StaticTokenProvider } from '../../src/net/token-provider.js';
import { isVbmdError } from '../../src/util/errors.js';
import { AS_OF, cohortFixture } from './fixtures.js';
import { checkKnownAnswers, comparable } from './known-answers.js';
import { writeFixtureNdjson } from './write-ndjson.js';

/** The cohort against the in-process FHIR server over real HTTP on a loopback port, paging with small pages. */
let server: StartedFhirServer;
let dir: string;
const requests: string[] = [];

beforeAll(async () => {
  server = await startFhirServer({
    port: 0,
    verifyAccess: async (req) => {
      requests.push(req.originalUrl);
      return req.headers.authorization === 'Bearer cohort-token' ? { ok: true } : { ok: false, status: 401 };
    },
  });
  const f = cohortFixture();
  const entries = [...f.observations, ...f.other, ...f.requests, ...f.statements].map((resource) => {
    const { id: _id, ...rest } = resource;
    return { resource: rest, request: { method: 'POST' as const, url: resource.resourceType } };
  });
  const batch: Bundle = { resourceType: 'Bundle', type: 'batch', entry: entries };
  const res = await fetch(server.baseUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', authorization: 'Bearer cohort-token' },
    body: JSON.stringify(batch),
  });
  expect(res.status).toBe(200);
  const out = (await res.json()) as Bundle;
  for (const e of out.entry ?? []) expect(e.response?.status, JSON.stringify(e.response?.outcome)).toMatch(/^201/);
  dir = await writeFixtureNdjson();
});
afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('cohort over FHIR search (paged)', () => {
  it('gives the known answers for every query, the same as the NDJSON path', async () => {
    requests.length = 0;
    const source = new FhirSearchSource(server.baseUrl, { auth: new StaticTokenProvider('cohort-token'), pageSize: 4 });
    const viaFhir = await checkKnownAnswers(source);
    const viaNdjson = await checkKnownAnswers(new NdjsonDirectorySource(dir));
    for (const k of Object.keys(viaNdjson)) expect(comparable(viaFhir[k]), k).toEqual(comparable(viaNdjson[k]));
    // It paged (24 vBMD + 1 lab Observation at 4 per page is 7 pages; the code filter dropped the lab one server-side).
    const obsPages = requests.filter((u) => u.includes('/Observation?'));
    expect(obsPages.length).toBeGreaterThanOrEqual(6 * 5);
    expect(requests.some((u) => /_offset=4\b/.test(u))).toBe(true);
    // Never a server-side quantity search.
    expect(requests.some((u) => /value-quantity/.test(u))).toBe(false);
  });

  it('says which server refused the credentials', async () => {
    const err = await runCohort(new FhirSearchSource(server.baseUrl, { auth: new StaticTokenProvider('wrong') }), { asOf: AS_OF }).catch((e: unknown) => e);
    expect(isVbmdError(err)).toBe(true);
    expect((err as Error).message).toContain(server.baseUrl);
    expect((err as Error).message).toMatch(/HTTP 401/);
    expect((err as Error).message).not.toContain('wrong');
  });

  it('names an unreachable server', async () => {
    const err = await runCohort(new FhirSearchSource('http://127.0.0.1:9/fhir'), {}).catch((e: unknown) => e);
    expect(isVbmdError(err)).toBe(true);
    expect((err as Error).message).toMatch(/Cannot reach http:\/\/127\.0\.0\.1:9\/fhir/);
  });
});
