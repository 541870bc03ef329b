import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startOrthanc, freeLoopbackPort, type OrthancHandle } from '../support/orthanc.js';
import { DicomWebSource, type DicomWebSourceOptions } from '../../src/dicom/dicomweb/source.js';
import { DicomWebError } from '../../src/dicom/dicomweb/errors.js';
import { newDicomUid } from '../../src/dicom/write-series.js';
import type { SeriesCandidate } from '../../src/dicom/source.js';
import { patternVolume, readAll, scratchDir, writeSeries, type WrittenSeries } from './fixtures.js';
import { startProxy, type ProxyHandler, type TestProxy } from './proxy.js';

/**
 * Failure handling of the DICOMweb source against a real Orthanc, with a loopback proxy in between that
 * misbehaves on purpose. Every failure must reject with a DicomWebError a person can act on, and never
 * resolve with a partial series.
 */
let pacs: OrthancHandle;
let work: string;
let series: WrittenSeries;
let cand: SeriesCandidate;
let files: Buffer[];
const proxies: TestProxy[] = [];
const fast: Partial<DicomWebSourceOptions> = { retry: { retries: 1, baseDelayMs: 10, maxDelayMs: 20 } };

const isWado = (req: IncomingMessage): boolean => /\/series\/[0-9.]+$/.test(req.url ?? '');

async function viaProxy(handler: ProxyHandler, opts: Partial<DicomWebSourceOptions> = {}): Promise<{ proxy: TestProxy; src: DicomWebSource }> {
  const proxy = await startProxy(pacs.baseUrl, handler);
  proxies.push(proxy);
  return { proxy, src: new DicomWebSource({ baseUrl: `${proxy.url}/dicom-web`, ...fast, ...opts }) };
}

/** A multipart/related body with the given parts (content type, bytes). */
function multipart(parts: { type: string; body: Buffer }[], boundary = 'b0undary-x'): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type}\r\n\r\n`), p.body, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

function answer(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string): void {
  res.writeHead(status, headers);
  res.end(body);
}

beforeAll(async () => {
  work = scratchDir('dicomweb-fail');
  pacs = await startOrthanc();
  series = await writeSeries(work, 's', patternVolume([64, 64, 20], 1, 9), {
    patientId: 'P-9', studyInstanceUid: newDicomUid(), accessionNumber: 'ACC-9', seriesDescription: 'thin', sliceThicknessMm: 1,
  });
  files = await readAll(series.files);
  await pacs.upload(files);
  const direct = new DicomWebSource({ baseUrl: pacs.dicomWebUrl });
  [cand] = await direct.findSeries({ accessionNumber: 'ACC-9' });
  direct.close();
  expect(cand.instanceCount).toBe(20);
});

afterAll(async () => {
  for (const p of proxies) await p.close();
  await pacs?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<DicomWebError> {
  const r = await p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  if (r.ok) throw new Error(`expected a rejection, got a result (${Array.isArray(r.v) ? `${r.v.length} items` : typeof r.v})`);
  expect(r.e).toBeInstanceOf(DicomWebError);
  return r.e as DicomWebError;
}

describe('DICOMweb failures', () => {
  it('server down: says the server cannot be reached, after retrying', async () => {
    const port = await freeLoopbackPort();
    const src = new DicomWebSource({ baseUrl: `http://127.0.0.1:${port}/dicom-web`, ...fast });
    const err = await failure(src.findSeries({ accessionNumber: 'ACC-9' }));
    expect(err.code).toBe('remote');
    expect(err.server).toBe(`http://127.0.0.1:${port}/dicom-web`);
    expect(err.message).toBe(
      `Cannot reach DICOMweb server http://127.0.0.1:${port}/dicom-web for the QIDO-RS series search (after 2 attempts): the connection was refused; check the URL and that the server is running.`,
    );
  });

  it('ping: resolves against a live server, fails fast without retries against a dead one', async () => {
    const live = new DicomWebSource({ baseUrl: pacs.dicomWebUrl });
    await expect(live.ping()).resolves.toBeUndefined();
    live.close();
    const { src, proxy } = await viaProxy((req, res) => answer(res, 503, {}, ''), { retry: { retries: 5 } });
    const err = await failure(src.ping());
    expect(err.status).toBe(503);
    expect(err.message).toMatch(/answered HTTP 503 to the QIDO-RS readiness check;/);
    expect(proxy.requests).toHaveLength(1);
  });

  it('no answer in time: a timeout error, not a hang', async () => {
    const { src } = await viaProxy(() => {
      /* never answers */
    }, { timeoutMs: 300, retry: { retries: 0 } });
    const err = await failure(src.findStudies({ accessionNumber: 'ACC-9' }));
    expect(err.message).toMatch(/did not answer in time \(no response within 300 ms\)/);
  });

  it('401 without credentials; basic auth works; bearer token and custom headers are sent', async () => {
    const secured = await startOrthanc({ users: { reader: 's3cret' } });
    try {
      await secured.upload(files.slice(0, 2));
      const anon = new DicomWebSource({ baseUrl: secured.dicomWebUrl, ...fast });
      const err = await failure(anon.findSeries({ accessionNumber: 'ACC-9' }));
      expect(err.code).toBe('unauthorized');
      expect(err.status).toBe(401);
      expect(err.message).toBe(
        `DICOMweb server ${secured.dicomWebUrl} answered HTTP 401 to the QIDO-RS series search; check the DICOMweb credentials (token or user/password) in the configuration.`,
      );
      const basic = new DicomWebSource({ baseUrl: secured.dicomWebUrl, auth: { type: 'basic', username: 'reader', password: 's3cret' } });
      const found = await basic.findSeries({ accessionNumber: 'ACC-9' });
      expect(found[0].instanceCount).toBe(2);
      expect((await basic.loadSlices(found[0])).length).toBe(2);
      basic.close();
    } finally {
      await secured.stop();
    }
    const { src, proxy } = await viaProxy((req, res, forward) => {
      if (req.headers.authorization !== 'Bearer tok-123' || req.headers['x-tenant'] !== 'radiology') return answer(res, 401, {}, '');
      delete req.headers.authorization;
      forward();
    }, { auth: { type: 'bearer', tokens: { token: async () => 'tok-123', invalidate: () => undefined } }, headers: { 'X-Tenant': 'radiology' } });
    expect((await src.loadSlices(cand)).length).toBe(20);
    expect(proxy.requests.every((r) => r.headers.authorization === 'Bearer tok-123')).toBe(true);
  });

  it('503 then success: waits for Retry-After and returns the whole series once', async () => {
    let wadoCalls = 0;
    const { src } = await viaProxy((req, res, forward) => {
      if (isWado(req) && wadoCalls++ === 0) return answer(res, 503, { 'retry-after': '1' }, 'busy');
      forward();
    });
    const t0 = Date.now();
    const slices = await src.loadSlices(cand);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(wadoCalls).toBe(2);
    expect(slices).toHaveLength(20);
    expect(new Set(slices.map((s) => s.sopInstanceUid)).size).toBe(20);
  });

  it('a Retry-After longer than the service waits fails at once with a clear message', async () => {
    const { src } = await viaProxy((req, res) => answer(res, 429, { 'retry-after': '3600' }, ''));
    const err = await failure(src.findStudies({ accessionNumber: 'ACC-9' }));
    expect(err.status).toBe(429);
    expect(err.message).toMatch(/answered HTTP 429 to the QIDO-RS study search and asks to retry after 3600 s, longer than this service waits; try again later\.$/);
  });

  it('5xx on every attempt gives up with the status and attempt count', async () => {
    const { src } = await viaProxy((req, res, forward) => (isWado(req) ? answer(res, 502, {}, 'bad gateway') : forward()));
    const err = await failure(src.loadSlices(cand));
    expect(err.status).toBe(502);
    expect(err.seriesInstanceUid).toBe(cand.seriesInstanceUid);
    expect(err.message).toBe(
      `DICOMweb server ${src.client.server} answered HTTP 502 to the WADO-RS series retrieve for series ${cand.seriesInstanceUid} (after 2 attempts); the server failed; try again later or ask the PACS administrator.`,
    );
  });

  it('a truncated multipart body (cleanly ended) is an error, never a short series', async () => {
    const { src } = await viaProxy((req, res, forward) => {
      if (!isWado(req)) return forward();
      forward({
        onResponse: (up, r) => {
          const h = { ...up.headers };
          delete h['content-length'];
          r.writeHead(up.statusCode ?? 200, h);
          let sent = 0;
          up.on('data', (c: Buffer) => {
            if (sent < 100_000) r.write(c.subarray(0, Math.min(c.length, 100_000 - sent)));
            sent += c.length;
          });
          up.on('end', () => r.end());
        },
      });
    });
    const err = await failure(src.loadSlices(cand));
    expect(err.code).toBe('remote');
    expect(err.message).toMatch(new RegExp(`^The response of DICOMweb server ${src.client.server} to the WADO-RS series retrieve for series ${cand.seriesInstanceUid.replace(/\./g, '\\.')} was broken \\(after 2 attempts\\): The multipart response ended early, after \\d+ complete part\\(s\\)\\.$`));
  });

  it('a connection cut mid-stream is retried from scratch: the second attempt gives exactly the series', async () => {
    let wadoCalls = 0;
    const { src } = await viaProxy((req, res, forward) => {
      if (!isWado(req) || wadoCalls++ > 0) return forward();
      forward({
        onResponse: (up, r) => {
          r.writeHead(up.statusCode ?? 200, up.headers);
          let sent = 0;
          up.on('data', (c: Buffer) => {
            if (sent > 60_000) return;
            sent += c.length;
            r.write(c);
            if (sent > 60_000) {
              up.destroy();
              setTimeout(() => r.socket?.destroy(), 50); // let the bytes reach the client first
            }
          });
        },
      });
    });
    const slices = await src.loadSlices(cand);
    expect(wadoCalls).toBe(2);
    expect(slices).toHaveLength(20);
    expect(new Set(slices.map((s) => s.sopInstanceUid)).size).toBe(20);
  });

  it('a connection cut on every attempt says the response was incomplete', async () => {
    const { src } = await viaProxy((req, res, forward) => {
      if (!isWado(req)) return forward();
      forward({
        onResponse: (up, r) => {
          r.writeHead(up.statusCode ?? 200, up.headers);
          up.once('data', (c: Buffer) => {
            r.write(c);
            up.destroy();
            setTimeout(() => r.socket?.destroy(), 50);
          });
        },
      });
    });
    const err = await failure(src.loadSlices(cand));
    expect(err.message).toMatch(/was broken \(after 2 attempts\): the connection closed before the whole response arrived\.$/);
  });

  it('a part that is not DICOM (wrong type, or garbage declared as DICOM) is a clear error', async () => {
    for (const bad of [
      { type: 'text/html', body: Buffer.from('<html>login</html>'), expect: /instance 2 of series .* is "text\/html", not a DICOM instance/ },
      { type: 'application/dicom', body: Buffer.alloc(400, 7), expect: /instance 2 of series .* from DICOMweb server .* is not a DICOM file/ },
    ]) {
      const { src } = await viaProxy((req, res, forward) => {
        if (!isWado(req)) return forward();
        const mp = multipart([{ type: 'application/dicom', body: files[0] }, { type: bad.type, body: bad.body }]);
        answer(res, 200, { 'content-type': mp.contentType }, mp.body);
      });
      const err = await failure(src.loadSlices(cand));
      expect(err.code).toBe('bad-input');
      expect(err.seriesInstanceUid).toBe(cand.seriesInstanceUid);
      expect(err.message).toMatch(bad.expect);
    }
  });

  it('fewer instances than QIDO announced is an error, not a short volume', async () => {
    const { src } = await viaProxy((req, res, forward) => {
      if (!isWado(req)) return forward();
      const mp = multipart(files.slice(0, 19).map((body) => ({ type: 'application/dicom', body })));
      answer(res, 200, { 'content-type': mp.contentType }, mp.body);
    });
    const err = await failure(src.loadSlices(cand));
    expect(err.message).toBe(
      `DICOMweb server ${src.client.server} returned 19 of the 20 instances of series ${cand.seriesInstanceUid}; the series may still be arriving: try again later.`,
    );
  });

  it('an instance from another series is rejected', async () => {
    const other = await writeSeries(work, 'other', patternVolume([64, 64, 1], 1, 1), { patientId: 'P-9', studyInstanceUid: newDicomUid() });
    const [otherBytes] = await readAll(other.files);
    const { src } = await viaProxy((req, res, forward) => {
      if (!isWado(req)) return forward();
      const mp = multipart([{ type: 'application/dicom', body: otherBytes }]);
      answer(res, 200, { 'content-type': mp.contentType }, mp.body);
    });
    const err = await failure(src.loadSlices(cand));
    expect(err.message).toMatch(/belongs to series .*; the server mixed up series\.$/);
  });

  it('a non-multipart answer (an HTML login page) is named as such', async () => {
    const { src } = await viaProxy((req, res, forward) => (isWado(req) ? answer(res, 200, { 'content-type': 'text/html' }, '<html/>') : forward()));
    const err = await failure(src.loadSlices(cand));
    expect(err.code).toBe('unsupported');
    expect(err.message).toMatch(/answered the WADO-RS series retrieve with "text\/html" instead of multipart\/related DICOM/);
  });

  it('series search without ImageType/SliceThickness: filled from one instance (QIDO, then WADO-RS metadata)', async () => {
    // A PACS that ignores includefield for instance-level attributes (the proxy strips them from QIDO answers).
    const { src, proxy } = await viaProxy((req, res, forward) => {
      const isQido = /\/(series|instances)(\?|$)/.test(req.url ?? '');
      if (!isQido) return forward();
      forward({
        onResponse: (up, r) => {
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('end', () => {
            const rows = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>[];
            for (const row of rows) {
              delete row['00080008'];
              delete row['00180050'];
            }
            answer(r, up.statusCode ?? 200, { 'content-type': 'application/dicom+json' }, JSON.stringify(rows));
          });
        },
      });
    });
    const [found] = await src.findSeries({ accessionNumber: 'ACC-9' });
    expect(found.imageType).toEqual(['ORIGINAL', 'PRIMARY', 'AXIAL']);
    expect(found.sliceThicknessMm).toBe(1);
    expect(proxy.requests.some((r) => /\/instances\?.*limit=1/.test(r.url))).toBe(true);
    expect(proxy.requests.some((r) => /\/instances\/[0-9.]+\/metadata$/.test(r.url))).toBe(true);
  });

  it('QIDO answers that are not DICOM JSON are rejected at the edge', async () => {
    const { src } = await viaProxy((req, res) => answer(res, 200, { 'content-type': 'application/dicom+json' }, JSON.stringify([{ foo: 1 }])));
    const err = await failure(src.findStudies({ accessionNumber: 'ACC-9' }));
    expect(err.message).toMatch(/answered the QIDO-RS study search with JSON that is not DICOM JSON \(PS3\.18 Annex F\)/);
  });

  it('cancellation during a slow retrieve rejects promptly with a cancelled error', async () => {
    const { src } = await viaProxy((req, res, forward) => {
      if (!isWado(req)) return forward();
      forward({
        onResponse: (up, r) => {
          r.writeHead(up.statusCode ?? 200, up.headers);
          up.once('data', (c: Buffer) => r.write(c)); // then stall
        },
      });
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const t0 = Date.now();
    const err = await failure(src.loadSlices(cand, { signal: ac.signal }));
    expect(err.code).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('TLS policy and configuration', () => {
  it('refuses plain http to a non-loopback host unless allowed', () => {
    expect(() => new DicomWebSource({ baseUrl: 'http://pacs.example.org/dicom-web' })).toThrow(
      'Refusing plain http to DICOMweb server http://pacs.example.org/dicom-web: images and tokens would cross the network unencrypted; use https:// or allow insecure http explicitly.',
    );
    expect(new DicomWebSource({ baseUrl: 'http://pacs.example.org/dicom-web', allowInsecureHttp: true }).description).toBe('DICOMweb http://pacs.example.org/dicom-web');
    expect(new DicomWebSource({ baseUrl: 'https://pacs.example.org/dicom-web/' }).description).toBe('DICOMweb https://pacs.example.org/dicom-web');
    expect(new DicomWebSource({ baseUrl: 'http://localhost:8042/dicom-web' }).description).toBe('DICOMweb http://localhost:8042/dicom-web');
  });

  it('keeps credentials in a URL out of messages', () => {
    const src = new DicomWebSource({ baseUrl: 'https://user:pw@pacs.example.org/dicom-web?x=1' });
    expect(src.description).toBe('DICOMweb https://pacs.example.org/dicom-web');
  });

  it('rejects a URL that is not http(s)', () => {
    expect(() => new DicomWebSource({ baseUrl: 'ftp://pacs/dicom-web' })).toThrow(/must start with https:\/\//);
    expect(() => new DicomWebSource({ baseUrl: 'not a url' })).toThrow(/is not a valid URL/);
  });
});

describe('HTTPS with a private CA', () => {
  /** A throwaway CA and a server certificate for 127.0.0.1, made with openssl (EC P-256: fast). */
  function makeCerts(): { caPem: string; key: string; cert: string } {
    const d = join(work, 'tls');
    execFileSync('mkdir', ['-p', d]);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', join(d, 'ca.key'), '-out', join(d, 'ca.pem'), '-days', '1', '-subj', '/CN=vbmd test CA'], { stdio: 'ignore' });
    execFileSync('openssl', ['req', ...ec, '-keyout', join(d, 'srv.key'), '-out', join(d, 'srv.csr'), '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    writeFileSync(join(d, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    execFileSync('openssl', ['x509', '-req', '-in', join(d, 'srv.csr'), '-CA', join(d, 'ca.pem'), '-CAkey', join(d, 'ca.key'), '-CAcreateserial', '-out', join(d, 'srv.pem'), '-days', '1', '-extfile', join(d, 'ext.cnf')], { stdio: 'ignore' });
    return { caPem: readFileSync(join(d, 'ca.pem'), 'utf8'), key: readFileSync(join(d, 'srv.key'), 'utf8'), cert: readFileSync(join(d, 'srv.pem'), 'utf8') };
  }

  it('an untrusted certificate is refused with advice (no retries); the PACS CA makes it work', async () => {
    const certs = makeCerts();
    const proxy = await startProxy(pacs.baseUrl, (req, res, forward) => forward(), { key: certs.key, cert: certs.cert });
    proxies.push(proxy);
    const untrusted = new DicomWebSource({ baseUrl: `${proxy.url}/dicom-web`, ...fast });
    const err = await failure(untrusted.findSeries({ accessionNumber: 'ACC-9' }));
    expect(err.message).toMatch(new RegExp(`^Cannot reach DICOMweb server ${proxy.url}/dicom-web for the QIDO-RS series search: its TLS certificate was not accepted \\([A-Z_]+\\); install the PACS CA certificate or fix the server certificate\\.$`));
    expect(proxy.requests).toHaveLength(0);
    untrusted.close();
    const trusted = new DicomWebSource({ baseUrl: `${proxy.url}/dicom-web`, caPem: certs.caPem });
    const [found] = await trusted.findSeries({ accessionNumber: 'ACC-9' });
    expect((await trusted.loadSlices(found)).length).toBe(20);
    trusted.close();
  });
});
