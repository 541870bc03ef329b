import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { isLoopbackHostname } from '../../net/address-policy.js';
import { log } from '../../util/log.js';
import { VbmdError } from '../../util/errors.js';
import { DicomWebError, adviceForStatus, codeForStatus } from './errors.js';
import { MultipartError } from './multipart.js';
import { rawGet } from './raw-http.js';

/**
 * The HTTP transport of the DICOMweb client: node:http(s) with keep-alive, auth headers, TLS policy,
 * timeouts, retries (exponential backoff with full jitter on network errors, 408/429/5xx; `Retry-After`
 * honoured) and cancellation. Bodies stay streams (IncomingMessage yields Buffers) so WADO-RS responses are
 * parsed while they arrive.
 */
export type DicomWebAuth =
  | { type: 'bearer'; token: string | (() => string | Promise<string>) }
  | { type: 'basic'; username: string; password: string };

export interface DicomWebClientOptions {
  /** DICOMweb root, e.g. https://pacs.example.org/dicom-web (QIDO, WADO and STOW below it). */
  baseUrl: string;
  auth?: DicomWebAuth;
  /** Extra headers on every request (API gateways, tenant ids). Never logged. */
  headers?: Record<string, string>;
  /** Plain http to a non-loopback host is refused unless this is true (TLS by default). */
  allowInsecureHttp?: boolean;
  /** Extra trusted CA certificates (PEM) for a PACS with a private CA. */
  caPem?: string | Buffer;
  /** Time to the response headers, per attempt (default 30 s). */
  timeoutMs?: number;
  /** Longest silence while a body streams in (default 60 s). */
  idleTimeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** First backoff step (default 500 ms); doubles each retry, full jitter, capped by `retryMaxDelayMs`. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** A `Retry-After` longer than this fails instead of waiting (default 60 s). */
  maxRetryAfterMs?: number;
  /** Parallel connections to the server (default 4). */
  maxSockets?: number;
  /** Paces and counts WADO-RS retrievals (caps on concurrent retrievals and bytes/s, retrieval metrics). */
  retrievalGate?: RetrievalGate;
}

/**
 * Around each WADO-RS retrieve: `begin` may wait for a free retrieval slot; the lease is told the size of
 * every part as it arrives and may ask the reader to pause (the response stream is paused meanwhile, so
 * TCP flow control slows the PACS down); `end` frees the slot. Implemented in src/backfill/retrieval-gate.ts.
 */
export interface RetrievalGate {
  begin(what: { operation: string; studyInstanceUid?: string; signal?: AbortSignal }): Promise<RetrievalLease>;
}

export interface RetrievalLease {
  /** One part of `bytes` was read; a returned promise holds the next part back until it resolves. */
  received(bytes: number): void | Promise<void>;
  end(outcome: 'ok' | 'error'): void;
}

export interface RequestSpec {
  method?: 'GET' | 'POST';
  /** Path below the base URL, starting with "/" (segments already encoded). */
  path: string;
  query?: Record<string, string | number | ReadonlyArray<string> | undefined>;
  accept: string;
  body?: Buffer;
  contentType?: string;
  signal?: AbortSignal;
  /** For messages: "QIDO-RS study search", "WADO-RS series retrieve", ... */
  operation: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  /** Per-request overrides of the client's retries and response timeout (e.g. a readiness probe). */
  retries?: number;
  timeoutMs?: number;
  /**
   * A large body read once, synchronously, chunk by chunk (WADO-RS retrieve): over plain http it comes
   * through `rawGet` (src/dicom/dicomweb/raw-http.ts: one reused read buffer, ~3x less CPU than node:http),
   * and 'data' chunks are then only valid during the listener call.
   */
  streamed?: boolean;
}

/** What consumers use of a response body; node:http's IncomingMessage and raw-http's RawBody both are one. */
export interface ResponseBody extends AsyncIterable<Buffer> {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (e: Error) => void): this;
  once(event: 'close' | 'end', listener: () => void): this;
  pause(): this;
  resume(): this;
  destroy(error?: Error): this;
}

export interface OpenResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: ResponseBody;
}

/** An error while consuming a body that a fresh attempt may cure (cut connection, truncated multipart). */
export class RetriableBodyError extends Error {
  override readonly name = 'RetriableBodyError';
}

/** Thrown by a `consume` callback to stop the exchange and reach the caller unchanged (never retried). */
export class StopRequest extends Error {
  override readonly name = 'StopRequest';
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const NETWORK_RETRY_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'VBMD_TIMEOUT',
]);

/** Parses `Retry-After` (delta-seconds or HTTP-date, RFC 9110 §10.2.3) into milliseconds. */
export function parseRetryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

function cancelledError(server: string, spec: Pick<RequestSpec, 'operation' | 'studyInstanceUid' | 'seriesInstanceUid'>, cause?: unknown): DicomWebError {
  return new DicomWebError('cancelled', `The ${spec.operation} on DICOMweb server ${server} was cancelled.`, {
    server,
    operation: spec.operation,
    studyInstanceUid: spec.studyInstanceUid,
    seriesInstanceUid: spec.seriesInstanceUid,
  }, { cause });
}

function errnoCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export class DicomWebHttp {
  /** Base URL for messages: origin + path, no credentials, no query, no trailing slash. */
  readonly server: string;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly opts: Required<Pick<DicomWebClientOptions, 'timeoutMs' | 'idleTimeoutMs' | 'retries' | 'retryBaseDelayMs' | 'retryMaxDelayMs' | 'maxRetryAfterMs'>>;
  private readonly auth?: DicomWebAuth;
  private readonly extraHeaders: Record<string, string>;
  readonly retrievalGate?: RetrievalGate;

  constructor(options: DicomWebClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new VbmdError('config', `The DICOMweb base URL "${options.baseUrl}" is not a valid URL; use e.g. https://pacs.example.org/dicom-web.`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new VbmdError('config', `The DICOMweb base URL must start with https:// (got ${url.protocol}).`);
    }
    let auth = options.auth;
    if (url.username || url.password) {
      // Credentials in the URL would end up in messages: move them to basic auth.
      auth ??= { type: 'basic', username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      url.username = '';
      url.password = '';
    }
    url.search = '';
    url.hash = '';
    url.pathname = url.pathname.replace(/\/+$/, '');
    this.base = url;
    this.server = `${url.origin}${url.pathname}`;
    if (url.protocol === 'http:' && !options.allowInsecureHttp && !isLoopbackHostname(url.hostname)) {
      throw new VbmdError(
        'config',
        `Refusing plain http to DICOMweb server ${this.server}: images and tokens would cross the network unencrypted; use https:// or allow insecure http explicitly.`,
      );
    }
    this.auth = auth;
    this.extraHeaders = { ...(options.headers ?? {}) };
    if (options.retrievalGate) this.retrievalGate = options.retrievalGate;
    const agentOpts = { keepAlive: true, maxSockets: options.maxSockets ?? 4 };
    this.agent = url.protocol === 'https:' ? new https.Agent({ ...agentOpts, ca: options.caPem }) : new http.Agent(agentOpts);
    this.opts = {
      timeoutMs: options.timeoutMs ?? 30_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      retries: options.retries ?? 3,
      retryBaseDelayMs: options.retryBaseDelayMs ?? 500,
      retryMaxDelayMs: options.retryMaxDelayMs ?? 10_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
    };
  }

  /** Full URL of a path below the base (for curl comparisons and logs at debug level). */
  url(path: string, query?: RequestSpec['query']): URL {
    const u = new URL(this.base.href);
    u.pathname = `${this.base.pathname}${path}`;
    if (query) {
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined) continue;
        if (Array.isArray(v)) for (const x of v) u.searchParams.append(k, String(x));
        else u.searchParams.append(k, String(v));
      }
    }
    return u;
  }

  /** Headers every request carries (auth + custom); exposed for tools that must send the same (bench curl). */
  async baseHeaders(): Promise<Record<string, string>> {
    const h: Record<string, string> = { ...this.extraHeaders };
    if (this.auth?.type === 'bearer') {
      const token = typeof this.auth.token === 'function' ? await this.auth.token() : this.auth.token;
      h.authorization = `Bearer ${token}`;
    } else if (this.auth?.type === 'basic') {
      h.authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    }
    return h;
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * Runs `consume` on a successful (2xx) response, retrying the whole exchange on network errors, retriable
   * statuses and `RetriableBodyError`s from `consume`. Rejects with a DicomWebError that names the server.
   */
  async request<T>(spec: RequestSpec, consume: (res: OpenResponse) => Promise<T>): Promise<T> {
    const retries = spec.retries ?? this.opts.retries;
    let lastFailure: DicomWebError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (spec.signal?.aborted) throw cancelledError(this.server, spec, spec.signal.reason);
      let waitMs: number | undefined;
      let res: OpenResponse | undefined;
      try {
        res = await this.open(spec);
      } catch (e) {
        if (spec.signal?.aborted) throw cancelledError(this.server, spec, e);
        const failure = this.networkError(spec, e, attempt + 1);
        if (!NETWORK_RETRY_CODES.has(errnoCode(e) ?? '')) throw failure;
        lastFailure = failure;
      }
      if (res) {
        if (res.status >= 200 && res.status < 300) {
          try {
            return await consume(res);
          } catch (e) {
            res.body.destroy();
            if (spec.signal?.aborted) throw cancelledError(this.server, spec, e);
            if (e instanceof VbmdError || e instanceof StopRequest) throw e;
            const retriable = e instanceof RetriableBodyError || (e instanceof MultipartError && e.reason === 'truncated') || NETWORK_RETRY_CODES.has(errnoCode(e) ?? '');
            const failure = this.bodyError(spec, e, attempt + 1);
            if (!retriable) throw failure;
            lastFailure = failure;
          }
        } else {
          const text = await readSmallBody(res.body);
          const failure = this.statusError(spec, res.status, text, attempt + 1);
          if (!RETRY_STATUS.has(res.status)) throw failure;
          lastFailure = failure;
          const ra = parseRetryAfterMs(firstHeader(res.headers['retry-after']));
          if (ra !== undefined) {
            if (ra > this.opts.maxRetryAfterMs) {
              throw new DicomWebError(failure.code, `DICOMweb server ${this.server} answered HTTP ${res.status} to the ${spec.operation}${this.what(spec)} and asks to retry after ${formatMs(ra)}, longer than this service waits; try again later.`, {
                server: this.server, status: res.status, operation: spec.operation, studyInstanceUid: spec.studyInstanceUid, seriesInstanceUid: spec.seriesInstanceUid, attempts: attempt + 1,
              });
            }
            waitMs = ra;
          }
        }
      }
      if (attempt < retries) {
        waitMs ??= Math.random() * Math.min(this.opts.retryMaxDelayMs, this.opts.retryBaseDelayMs * 2 ** attempt);
        log.warn({ server: this.server, operation: spec.operation, attempt: attempt + 1, waitMs: Math.round(waitMs), reason: lastFailure?.message }, 'DICOMweb request failed; retrying');
        try {
          await delay(waitMs, undefined, { signal: spec.signal });
        } catch (e) {
          throw cancelledError(this.server, spec, e);
        }
      }
    }
    throw lastFailure ?? new DicomWebError('remote', `The ${spec.operation} on DICOMweb server ${this.server} failed.`, { server: this.server });
  }

  /** One HTTP exchange up to the response headers. */
  private async open(spec: RequestSpec): Promise<OpenResponse> {
    const url = this.url(spec.path, spec.query);
    const headers: Record<string, string> = { ...(await this.baseHeaders()), accept: spec.accept };
    if (spec.body) {
      headers['content-type'] = spec.contentType ?? 'application/octet-stream';
      headers['content-length'] = String(spec.body.length);
    }
    if (spec.streamed && url.protocol === 'http:' && !spec.body && (spec.method ?? 'GET') === 'GET') {
      const r = await rawGet(url, { headers, timeoutMs: spec.timeoutMs ?? this.opts.timeoutMs, idleTimeoutMs: this.opts.idleTimeoutMs, signal: spec.signal });
      return { status: r.status, headers: r.headers, body: r.body };
    }
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<OpenResponse>((resolve, reject) => {
      let settled = false;
      const req = mod.request(url, { method: spec.method ?? 'GET', headers, agent: this.agent });
      const timeoutError = (what: string, ms: number): Error =>
        Object.assign(new Error(`no ${what} within ${formatMs(ms)}`), { code: 'VBMD_TIMEOUT' });
      const timeoutMs = spec.timeoutMs ?? this.opts.timeoutMs;
      const headerTimer = setTimeout(() => req.destroy(timeoutError('response', timeoutMs)), timeoutMs);
      // Idle timeout covers the body too: a stalled stream errors the response.
      req.setTimeout(this.opts.idleTimeoutMs, () => req.destroy(timeoutError('data', this.opts.idleTimeoutMs)));
      const onAbort = (): void => {
        req.destroy(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      };
      spec.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(headerTimer);
      };
      req.on('response', (res) => {
        cleanup();
        settled = true;
        res.once('close', () => spec.signal?.removeEventListener('abort', onAbort));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      req.on('error', (e) => {
        cleanup();
        spec.signal?.removeEventListener('abort', onAbort);
        if (!settled) {
          settled = true;
          reject(e);
        }
      });
      if (spec.signal?.aborted) onAbort();
      req.end(spec.body);
    });
  }

  private details(spec: RequestSpec, attempts: number, status?: number): ConstructorParameters<typeof DicomWebError>[2] {
    return {
      server: this.server,
      status,
      operation: spec.operation,
      studyInstanceUid: spec.studyInstanceUid,
      seriesInstanceUid: spec.seriesInstanceUid,
      attempts,
    };
  }

  private what(spec: RequestSpec): string {
    if (spec.seriesInstanceUid) return ` for series ${spec.seriesInstanceUid}`;
    if (spec.studyInstanceUid) return ` for study ${spec.studyInstanceUid}`;
    return '';
  }

  statusError(spec: RequestSpec, status: number, bodyText: string, attempts: number): DicomWebError {
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    const msg = `DICOMweb server ${this.server} answered HTTP ${status} to the ${spec.operation}${this.what(spec)}${tries}; ${adviceForStatus(status)}.`;
    log.debug({ server: this.server, status, body: bodyText.slice(0, 300) }, 'DICOMweb error body');
    return new DicomWebError(codeForStatus(status), msg, this.details(spec, attempts, status));
  }

  private networkError(spec: RequestSpec, e: unknown, attempts: number): DicomWebError {
    const code = errnoCode(e);
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    let why: string;
    if (code === 'ECONNREFUSED') why = 'the connection was refused; check the URL and that the server is running';
    else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') why = 'the host name could not be resolved; check the URL';
    else if (code === 'ECONNRESET') why = 'the connection was reset; check the server and network';
    else if (code === 'VBMD_TIMEOUT') why = `it did not answer in time (${(e as Error).message}); check the server and network`;
    else if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(VERIFY|GET)|ISSUER|SIGNATURE/i.test(code)) why = `its TLS certificate was not accepted (${code}); install the PACS CA certificate or fix the server certificate`;
    else why = `the connection failed (${code ?? (e instanceof Error ? e.message : String(e))})`;
    return new DicomWebError('remote', `Cannot reach DICOMweb server ${this.server} for the ${spec.operation}${this.what(spec)}${tries}: ${why}.`, this.details(spec, attempts), { cause: e });
  }

  private bodyError(spec: RequestSpec, e: unknown, attempts: number): DicomWebError {
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    const code = errnoCode(e);
    let why = e instanceof Error ? e.message : String(e);
    if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || why === 'aborted') why = 'the connection closed before the whole response arrived';
    else if (code === 'VBMD_TIMEOUT') why = `the data stopped arriving (${why})`;
    return new DicomWebError('remote', `The response of DICOMweb server ${this.server} to the ${spec.operation}${this.what(spec)} was broken${tries}: ${why.replace(/\.$/, '')}.`, this.details(spec, attempts), { cause: e });
  }
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Reads at most 8 KiB of an error body (for debug logs), then drops the rest. */
async function readSmallBody(body: ResponseBody): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      if (n < 8192) chunks.push(c);
      n += c.length;
      if (n > 1 << 20) {
        body.destroy();
        break;
      }
    }
  } catch {
    /* the status is what matters */
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a whole (small, JSON) body as a Buffer, bounded by `maxBytes`. */
export async function readBody(body: ResponseBody, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > maxBytes) {
      body.destroy();
      throw new RangeError(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}
