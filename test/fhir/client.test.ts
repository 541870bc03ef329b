import { describe, expect, it } from 'vitest';
import { FhirClient } from '../../src/fhir/client.js';
import { FhirError, outcomeText } from '../../src/fhir/fhir-error.js';
import { DEFAULT_RETRY, retryAfterMs } from '../../src/net/retry.js';
import { backoffDelayMs } from '../../src/util/retry-policy.js';
import { VbmdError } from '../../src/util/errors.js';
import { scriptedServer } from '../support/scripted-server.js';
import type { Step } from '../support/scripted-server.js';

/** Unit tests of the client's retry policy and error shaping against a scripted loopback server: each
 * request gets the next step (an answer, a cut connection or silence). The HTTP behaviour against a real
 * FHIR server is tested in roundtrip.test.ts. */

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Step => (_req, res) =>
  void res.writeHead(status, { 'content-type': 'application/fhir+json', ...headers }).end(JSON.stringify(body));
const cut: Step = (req) => req.socket.destroy();
const silent: Step = () => undefined;
const oo = (diag: string) => ({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing', diagnostics: diag }] });
const fast = { baseDelayMs: 1, maxDelayMs: 2 };

describe('FhirClient retries', () => {
  it('retries 503, 429 and network errors for a GET, then succeeds', async () => {
    const s = await scriptedServer([json(503, oo('down')), json(429, {}), cut, json(200, { resourceType: 'Patient', id: 'a' })], '/r4');
    const c = new FhirClient({ baseUrl: s.base, retry: fast });
    expect(await c.read('Patient', 'a')).toEqual({ resourceType: 'Patient', id: 'a' });
    expect(s.calls).toHaveLength(4);
  });

  it('retries a 409 from a lost conditional-create race (idempotent transaction)', async () => {
    const s = await scriptedServer([json(409, oo('HAPI-0550: version conflict')), json(200, { resourceType: 'Bundle', type: 'transaction-response', entry: [] })]);
    const c = new FhirClient({ baseUrl: s.base, retry: fast });
    await c.transaction({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Device', ifNoneExist: 'identifier=a|b' }, resource: { resourceType: 'Device' } }] });
    expect(s.calls).toHaveLength(2);
  });

  it('never retries a plain (non-conditional) POST create', async () => {
    const s = await scriptedServer([json(503, oo('down'))], '/r4');
    const c = new FhirClient({ baseUrl: s.base, retry: fast });
    await expect(c.create({ resourceType: 'Patient' })).rejects.toBeInstanceOf(FhirError);
    expect(s.calls).toHaveLength(1);
  });

  it('retries a conditional create and sends If-None-Exist', async () => {
    const s = await scriptedServer([json(502, {}), json(201, { resourceType: 'Patient', id: 'n' })], '/r4');
    const c = new FhirClient({ baseUrl: s.base, retry: fast });
    await c.create({ resourceType: 'Patient' }, { ifNoneExist: 'identifier=s|v' });
    expect(s.calls).toHaveLength(2);
    expect(s.calls[1]!.headers['if-none-exist']).toBe('identifier=s|v');
  });

  it('does not retry 4xx, and the error names server, request, status and OperationOutcome diagnostics', async () => {
    const s = await scriptedServer([json(422, oo('Observation.code: missing'))], '/fhir/R4');
    const c = new FhirClient({ baseUrl: s.base, retry: fast });
    const err = (await c.request('POST', 'Observation', { body: {}, idempotent: true }).catch((e: unknown) => e)) as FhirError;
    expect(err).toBeInstanceOf(FhirError);
    expect(err).toBeInstanceOf(VbmdError);
    expect(err.code).toBe('remote');
    expect(err.status).toBe(422);
    expect(err.message).toBe(
      `The FHIR server ${new URL(s.base).origin} answered 422 to POST Observation: Observation.code: missing; the server rejected the content; see its message.`,
    );
    expect(s.calls).toHaveLength(1);
  });

  it('a Retry-After longer than the cap ends the retries (the job queue retries later)', async () => {
    const s = await scriptedServer([json(503, oo('maintenance'), { 'retry-after': '3600' })]);
    const c = new FhirClient({ baseUrl: s.base, retry: fast });
    const err = (await c.read('Patient', 'a').catch((e: unknown) => e)) as FhirError;
    expect(err.status).toBe(503);
    expect(s.calls).toHaveLength(1);
  });

  it('stops when the caller aborts, with a cancelled VbmdError', async () => {
    const ctrl = new AbortController();
    const s = await scriptedServer([json(503, {}), json(503, {}), json(503, {})]);
    const c = new FhirClient({ baseUrl: s.base, retry: { baseDelayMs: 1000, maxDelayMs: 1000 } });
    const p = c.read('Patient', 'a', ctrl.signal);
    setTimeout(() => ctrl.abort(), 50);
    const err = (await p.catch((e: unknown) => e)) as VbmdError;
    expect(err).toBeInstanceOf(VbmdError);
    expect(err.code).toBe('cancelled');
    expect(s.calls.length).toBeLessThanOrEqual(2);
  });

  it('times out a hanging request and says so', async () => {
    const s = await scriptedServer([silent, silent]);
    const c = new FhirClient({ baseUrl: s.base, timeoutMs: 50, retry: { retries: 1, ...fast } });
    const err = (await c.read('Patient', 'a').catch((e: unknown) => e)) as FhirError;
    expect(err).toBeInstanceOf(FhirError);
    expect(err.status).toBeUndefined();
    expect(err.message).toContain(`No answer from the FHIR server ${new URL(s.base).origin} to GET Patient/a (timed out)`);
    expect(s.calls).toHaveLength(2);
  });

  it('refuses plain http to a non-loopback server unless allowed, before any connection', async () => {
    const c = new FhirClient({ baseUrl: 'http://fhir.example.org/r4', retry: fast });
    const err = (await c.read('Patient', 'a').catch((e: unknown) => e)) as VbmdError;
    expect(err).toBeInstanceOf(VbmdError);
    expect(err.message).toMatch(/Refusing plain http to http:\/\/fhir\.example\.org/);
  });

  it('follows next links on the same server only', async () => {
    const page1 = { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Observation', id: '1' } }], link: [{ relation: 'next', url: '' }] };
    const page2 = { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Observation', id: '2' } }, { resource: { resourceType: 'Patient', id: 'p' }, search: { mode: 'include' } }], link: [{ relation: 'next', url: 'http://evil.test/steal' }] };
    const s = await scriptedServer([json(200, page1), json(200, page2)], '/r4');
    page1.link[0]!.url = `${s.base}/Observation?_offset=1`;
    const c = new FhirClient({ baseUrl: s.base, retry: fast });
    const err = await c.search('Observation', { patient: 'Patient/1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as Error).message).toContain('another server (http://evil.test)');
    expect(s.calls.map((x) => x.url)).toEqual(['/r4/Observation?patient=Patient%2F1', '/r4/Observation?_offset=1']);
  });
});

describe('retry policy', () => {
  it('the jitter stays within 20% of the exponential wait, under the cap', () => {
    expect(backoffDelayMs(0, DEFAULT_RETRY, () => 0.999)).toBeLessThanOrEqual(DEFAULT_RETRY.baseDelayMs * 1.2);
    expect(backoffDelayMs(3, DEFAULT_RETRY, () => 0.999)).toBeLessThanOrEqual(DEFAULT_RETRY.baseDelayMs * 8 * 1.2);
    expect(backoffDelayMs(3, DEFAULT_RETRY, () => 0)).toBe(DEFAULT_RETRY.baseDelayMs * 8 * 0.8);
    expect(backoffDelayMs(30, DEFAULT_RETRY, () => 0.999)).toBeLessThanOrEqual(DEFAULT_RETRY.maxDelayMs);
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
