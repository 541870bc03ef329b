import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

/**
 * A plain-http (no TLS) GET whose response body is delivered from ONE reused read buffer (net.Socket
 * `onread`), for WADO-RS series retrieves of hundreds of MB. The outbound layer (outbound.ts) uses it for
 * requests marked `streamed` to a plain-http server, under the same policy (address check by `lookup`,
 * timeouts, retries); everything else goes through undici.
 *
 * Why not undici or node:http (test/bench/dicomweb.bench.ts, 150 MiB WADO-RS series from a loopback
 * Orthanc, fresh process each, 2026-12-06, load 8 on 2 cores): draining it took 57 ms of CPU here, 286 ms
 * with undici, 264 ms with node:http (in one warm process: 60-85 ms against 175-210 ms for undici's
 * request and dispatch APIs alike, so the cost is in the HTTP parser and per-read buffers, not the stream).
 * Over TLS this reader does not apply: undici serves https (342 ms against node:https's 250 ms there).
 *
 * node:http allocates a fresh 64 KiB Buffer for every socket read and runs each through llhttp and the
 * stream machinery; on a shared 2-core host that CPU is most of the difference between the client and
 * `curl`. The HTTP/1.1 subset needed here is small: one GET with `Connection: close`, a status line and
 * headers, then a body framed by Content-Length, chunked transfer coding (RFC 9112 §7.1) or the
 * connection close (RFC 9112 §6.3).
 *
 * Contract: 'data' chunks are views of the shared read buffer, valid only during the listener call (the
 * multipart parser copies what it keeps). Errors carry the same `code`s as node:http (ECONNREFUSED,
 * ECONNRESET for a body cut short, ...), so retry and wording stay the same.
 */
export interface RawGetOptions {
  /** Extra request headers (auth, accept, custom); names and values must not contain CR/LF. */
  headers: Record<string, string>;
  /** Time to the end of the response headers. */
  timeoutMs: number;
  /** Longest silence on the socket, headers or body. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** Read buffer size (default 1 MiB). */
  readBufferBytes?: number;
  /** Name resolution that refuses addresses the policy forbids (address-policy.ts checkedLookup). */
  lookup?: net.LookupFunction;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: RawBody;
}

const MAX_HEAD_BYTES = 64 * 1024;

type Framing = { kind: 'length'; left: number } | { kind: 'close' } | { kind: 'chunked' } | { kind: 'none' };
type ChunkState = 'size' | 'data' | 'data-crlf' | 'trailer';

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * The response body: emits 'data' (transient views), then 'end' or 'error', then 'close'. Starts paused
 * until a 'data' listener is attached (like a Readable), so nothing is lost while the caller sets up.
 */
export class RawBody extends EventEmitter {
  private flowing = false;
  private explicitPause = false;
  private destroyed = false;
  private ended = false;
  /** Body bytes received before anyone listened (copied: the read buffer is reused). */
  private pending: Buffer[] = [];
  private endPending = false;

  constructor(private readonly socket: net.Socket) {
    super();
    this.on('newListener', (event: string) => {
      if (event === 'data' && !this.explicitPause) process.nextTick(() => this.resume());
    });
  }

  /** Internal: body bytes from the socket. Returns false when reading should pause. */
  deliver(chunk: Buffer): boolean {
    if (this.destroyed) return false;
    if (!this.flowing) {
      this.pending.push(Buffer.from(chunk));
      return false;
    }
    this.emit('data', chunk);
    return this.flowing && !this.destroyed;
  }

  /** Internal: the body is complete. */
  finish(): void {
    if (this.destroyed || this.ended) return;
    if (!this.flowing || this.pending.length > 0) {
      this.endPending = true;
      return;
    }
    this.ended = true;
    this.emit('end');
    this.close();
  }

  /** Internal: the exchange failed. */
  fail(e: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.socket.destroy();
    this.emit('error', e);
    this.emit('close');
  }

  pause(): this {
    this.explicitPause = true;
    this.flowing = false;
    return this;
  }

  resume(): this {
    this.explicitPause = false;
    if (this.destroyed || this.flowing) return this;
    this.flowing = true;
    while (this.pending.length > 0 && this.flowing && !this.destroyed) this.emit('data', this.pending.shift() as Buffer);
    if (!this.flowing || this.destroyed) return this;
    if (this.endPending) {
      this.endPending = false;
      this.finish();
      return this;
    }
    this.socket.resume();
    return this;
  }

  destroy(error?: Error): this {
    if (this.destroyed) return this;
    if (error) {
      this.fail(error);
      return this;
    }
    this.destroyed = true;
    this.socket.destroy();
    this.emit('close');
    return this;
  }

  private close(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.socket.destroy();
    this.emit('close');
  }

  /** Copies of the chunks (for small error bodies read with `for await`). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    const queue: Buffer[] = [];
    let done = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      wake?.();
      wake = undefined;
    };
    this.on('data', (c: Buffer) => {
      queue.push(Buffer.from(c));
      poke();
    });
    this.once('end', () => {
      done = true;
      poke();
    });
    this.once('error', (e) => {
      failure = e;
      done = true;
      poke();
    });
    this.once('close', () => {
      done = true;
      poke();
    });
    for (;;) {
      if (queue.length > 0) {
        yield queue.shift() as Buffer;
        continue;
      }
      if (failure) throw failure;
      if (done) return;
      await new Promise<void>((r) => (wake = r));
    }
  }
}

/** Parses "HTTP/1.1 200 OK" + header lines; names lower-case, repeated headers joined with ", ". */
function parseHead(text: string): { status: number; headers: IncomingHttpHeaders } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]);
  if (!m) throw codedError(`malformed HTTP status line "${lines[0].slice(0, 80)}"`, 'HPE_INVALID_CONSTANT');
  const headers: Record<string, string> = {};
  let last: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      headers[last] += ` ${line.trim()}`; // obsolete line folding (RFC 9112 §5.2): replaced by a space
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw codedError('malformed HTTP header line', 'HPE_INVALID_HEADER_TOKEN');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    last = name;
  }
  return { status: Number(m[1]), headers };
}

function framingOf(status: number, headers: IncomingHttpHeaders): Framing {
  if ((status >= 100 && status < 200) || status === 204 || status === 304) return { kind: 'none' };
  const te = String(headers['transfer-encoding'] ?? '').toLowerCase();
  if (te) {
    // RFC 9112 §6.3: chunked must be the final coding; anything else is read to the close.
    return /(^|,)\s*chunked\s*$/.test(te) ? { kind: 'chunked' } : { kind: 'close' };
  }
  const cl = headers['content-length'];
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw codedError(`invalid Content-Length "${cl}"`, 'HPE_INVALID_CONTENT_LENGTH');
    return { kind: 'length', left: Number(cl) };
  }
  return { kind: 'close' };
}

/** GET `url` (http: only) and resolve at the end of the response headers. */
export function rawGet(url: URL, options: RawGetOptions): Promise<RawResponse> {
  if (url.protocol !== 'http:') return Promise.reject(new TypeError(`rawGet serves http: only, not ${url.protocol}`));
  const request = requestHead(url, options.headers);
  if (request instanceof Error) return Promise.reject(request);
  return new Promise<RawResponse>((resolve, reject) => {
    new RawExchange(url, options, request, resolve, reject);
  });
}

/** GET line, Host, the caller's headers and `Connection: close`; an Error for a header with CR, LF or (in the name) a colon. */
function requestHead(url: URL, headers: Record<string, string>): string | Error {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n:]/.test(k) || /[\r\n]/.test(v)) return codedError(`invalid character in HTTP header "${k.slice(0, 40)}"`, 'ERR_INVALID_CHAR');
    if (k.toLowerCase() === 'connection' || k.toLowerCase() === 'host') continue;
    lines.push(`${k}: ${v}`);
  }
  lines.push('Connection: close', '', '');
  return lines.join('\r\n');
}

/**
 * The response head read so far plus `data`: the parsed status and headers with the bytes after the blank
 * line once it has arrived, else the longer prefix (copied: `data` is a view of the reused read buffer).
 */
function splitHead(head: Buffer, data: Buffer): { pending: Buffer } | { status: number; headers: IncomingHttpHeaders; rest: Buffer } {
  const joined = head.length > 0 ? Buffer.concat([head, data]) : data;
  const end = joined.indexOf('\r\n\r\n');
  if (end < 0) {
    if (joined.length > MAX_HEAD_BYTES) throw codedError('response headers too large', 'HPE_HEADER_OVERFLOW');
    return { pending: Buffer.from(joined) };
  }
  const parsed = parseHead(joined.toString('latin1', 0, end));
  return { status: parsed.status, headers: parsed.headers, rest: joined.subarray(end + 4) };
}

/**
 * One GET on its own connection: sends the request, reads the head from the socket's reused read buffer,
 * resolves with a RawBody and feeds it through a BodyDecoder. Every failure, before or after the head,
 * goes through `fail` (reject before, the body's 'error' after).
 */
class RawExchange {
  private settled = false;
  /** Head bytes so far; undefined once the head is parsed. */
  private head: Buffer | undefined = Buffer.alloc(0);
  private body: RawBody | undefined;
  private framing: Framing = { kind: 'none' };
  private decoder: BodyDecoder | undefined;
  private bodyDone = false;
  private readonly socket: net.Socket;
  private readonly headerTimer: ReturnType<typeof setTimeout>;
  private readonly onAbort = (): void => this.fail(codedError('aborted', 'ABORT_ERR'));

  constructor(
    url: URL,
    private readonly options: RawGetOptions,
    request: string,
    private readonly resolve: (response: RawResponse) => void,
    private readonly reject: (e: Error) => void,
  ) {
    const readBuffer = Buffer.allocUnsafe(options.readBufferBytes ?? 1 << 20);
    const socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      ...(options.lookup ? { lookup: options.lookup } : {}),
      onread: { buffer: readBuffer, callback: (n, buf) => this.onRead(n, buf as Buffer) },
    });
    this.socket = socket;
    this.headerTimer = setTimeout(() => this.fail(codedError(`no response within ${options.timeoutMs} ms`, 'VBMD_TIMEOUT')), options.timeoutMs);
    socket.setTimeout(options.idleTimeoutMs, () => this.fail(codedError(`no data within ${options.idleTimeoutMs} ms`, 'VBMD_TIMEOUT')));
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.onAbort();
    socket.on('connect', () => socket.write(request));
    socket.on('error', (e) => this.fail(e));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => {
      clearTimeout(this.headerTimer);
      if (!this.settled || !this.bodyDone) this.fail(codedError(this.settled ? 'aborted' : 'socket hang up', 'ECONNRESET'));
    });
  }

  private fail(e: Error): void {
    clearTimeout(this.headerTimer);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    if (!this.settled) {
      this.settled = true;
      this.socket.destroy();
      this.reject(e);
    } else this.body?.fail(e);
  }

  private readonly complete = (): void => {
    this.bodyDone = true;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.body?.finish();
  };

  /** The socket's onread callback: `buf` is the reused read buffer. Returns false to pause reading. */
  private onRead(n: number, buf: Buffer): boolean {
    try {
      let data = buf.subarray(0, n);
      if (this.head) {
        const got = splitHead(this.head, data);
        if ('pending' in got) {
          this.head = got.pending;
          return true;
        }
        data = got.rest;
        if (got.status >= 100 && got.status < 200) {
          // Interim response (100 Continue, 103 Early Hints): the real one follows.
          this.head = Buffer.alloc(0);
          return data.length > 0 ? this.onRead(data.length, Buffer.from(data)) : true;
        }
        this.head = undefined;
        clearTimeout(this.headerTimer);
        this.framing = framingOf(got.status, got.headers);
        const body = (this.body = new RawBody(this.socket));
        this.settled = true;
        this.resolve({ status: got.status, headers: got.headers, body });
        if (this.framing.kind === 'length' && this.framing.left === 0) this.framing = { kind: 'none' };
        this.decoder = new BodyDecoder(this.framing, body, this.complete);
        if (this.framing.kind === 'none') {
          this.complete();
          return false;
        }
        if (data.length === 0) return false; // paused until someone listens
      }
      return (this.decoder as BodyDecoder).push(data);
    } catch (e) {
      this.fail(e as Error);
      return false;
    }
  }

  private onEnd(): void {
    if (!this.settled) this.fail(codedError('socket hang up', 'ECONNRESET'));
    else if (this.bodyDone) return;
    else if (this.framing.kind === 'close') this.complete();
    else this.fail(codedError('aborted', 'ECONNRESET')); // Content-Length or chunked body cut short
  }
}

/** Body bytes -> the RawBody, framed by Content-Length, chunked transfer coding or the close (RFC 9112 §6.3). */
class BodyDecoder {
  private chunkState: ChunkState = 'size';
  private chunkLeft = 0;
  private line = '';

  constructor(
    private readonly framing: Framing,
    private readonly body: RawBody,
    private readonly complete: () => void,
  ) {}

  /** Consumes body bytes per the framing; returns false to pause reading. */
  push(data: Buffer): boolean {
    const framing = this.framing;
    if (framing.kind === 'close') return this.body.deliver(data);
    if (framing.kind === 'length') {
      const n = Math.min(framing.left, data.length);
      framing.left -= n;
      const go = n > 0 ? this.body.deliver(data.subarray(0, n)) : true;
      if (framing.left === 0) this.complete();
      return go;
    }
    if (framing.kind === 'none') {
      this.complete();
      return false;
    }
    return this.chunked(data);
  }

  /** Chunked (RFC 9112 §7.1): size line [; ext] CRLF, data, CRLF, ..., 0 CRLF, trailers, CRLF. */
  private chunked(data: Buffer): boolean {
    let off = 0;
    let go = true;
    while (off < data.length) {
      if (this.chunkState === 'data') {
        const n = Math.min(this.chunkLeft, data.length - off);
        go = this.body.deliver(data.subarray(off, off + n)) && go;
        off += n;
        this.chunkLeft -= n;
        if (this.chunkLeft === 0) this.chunkState = 'data-crlf';
        continue;
      }
      // Line-oriented states: size line, the CRLF after data, trailer lines.
      const nl = data.indexOf(0x0a, off);
      const piece = data.toString('latin1', off, nl < 0 ? data.length : nl + 1);
      off = nl < 0 ? data.length : nl + 1;
      this.line += piece;
      if (this.line.length > 4096) throw codedError('over-long chunk line', 'HPE_CHUNK_EXTENSIONS_OVERFLOW');
      if (nl < 0) break;
      const text = this.line.replace(/\r?\n$/, '');
      this.line = '';
      if (this.chunkState === 'data-crlf') {
        if (text !== '') throw codedError('missing CRLF after chunk data', 'HPE_INVALID_CHUNK_SIZE');
        this.chunkState = 'size';
      } else if (this.chunkState === 'size') {
        const m = /^([0-9a-fA-F]{1,12})\s*(;.*)?$/.exec(text);
        if (!m) throw codedError(`invalid chunk size line "${text.slice(0, 40)}"`, 'HPE_INVALID_CHUNK_SIZE');
        this.chunkLeft = parseInt(m[1], 16);
        this.chunkState = this.chunkLeft === 0 ? 'trailer' : 'data';
      } else if (text === '') {
        this.complete(); // end of trailers
        return false;
      }
    }
    return go;
  }
}
