import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Observation } from 'fhir/r4.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';

/** The in-process FHIR server over real HTTP on a loopback port: the behaviours other parts rely on. */
let server: StartedFhirServer;
beforeAll(async () => {
  server = await startFhirServer({ port: 0 });
});
afterAll(async () => {
  await server?.close();
});

const json = 'application/fhir+json';
async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.baseUrl}/${path}`, { method: 'POST', headers: { 'content-type': json, ...headers }, body: JSON.stringify(body) });
}
function obs(patient: string, date: string, id: string): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    identifier: [{ system: 'https://test.example/obs', value: id }],
    code: { coding: [{ system: 'https://test.example/code', code: 'x' }] },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: date,
  };
}

describe('in-process FHIR server', () => {
  it('serves a CapabilityStatement at /metadata', async () => {
    const res = await fetch(`${server.baseUrl}/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/fhir\+json/);
    const cs = (await res.json()) as { resourceType: string; fhirVersion: string };
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
  });

  it('creates, reads, and answers conditional create with the existing resource', async () => {
    const first = await post('Observation', obs('srv1', '2024-01-01', 'c1'), { 'If-None-Exist': 'identifier=https://test.example/obs|c1' });
    expect(first.status).toBe(201);
    const created = (await first.json()) as Observation;
    expect(first.headers.get('location')).toContain(`/fhir/Observation/${created.id}`);
    const again = await post('Observation', obs('srv1', '2024-01-01', 'c1'), { 'If-None-Exist': 'identifier=https://test.example/obs|c1' });
    expect(again.status).toBe(200);
    expect(((await again.json()) as Observation).id).toBe(created.id);
    const read = await fetch(`${server.baseUrl}/Observation/${created.id}`);
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('W/"' + created.meta?.versionId + '"');
  });

  it('sorts by -date with time-zone offsets compared as instants and pages with next links', async () => {
    // 2024-03-01T01:00+02:00 is 2024-02-29T23:00Z: earlier than 2024-03-01T00:30Z although its string is larger.
    const dates = ['2024-03-01T00:30:00Z', '2024-03-01T01:00:00+02:00', '2023-05-05', '2025-01-01T00:00:00Z', '2022-01-01'];
    for (const [i, d] of dates.entries()) expect((await post('Observation', obs('srv2', d, `p${i}`))).status).toBe(201);
    const seen: string[] = [];
    let url: string | undefined = `${server.baseUrl}/Observation?patient=Patient/srv2&code=https://test.example/code|x&_sort=-date&_count=2`;
    let pages = 0;
    while (url) {
      const page = (await (await fetch(url)).json()) as Bundle;
      pages++;
      expect(page.total).toBe(5);
      for (const e of page.entry ?? []) {
        expect(e.fullUrl).toBe(`${server.baseUrl}/Observation/${e.resource?.id}`);
        seen.push((e.resource as Observation).effectiveDateTime ?? '');
      }
      url = page.link?.find((l) => l.relation === 'next')?.url;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['2025-01-01T00:00:00Z', '2024-03-01T00:30:00Z', '2024-03-01T01:00:00+02:00', '2023-05-05', '2022-01-01']);
    const count = (await (await fetch(`${server.baseUrl}/Observation?patient=Patient/srv2&_summary=count`)).json()) as Bundle;
    expect(count.total).toBe(5);
    expect(count.entry).toBeUndefined();
  });

  it('rolls a failing transaction back completely', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: obs('srv3', '2024-01-01', 't1'), request: { method: 'POST', url: 'Observation' } },
        // A conditional update that matches nothing with a method that cannot create: the transaction must fail.
        { resource: obs('srv3', '2024-01-02', 't2'), request: { method: 'PUT', url: 'Observation/does-not-exist-xyz' } },
        { request: { method: 'DELETE', url: 'Observation?identifier=https://test.example/obs|nothing' } },
        { request: { method: 'PATCH', url: 'Observation?identifier=https://test.example/obs|nothing' }, resource: { resourceType: 'Parameters', parameter: [] } as never },
      ],
    };
    const res = await post('', bundle);
    expect(res.status).toBeGreaterThanOrEqual(400);
    const after = (await (await fetch(`${server.baseUrl}/Observation?patient=Patient/srv3`)).json()) as Bundle;
    expect(after.total).toBe(0);
  });

  it('answers errors as OperationOutcome', async () => {
    const bad = await fetch(`${server.baseUrl}/Observation`, { method: 'POST', headers: { 'content-type': json }, body: '{not json' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const missing = await fetch(`${server.baseUrl}/Observation/nope`);
    expect(missing.status).toBe(404);
  });

  it('asks verifyAccess for everything but /metadata', async () => {
    const guarded = await startFhirServer({
      verifyAccess: async (req) =>
        req.headers.authorization === 'Bearer good' ? { ok: true } : { ok: false, status: req.headers.authorization ? 403 : 401 },
    });
    try {
      expect((await fetch(`${guarded.baseUrl}/metadata`)).status).toBe(200);
      const anon = await fetch(`${guarded.baseUrl}/Patient`);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toBe('Bearer');
      expect((await fetch(`${guarded.baseUrl}/Patient`, { headers: { authorization: 'Bearer bad' } })).status).toBe(403);
      expect((await fetch(`${guarded.baseUrl}/Patient`, { headers: { authorization: 'Bearer good' } })).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });

  it.each([
    ['GET', 'Nope', undefined, 'application/fhir+json', 404],
    ['POST', 'Observation', '{"resourceType":"Patient"}', 'application/fhir+json', 400],
    ['POST', 'Observation', '{"resourceType":"Observation","status":"final","code":{"text":"x"}}', 'text/plain', 415],
    ['POST', '', '{"resourceType":"Bundle","type":"transaction","entry":[{}]}', 'application/fhir+json', 400],
    ['POST', '', '{"resourceType":"Bundle","type":"collection","entry":[]}', 'application/fhir+json', 400],
    ['PUT', 'Patient/x', '{"resourceType":"Patient","id":"y"}', 'application/fhir+json', 400],
    ['GET', 'Observation?date=notadate', undefined, 'application/fhir+json', 400],
    ['GET', 'Observation/../../etc/passwd', undefined, 'application/fhir+json', 404],
  ] as const)('%s /%s -> %i... answers bad requests with an OperationOutcome', async (method, path, body, ct, status) => {
    const res = await fetch(`${server.baseUrl}/${path}`, { method, headers: { 'content-type': ct }, ...(body ? { body } : {}) });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('its CapabilityStatement is valid R4', async () => {
    const { fhirValidationIssues } = await import('../../src/fhir/definitions.js');
    const cs = await (await fetch(`${server.baseUrl}/metadata`)).json();
    expect(fhirValidationIssues(cs as never).filter((i) => i.severity === 'error')).toEqual([]);
  });
});
