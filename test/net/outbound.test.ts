import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboundClient, OutboundError } from '../../src/net/outbound.js';
import type { OutboundResponse } from '../../src/net/outbound.js';
import { DEFAULT_RETRY, retryAfterMs, retryPolicy } from '../../src/net/retry.js';
import { backoffDelayMs } from '../../src/util/retry-policy.js';
import type { TokenProvider } from '../../src/net/token-provider.js';
import { selfSignedCert, startTlsProxy } from '../support/tls.js';
import type { TestCert, TlsProxy } from '../support/tls.js';
import { scriptedServer } from '../support/scripted-server.js';
import type { Step } from '../support/scripted-server.js';

/**
 * The outbound layer against real loopback servers: a scripted plain-http server (each request gets the
 * next step) and, for TLS, the same server behind a TLS proxy with a certificate made by openssl.
 */
const answer = (status: number, body = '', headers: Record<string, string> = {}): Step => (_q, res) => void res.writeHead(status, headers).end(body);
const fast = { baseDelayMs: 1, maxDelayMs: 2 };
const text = (net: OutboundClient) => async (res: OutboundResponse) => ({ status: res.status, body: (await net.readAll(res, 1 << 20)).toString() });

describe('retry policy', () => {
  it('the jitter stays within 20% of the exponential wait and never passes the cap; overrides only what is given', () => {
    expect(backoffDelayMs(0, DEFAULT_RETRY, () => 0.999)).toBeLessThanOrEqual(DEFAULT_RETRY.baseDelayMs * 1.2);
    expect(backoffDelayMs(0, DEFAULT_RETRY, () => 0)).toBe(DEFAULT_RETRY.baseDelayMs * 0.8);
    expect(backoffDelayMs(30, DEFAULT_RETRY, () => 0.999)).toBe(DEFAULT_RETRY.maxDelayMs);
    expect(retryPolicy({ retries: 0, baseDelayMs: undefined })).toEqual({ ...DEFAULT_RETRY, retries: 0 });
  });
  it('reads Retry-After seconds and dates, first of several', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs(['2', '9'])).toBe(2000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});

describe('OutboundClient', () => {
  it('retries a retryable status honouring Retry-After, then hands the final answer to the caller', async () => {
    const s = await scriptedServer([answer(503, 'busy', { 'retry-after': '0' }), answer(502), answer(200, 'ok')]);
    const net = new OutboundClient({ retry: fast });
    expect(await net.exchange({ url: `${s.base}/x` }, text(net))).toEqual({ status: 200, body: 'ok' });
    expect(s.calls).toHaveLength(3);
  });

  it('a Retry-After beyond the cap stops at once and says how long the server asked for', async () => {
    const s = await scriptedServer([answer(429, '', { 'retry-after': '3600' })]);
    const net = new OutboundClient({ retry: fast });
    const res = await net.exchange({ url: s.base }, async (r) => ({ status: r.status, wait: r.retryAfterMs }));
    expect(res).toEqual({ status: 429, wait: 3_600_000 });
    expect(s.calls).toHaveLength(1);
  });

  it('never repeats a POST unless the caller says it is safe', async () => {
    const s = await scriptedServer([answer(503), answer(503), answer(201)]);
    const net = new OutboundClient({ retry: fast });
    expect((await net.exchange({ method: 'POST', url: s.base, body: 'x' }, text(net))).status).toBe(503);
    expect((await net.exchange({ method: 'POST', url: s.base, body: 'x', retryable: true }, text(net))).status).toBe(201);
    expect(s.calls).toHaveLength(3);
  });

  it('a 401 gets one fresh token, sent as a bearer', async () => {
    let n = 0;
    let invalidated = 0;
    const tokens: TokenProvider = { token: async () => `t${++n}`, invalidate: () => void invalidated++ };
    const s = await scriptedServer([answer(401), answer(200, 'ok'), answer(401), answer(401)]);
    const net = new OutboundClient({ auth: tokens, retry: fast });
    expect((await net.exchange({ url: s.base }, text(net))).status).toBe(200);
    expect(s.calls.map((c) => c.headers.authorization)).toEqual(['Bearer t1', 'Bearer t2']);
    expect(invalidated).toBe(1);
    // Twice refused: the 401 is the caller's to report.
    expect((await net.exchange({ url: s.base }, text(net))).status).toBe(401);
  });

  it('times out a silent server per attempt, retries, then fails with reason timeout', async () => {
    const s = await scriptedServer([() => undefined, () => undefined]);
    const net = new OutboundClient({ retry: { retries: 1, ...fast }, timeoutMs: 60 });
    const e = await net.exchange({ url: s.base }, text(net)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OutboundError);
    expect(e).toMatchObject({ reason: 'timeout', attempts: 2 });
    expect(s.calls).toHaveLength(2);
  });

  it('a cut connection is retried; a refused one ends with the system error code', async () => {
    const s = await scriptedServer([(q) => q.socket.destroy(), answer(200, 'ok')]);
    const net = new OutboundClient({ retry: fast });
    expect((await net.exchange({ url: s.base }, text(net))).body).toBe('ok');
    const e = await new OutboundClient({ retry: { retries: 1, ...fast } }).exchange({ url: 'http://127.0.0.1:9/' }, text(net)).catch((x: unknown) => x);
    expect(e).toMatchObject({ reason: 'network', errno: 'ECONNREFUSED', attempts: 2 });
  });

  it('repeats the whole exchange when the caller marks a body error retriable', async () => {
    const s = await scriptedServer([answer(200, 'half'), answer(200, 'whole')]);
    const net = new OutboundClient({ retry: fast });
    let tries = 0;
    const got = await net.exchange({ url: s.base, retryBody: (e) => (e as Error).message === 'truncated' }, async (res) => {
      const body = (await net.readAll(res, 100)).toString();
      tries++;
      if (body === 'half') throw new Error('truncated');
      return body;
    });
    expect([got, tries]).toEqual(['whole', 2]);
  });

  it('stops when the caller aborts during a backoff, as cancelled', async () => {
    const s = await scriptedServer([answer(503), answer(503)]);
    const ctl = new AbortController();
    const net = new OutboundClient({ retry: { baseDelayMs: 5000, maxDelayMs: 5000 } });
    setTimeout(() => ctl.abort(), 50);
    const e = await net.exchange({ url: s.base, signal: ctl.signal }, text(net)).catch((x: unknown) => x);
    expect(e).toMatchObject({ reason: 'cancelled', code: 'cancelled' });
  });

  it('does not follow redirects by default; when allowed, credentials stay with the first origin', async () => {
    const other = await scriptedServer([answer(200, 'moved here')]);
    const s = await scriptedServer([answer(302, '', { location: `${other.base}/new` }), answer(302, '', { location: `${other.base}/new` })]);
    const tokens: TokenProvider = { token: async () => 'secret', invalidate: () => undefined };
    const plain = new OutboundClient({ auth: tokens, headers: { 'x-api-key': 'k' } });
    expect((await plain.exchange({ url: s.base }, text(plain))).status).toBe(302);
    const following = new OutboundClient({ auth: tokens, headers: { 'x-api-key': 'k' }, maxRedirects: 2 });
    expect(await following.exchange({ url: s.base, headers: { accept: 'text/plain' } }, text(following))).toEqual({ status: 200, body: 'moved here' });
    expect(s.calls[1]!.headers).toMatchObject({ authorization: 'Bearer secret', 'x-api-key': 'k' });
    // 127.0.0.1 on another port is another origin: no token, no custom header, the accept header kept.
    expect(other.calls[0]!.headers.authorization).toBeUndefined();
    expect(other.calls[0]!.headers['x-api-key']).toBeUndefined();
    expect(other.calls[0]!.headers.accept).toBe('text/plain');
  });

  it('stops reading past the byte cap, declared or streamed', async () => {
    const s = await scriptedServer([answer(200, 'x'.repeat(5000)), (_q, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.write('y'.repeat(3000));
      res.end('y'.repeat(3000));
    }]);
    const net = new OutboundClient();
    await expect(net.fetch({ url: s.base }, 1000)).rejects.toMatchObject({ reason: 'too-large' });
    await expect(net.fetch({ url: s.base }, 4000)).rejects.toMatchObject({ reason: 'too-large' });
  });

  it('refuses plain http off loopback and non-public literals when told to, before connecting', async () => {
    const net = new OutboundClient();
    await expect(net.exchange({ url: 'http://pacs.example.org/dicom-web' }, text(net))).rejects.toMatchObject({ reason: 'insecure-http' });
    const publicOnly = new OutboundClient({ allowNonPublic: false });
    await expect(publicOnly.exchange({ url: 'https://10.1.2.3/fhir' }, text(publicOnly))).rejects.toMatchObject({ reason: 'refused-address' });
    await expect(publicOnly.exchange({ url: 'https://localhost:1/fhir' }, text(publicOnly))).rejects.toMatchObject({ reason: 'refused-address' });
  });
});

describe('OutboundClient over TLS', () => {
  let cert: TestCert;
  let proxy: TlsProxy | undefined;
  beforeAll(() => {
    cert = selfSignedCert();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('trusts a private CA when given one, and refuses the certificate otherwise (not retried)', async () => {
    const s = await scriptedServer([answer(200, 'over tls'), answer(200, 'never')]);
    proxy = await startTlsProxy({ port: s.port, ...cert });
    const trusting = new OutboundClient({ caPem: cert.certPem, retry: fast });
    expect(await trusting.exchange({ url: `${proxy.url}/x` }, text(trusting))).toEqual({ status: 200, body: 'over tls' });
    await trusting.close();
    const strict = new OutboundClient({ retry: fast });
    const e = (await strict.exchange({ url: `${proxy.url}/x` }, text(strict)).catch((x: unknown) => x)) as OutboundError;
    expect(e).toMatchObject({ reason: 'network', attempts: 1 });
    expect(e.errno).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    expect(s.calls).toHaveLength(1);
  });
});
