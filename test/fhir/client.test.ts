import { describe, expect, it } from 'vitest';
import { FhirClient } from '../../src/fhir/client.js';
import { FhirError, outcomeText } from '../../src/fhir/fhir-error.js';
import { backoffDelayMs, DEFAULT_RETRY, retryAfterMs } from '../../src/fhir/retry.js';
import { VbmdError } from '../../src/util/errors.js';

/** Unit tests of the client's retry policy and error shaping, with a scripted fetch (one module, so a
 * stand-in fetch is fine here; the HTTP behaviour is tested for real in roundtrip.test.ts). */

type Step = Response | Error;
function scripted(steps: Step[]): { fetch: typeof fetch; calls: { url: string; init?: RequestInit }[] } {
  const calls: { url: string; init?: RequestInit }[] = [];
  const f = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init });
    const s = steps.shift();
    if (!s) throw new Error('no more scripted responses');
    if (s instanceof Error) throw s;
    return s;
  }) as typeof fetch;
  return { fetch: f, calls };
}
const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/fhir+json', ...headers } });
const oo = (diag: string) => ({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing', diagnostics: diag }] });
const fast = { baseDelayMs: 1, maxDelayMs: 2 };

describe('FhirClient retries', () => {
  it('retries 503, 429 and network errors for a GET, then succeeds', async () => {
    const s = scripted([json(503, oo('down')), json(429, {}), new TypeError('fetch failed'), json(200, { resourceType: 'Patient', id: 'a' })]);
    const c = new FhirClient({ baseUrl: 'http://fhir.test/r4', fetch: s.fetch, retry: fast });
    expect(await c.read('Patient', 'a')).toEqual({ resourceType: 'Patient', id: 'a' });
    expect(s.calls).toHaveLength(4);
  });

  it('retries a 409 from a lost conditional-create race (idempotent transaction)', async () => {
    const s = scripted([json(409, oo('HAPI-0550: version conflict')), json(200, { resourceType: 'Bundle', type: 'transaction-response', entry: [] })]);
    const c = new FhirClient({ baseUrl: 'http://fhir.test', fetch: s.fetch, retry: fast });
    await c.transaction({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Device', ifNoneExist: 'identifier=a|b' }, resource: { resourceType: 'Device' } }] });
    expect(s.calls).toHaveLength(2);
  });

  it('never retries a plain (non-conditional) POST create', async () => {
    const s = scripted([json(503, oo('down'))]);
    const c = new FhirClient({ baseUrl: 'http://fhir.test/r4', fetch: s.fetch, retry: fast });
    await expect(c.create({ resourceType: 'Patient' })).rejects.toBeInstanceOf(FhirError);
    expect(s.calls).toHaveLength(1);
  });

  it('retries a conditional create and sends If-None-Exist', async () => {
    const s = scripted([json(502, {}), json(201, { resourceType: 'Patient', id: 'n' })]);
    const c = new FhirClient({ baseUrl: 'http://fhir.test/r4', fetch: s.fetch, retry: fast });
    await c.create({ resourceType: 'Patient' }, { ifNoneExist: 'identifier=s|v' });
    expect(s.calls).toHaveLength(2);
    expect((s.calls[1].init?.headers as Record<string, string>)['if-none-exist']).toBe('identifier=s|v');
  });

  it('does not retry 4xx, and the error names server, request, status and OperationOutcome diagnostics', async () => {
    const s = scripted([json(422, oo('Observation.code: missing'))]);
    const c = new FhirClient({ baseUrl: 'https://ehr.example.org/fhir/R4', fetch: s.fetch, retry: fast });
    const err = (await c.request('POST', 'Observation', { body: {}, idempotent: true }).catch((e: unknown) => e)) as FhirError;
    expect(err).toBeInstanceOf(FhirError);
    expect(err).toBeInstanceOf(VbmdError);
    expect(err.code).toBe('remote');
    expect(err.status).toBe(422);
    expect(err.message).toBe(
      'The FHIR server https://ehr.example.org answered 422 to POST Observation: Observation.code: missing; the server rejected the content; see its message.',
    );
    expect(s.calls).toHaveLength(1);
  });

  it('a Retry-After longer than the cap ends the retries (the job queue retries later)', async () => {
    const s = scripted([json(503, oo('maintenance'), { 'retry-after': '3600' })]);
    const c = new FhirClient({ baseUrl: 'http://fhir.test', fetch: s.fetch, retry: fast });
    const err = (await c.read('Patient', 'a').catch((e: unknown) => e)) as FhirError;
    expect(err.status).toBe(503);
    expect(s.calls).toHaveLength(1);
  });

  it('stops when the caller aborts, with a cancelled VbmdError', async () => {
    const ctrl = new AbortController();
    const s = scripted([json(503, {}), json(503, {}), json(503, {})]);
    const c = new FhirClient({ baseUrl: 'http://fhir.test', fetch: s.fetch, retry: { baseDelayMs: 1000, maxDelayMs: 1000 } });
    const p = c.read('Patient', 'a', ctrl.signal);
    setTimeout(() => ctrl.abort(), 20);
    const err = (await p.catch((e: unknown) => e)) as VbmdError;
    expect(err.code).toBe('cancelled');
    expect(s.calls.length).toBeLessThanOrEqual(2);
  });

  it('times out a hanging request and says so', async () => {
    const hang = ((_u: unknown, init?: RequestInit) =>
      new Promise((_r, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)))) as typeof fetch;
    const c = new FhirClient({ baseUrl: 'http://fhir.test', fetch: hang, timeoutMs: 30, retry: { retries: 1, ...fast } });
    const err = (await c.read('Patient', 'a').catch((e: unknown) => e)) as FhirError;
    expect(err).toBeInstanceOf(FhirError);
    expect(err.status).toBeUndefined();
    expect(err.message).toMatch(/No answer from the FHIR server http:\/\/fhir\.test .*timed out/);
  });

  it('follows next links on the same server only', async () => {
    const page1 = { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Observation', id: '1' } }], link: [{ relation: 'next', url: 'http://fhir.test/r4/Observation?_offset=1' }] };
    const page2 = { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Observation', id: '2' } }, { resource: { resourceType: 'Patient', id: 'p' }, search: { mode: 'include' } }], link: [{ relation: 'next', url: 'http://evil.test/steal' }] };
    const s = scripted([json(200, page1), json(200, page2)]);
    const c = new FhirClient({ baseUrl: 'http://fhir.test/r4', fetch: s.fetch, retry: fast });
    const err = await c.search('Observation', { patient: 'Patient/1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as Error).message).toContain('another server (http://evil.test)');
    expect(s.calls.map((x) => x.url)).toEqual(['http://fhir.test/r4/Observation?patient=Patient%2F1', 'http://fhir.test/r4/Observation?_offset=1']);
  });
});

describe('retry policy', () => {
  it('full jitter stays under the exponential ceiling', () => {
    expect(backoffDelayMs(0, DEFAULT_RETRY, () => 0.999)).toBeLessThan(DEFAULT_RETRY.baseDelayMs);
    expect(backoffDelayMs(3, DEFAULT_RETRY, () => 0.999)).toBeLessThan(DEFAULT_RETRY.baseDelayMs * 8);
    expect(backoffDelayMs(30, DEFAULT_RETRY, () => 0.999)).toBeLessThan(DEFAULT_RETRY.maxDelayMs);
    expect(backoffDelayMs(5, DEFAULT_RETRY, () => 0)).toBe(0);
  });
  it('reads Retry-After seconds and dates', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
  it('summarises OperationOutcome issues', () => {
    expect(outcomeText(oo('bad thing'))).toBe('bad thing');
    expect(outcomeText({ resourceType: 'Patient' })).toBeUndefined();
  });
});

describe('readTransactionResponse', () => {
  it('reads HAPI-style statuses ("201 Created") and absolute locations with _history', async () => {
    const { readTransactionResponse } = await import('../../src/fhir/write-analysis.js');
    const { buildAnalysisBundle } = await import('../../src/fhir/bundle.js');
    const { lumbarOsteoporosisReport } = await import('./reports.js');
    const req = buildAnalysisBundle(lumbarOsteoporosisReport(), { patient: 'Patient/1' });
    const res = {
      resourceType: 'Bundle' as const,
      type: 'transaction-response' as const,
      entry: [
        { response: { status: '200 OK', location: 'https://ehr.example.org/fhir/Device/d1/_history/3' } },
        { response: { status: '201 Created', location: 'Observation/o1/_history/1' } },
        { response: { status: '201 Created', location: 'Observation/f1/_history/1' } },
        { response: { status: '201', location: 'RiskAssessment/r1' } },
        { response: { status: '201', location: 'DiagnosticReport/dr1' } },
        { response: { status: '201 Created', location: 'Provenance/p1/_history/1' } },
      ],
    };
    // Device, summary Observation, the fracture finding at L3, RiskAssessment, DiagnosticReport, Provenance.
    expect(req.entry?.map((e) => e.resource?.resourceType)).toEqual(['Device', 'Observation', 'Observation', 'RiskAssessment', 'DiagnosticReport', 'Provenance']);
    expect(readTransactionResponse('https://ehr.example.org/fhir', req, res, 'created')).toEqual({
      outcome: 'created',
      device: { resourceType: 'Device', id: 'd1', created: false },
      observation: { resourceType: 'Observation', id: 'o1', created: true },
      fractures: [{ resourceType: 'Observation', id: 'f1', created: true }],
      riskAssessment: { resourceType: 'RiskAssessment', id: 'r1', created: true },
      diagnosticReport: { resourceType: 'DiagnosticReport', id: 'dr1', created: true },
      provenance: { resourceType: 'Provenance', id: 'p1', created: true },
    });
    expect(() => readTransactionResponse('https://ehr.example.org/fhir', req, { ...res, entry: res.entry.slice(1) }, 'created')).toThrow(/5 entries for 6 requests/);
  });
});
