import { afterEach, describe, expect, it } from 'vitest';
import net, { type AddressInfo } from 'node:net';
import { rawGet, type RawResponse } from '../../src/net/raw-http.js';

/**
 * rawGet against a loopback TCP server that writes exactly the bytes given, in the pieces given (so
 * framing split across reads is exercised), then closes or not.
 */
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(pieces: (string | Buffer)[], opts: { close?: boolean; onRequest?: (req: string) => void } = {}): Promise<URL> {
  const server = net.createServer((sock) => {
    let req = '';
    sock.on('data', async (d) => {
      req += d.toString('latin1');
      if (!req.includes('\r\n\r\n')) return;
      opts.onRequest?.(req);
      for (const p of pieces) {
        sock.write(p);
        await new Promise((r) => setTimeout(r, 2));
      }
      if (opts.close !== false) sock.end();
    });
    sock.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web/x?a=1`);
}

const opts = { headers: { accept: 'multipart/related' }, timeoutMs: 2000, idleTimeoutMs: 2000 };

/** Collects the body as the multipart consumer does (copies inside the listener), with pauses. */
function collect(res: RawResponse, pauseEvery = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let n = 0;
    res.body.on('data', (c: Buffer) => {
      got.push(Buffer.from(c));
      if (pauseEvery && ++n % pauseEvery === 0) {
        res.body.pause();
        setTimeout(() => res.body.resume(), 3);
      }
    });
    res.body.on('end', () => resolve(Buffer.concat(got)));
    res.body.on('error', reject);
  });
}

describe('rawGet (plain-http GET with a reused read buffer)', () => {
  it('sends one GET with Host, the headers and Connection: close; reads a close-delimited body', async () => {
    let request = '';
    const url = await serve(['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n', 'X-A: 1\r\nX-A: 2\r\nX-F: a\r\n  b\r\n\r\nhel', 'lo wor', 'ld'], { onRequest: (r) => (request = r) });
    const res = await rawGet(url, opts);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain');
    expect(res.headers['x-a']).toBe('1, 2');
    expect(res.headers['x-f']).toBe('a b');
    expect((await collect(res)).toString()).toBe('hello world');
    expect(request).toMatch(/^GET \/dicom-web\/x\?a=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\naccept: multipart\/related\r\nConnection: close\r\n\r\n$/);
  });

  it('decodes chunked transfer coding split anywhere, with extensions and trailers', async () => {
    const url = await serve(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r', '\nhello\r\n6;ext=1\r\n wor', 'ld\r\n0\r\nX-T: 1\r\n', '\r\n'], { close: false });
    const res = await rawGet(url, opts);
    expect((await collect(res)).toString()).toBe('hello world');
  });

  it('stops at Content-Length even if the server keeps the connection open, and honours pause/resume', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const url = await serve([`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`, big.subarray(0, 100), big.subarray(100)], { close: false });
    const res = await rawGet(url, { ...opts, readBufferBytes: 64 * 1024 });
    expect((await collect(res, 7)).equals(big)).toBe(true);
  });

  it('reads an error status and its body with for await (as the retry loop does)', async () => {
    const url = await serve(['HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy']);
    const res = await rawGet(url, opts);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('busy');
  });

  it('skips an interim 100 Continue and reads an empty 204', async () => {
    const url = await serve(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n']);
    const res = await rawGet(url, opts);
    expect(res.status).toBe(204);
    expect((await collect(res)).length).toBe(0);
  });

  it('a body cut short of its Content-Length or chunk is ECONNRESET (retriable), not a short body', async () => {
    for (const head of ['Content-Length: 100', 'Transfer-Encoding: chunked']) {
      const url = await serve([`HTTP/1.1 200 OK\r\n${head}\r\n\r\n`, head.startsWith('Content') ? 'only this' : 'a\r\nabc']);
      const res = await rawGet(url, opts);
      await expect(collect(res)).rejects.toMatchObject({ code: 'ECONNRESET' });
    }
  });

  it('fails with node:http-like codes: refused, hang-up before headers, bad status line, header timeout', async () => {
    const dead = await serve([]);
    await new Promise((r) => servers.pop()!.close(r));
    await expect(rawGet(dead, opts)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(rawGet(await serve(['HTTP/1.1 200 O']), opts)).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(rawGet(await serve(['SPDY/9 what\r\n\r\n']), opts)).rejects.toThrow(/malformed HTTP status line/);
    await expect(rawGet(await serve([], { close: false }), { ...opts, timeoutMs: 50 })).rejects.toMatchObject({ code: 'VBMD_TIMEOUT' });
  });

  it('refuses header values that would inject lines, and https URLs', async () => {
    const url = await serve(['HTTP/1.1 200 OK\r\n\r\n']);
    await expect(rawGet(url, { ...opts, headers: { authorization: 'Bearer x\r\nEvil: 1' } })).rejects.toMatchObject({ code: 'ERR_INVALID_CHAR' });
    await expect(rawGet(new URL('https://127.0.0.1/'), opts)).rejects.toThrow(/http: only/);
  });

  it('an abort during the body errors it with ABORT_ERR', async () => {
    const url = await serve(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'], { close: false });
    const ac = new AbortController();
    const res = await rawGet(url, { ...opts, signal: ac.signal });
    const p = collect(res);
    setTimeout(() => ac.abort(), 10);
    await expect(p).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });
});
