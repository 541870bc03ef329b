import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { log } from '../util/log.js';
import { VbmdError } from '../util/errors.js';
import { AddressRefusedError, checkLiteralHost, checkedLookup, isLoopbackHostname } from './address-policy.js';
import { rawGet } from './raw-http.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import { backoffDelayMs } from '../util/retry-policy.js';
import { DEFAULT_RETRY, RETRYABLE_STATUSES, retryAfterMs, retryPolicy, sleep } from './retry.js';
import type { TokenProvider } from './token-provider.js';

/**
 * The one way out to the network. Every HTTP call vbmd makes (FHIR reads and writes, SMART token requests,
 * cohort sources, CDS prefetch, DICOMweb QIDO/WADO/STOW) goes through `OutboundClient.exchange`, built on
 * undici, under one policy:
 * - addresses: loopback, private and link-local addresses only when allowed (`allowNonPublic`), checked on
 *   the address actually dialled (address-policy.ts), so DNS rebinding is caught too;
 * - TLS: plain http only to loopback unless `allowInsecureHttp` (tokens and images would cross the network
 *   in clear); an extra CA for servers with a private CA;
 * - redirects: none followed unless `maxRedirects` > 0 (then GET/HEAD only, and credentials and custom
 *   headers only to the original origin);
 * - time: `timeoutMs` to the response headers, `idleTimeoutMs` of silence while a body streams in;
 * - retries: the one RetryPolicy (src/util/retry-policy.ts, defaults and Retry-After in retry.ts) for network errors, retryable statuses (Retry-After honoured) and
 *   body errors the caller marks retriable, for requests that are safe to repeat; a 401 with a token
 *   provider is retried once with a fresh token;
 * - size: `readAll` stops reading past `maxBytes`;
 * - transport: undici, except a `streamed` GET to a plain-http server, which is read through one reused
 *   buffer (raw-http.ts: a fifth of undici's CPU on a 150 MiB WADO-RS series, measured there).
 * Failures before a response are an OutboundError naming the origin; a response of any status is the
 * caller's to judge (it knows the server's error format: OperationOutcome, DICOMweb advice).
 */
export type OutboundFailure = 'refused-address' | 'insecure-http' | 'redirect' | 'too-large' | 'status' | 'timeout' | 'network' | 'not-json' | 'cancelled';

export class OutboundError extends VbmdError {
  constructor(
    readonly reason: OutboundFailure,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown; errno?: string; attempts?: number },
  ) {
    super(reason === 'cancelled' ? 'cancelled' : 'remote', message, {
      reason,
      ...(status !== undefined ? { status } : {}),
      ...(options?.attempts !== undefined ? { attempts: options.attempts } : {}),
    }, options);
    this.errno = options?.errno;
    this.attempts = options?.attempts ?? 1;
  }
  /** The system or undici error code behind a network failure (ECONNREFUSED, UND_ERR_SOCKET, a TLS code). */
  readonly errno: string | undefined;
  readonly attempts: number;
}

export interface OutboundPolicy {
  /** Loopback, private and link-local addresses may be dialled (an operator configured this URL). Default true. */
  allowNonPublic?: boolean;
  /** Plain http to a non-loopback host. Default false. */
  allowInsecureHttp?: boolean;
  /** Extra trusted CA certificates (PEM). */
  caPem?: string | Buffer;
  /** Parallel connections per origin (default 8). */
  connections?: number;
  /** Redirect hops followed (GET/HEAD only); default 0: a 3xx is returned to the caller. */
  maxRedirects?: number;
  retry?: Partial<RetryPolicy>;
  /** To the response headers, per attempt (default 30 s). */
  timeoutMs?: number;
  /** Longest silence while a body streams in (default 60 s). */
  idleTimeoutMs?: number;
  /** Bearer tokens for every request of this client (a request may say `auth: null`). */
  auth?: TokenProvider;
  /** Sent with every request to the client's own origin (API gateways, basic credentials). Never logged. */
  headers?: Record<string, string>;
  /** What the server is, for log lines ("FHIR server", "DICOMweb server"). */
  label?: string;
  /** A dispatcher to use instead of the policy's agent: unit tests pass undici's MockAgent. */
  dispatcher?: Dispatcher;
}

export interface OutboundRequest {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  url: string | URL;
  headers?: Record<string, string>;
  body?: string | Buffer | Uint8Array;
  /** A body made afresh for each attempt (a token request signs a new assertion per attempt). */
  bodyForAttempt?: (attempt: number) => Promise<string | Buffer>;
  signal?: AbortSignal;
  /** Safe to repeat. Default: every method but POST and PATCH. */
  retryable?: boolean;
  retry?: Partial<RetryPolicy>;
  /** Statuses retried (default RETRYABLE_STATUSES). */
  retryStatuses?: ReadonlySet<number>;
  /** An error thrown by `consume` that a fresh attempt may cure (a body cut short). */
  retryBody?: (e: unknown) => boolean;
  timeoutMs?: number;
  idleTimeoutMs?: number;
  /** Overrides the client's token provider; null sends none. */
  auth?: TokenProvider | null;
  /** For log lines: "GET Observation?..." (no query values: they may hold patient ids). */
  operation?: string;
  /**
   * A large body read once, synchronously, chunk by chunk (a WADO-RS retrieve): over plain http it comes
   * through raw-http.ts, whose 'data' chunks are only valid during the listener call.
   */
  streamed?: boolean;
}

/** What callers use of a response body: undici's body (a Readable) and raw-http's RawBody both are one. */
export interface ResponseBody extends AsyncIterable<Buffer> {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (e: Error) => void): this;
  once(event: 'close' | 'end', listener: () => void): this;
  pause(): this;
  resume(): this;
  destroy(error?: Error): this;
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as a stream of Buffers; consume it or `discard` it. */
  body: ResponseBody;
  url: URL;
  /** Attempts made, this one included. */
  attempts: number;
  /** Set when a retryable status came with a Retry-After longer than the policy waits. */
  retryAfterMs?: number;
  header(name: string): string | undefined;
}

/** Network errors a fresh connection may cure (not TLS or name-resolution failures). */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE', 'VBMD_TIMEOUT',
]);

/** The first `code` on an error's cause chain (undici wraps socket errors). */
export function errnoOf(e: unknown): string | undefined {
  for (let c: unknown = e, i = 0; c && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    if (c instanceof OutboundError) return c.errno;
    // A VbmdError's `code` is its kind ('remote'), not a system error code.
    if (c instanceof VbmdError || c instanceof AddressRefusedError) continue;
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

export function isTransientNetworkError(e: unknown): boolean {
  return TRANSIENT_CODES.has(errnoOf(e) ?? '');
}

function refusal(e: unknown): AddressRefusedError | undefined {
  for (let c: unknown = e, i = 0; c && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    if (c instanceof AddressRefusedError) return c;
  }
  return undefined;
}

const sharedAgents = new Map<string, Agent>();
function agentFor(allowNonPublic: boolean, connections: number, caPem?: string | Buffer): Agent {
  const connect = { ...(allowNonPublic ? {} : { lookup: checkedLookup(false) }), ...(caPem ? { ca: caPem } : {}) };
  if (caPem) return new Agent({ connect, connections, keepAliveTimeout: 10_000 });
  const key = `${allowNonPublic}|${connections}`;
  let a = sharedAgents.get(key);
  if (!a) {
    a = new Agent({ connect, connections, keepAliveTimeout: 10_000 });
    sharedAgents.set(key, a);
  }
  return a;
}

const firstValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export class OutboundClient {
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly allowNonPublic: boolean;
  private readonly retry: Required<RetryPolicy>;

  constructor(private readonly policy: OutboundPolicy = {}) {
    this.allowNonPublic = policy.allowNonPublic ?? true;
    this.retry = retryPolicy(policy.retry ?? {});
    this.ownsDispatcher = !policy.dispatcher && policy.caPem !== undefined;
    this.dispatcher = policy.dispatcher ?? agentFor(this.allowNonPublic, policy.connections ?? 8, policy.caPem);
  }

  /** Refuses a URL the policy forbids, before any connection (plain http, a forbidden IP literal). */
  checkUrl(url: URL): void {
    const origin = url.origin;
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OutboundError('insecure-http', `${url.protocol}// is not an http(s) URL (${origin}).`);
    if (url.protocol === 'http:' && !this.policy.allowInsecureHttp && !isLoopbackHostname(url.hostname)) {
      throw new OutboundError('insecure-http', `Refusing plain http to ${origin}: tokens and data would cross the network unencrypted; use https (or allow insecure http explicitly).`);
    }
    try {
      checkLiteralHost(url.hostname, this.allowNonPublic);
    } catch (e) {
      throw new OutboundError('refused-address', `Refusing to call ${origin}: ${(e as Error).message}.`, undefined, { cause: e });
    }
  }

  /**
   * One request, retried under the policy, then `consume` on the final response (any status: the caller
   * judges it). An error from `consume` that `req.retryBody` accepts repeats the whole exchange.
   */
  async exchange<T>(req: OutboundRequest, consume: (res: OutboundResponse) => Promise<T>): Promise<T> {
    const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
    this.checkUrl(url);
    const policy = req.retry ? retryPolicy(req.retry, this.retry) : this.retry;
    const retryable = req.retryable ?? !(req.method === 'POST' || req.method === 'PATCH');
    const retries = retryable ? policy.retries : 0;
    const statuses = req.retryStatuses ?? RETRYABLE_STATUSES;
    let refreshedAuth = false;
    for (let attempt = 0; ; attempt++) {
      const more = attempt < retries;
      let res: OutboundResponse;
      try {
        res = await this.open(req, url, attempt);
      } catch (e) {
        if (!(more && e instanceof OutboundError && (e.reason === 'timeout' || isTransientNetworkError(e)))) throw e;
        await this.pause(req, url, attempt, backoffDelayMs(attempt, policy), { error: e.errno ?? e.reason });
        continue;
      }
      if (res.status === 401 && !refreshedAuth && this.authFor(req)) {
        refreshedAuth = true;
        this.authFor(req)!.invalidate();
        await release(res.body);
        attempt--;
        continue;
      }
      if (statuses.has(res.status)) {
        const ra = retryAfterMs(res.headers['retry-after']);
        if (ra !== undefined && ra > policy.maxRetryAfterMs) res.retryAfterMs = ra;
        else if (more) {
          await release(res.body);
          await this.pause(req, url, attempt, ra ?? backoffDelayMs(attempt, policy), { status: res.status });
          continue;
        }
      }
      try {
        return await consume(res);
      } catch (e) {
        discard(res.body);
        if (req.signal?.aborted) throw cancelled(url, req.signal.reason);
        if (!(more && req.retryBody?.(e))) throw e;
        await this.pause(req, url, attempt, backoffDelayMs(attempt, policy), { error: errnoOf(e) ?? (e as Error).message });
      }
    }
  }

  /** The whole body as a Buffer, at most `maxBytes` (a larger one is abandoned unread). */
  async readAll(res: OutboundResponse, maxBytes: number): Promise<Buffer> {
    const declared = Number(res.header('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes) {
      discard(res.body);
      throw new OutboundError('too-large', `${res.url.origin} sent ${declared} bytes, more than the ${maxBytes} allowed.`, res.status);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res.body) {
        total += (chunk as Buffer).length;
        if (total > maxBytes) {
          discard(res.body);
          throw new OutboundError('too-large', `${res.url.origin} sent more than the ${maxBytes} bytes allowed.`, res.status);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (e) {
      if (e instanceof OutboundError) throw e;
      const timedOut = errnoOf(e) === 'UND_ERR_BODY_TIMEOUT';
      throw new OutboundError(timedOut ? 'timeout' : 'network', `The answer from ${res.url.origin} broke off: ${timedOut ? 'no data in time' : (e as Error).message}.`, res.status, { cause: e, errno: errnoOf(e) });
    }
    return Buffer.concat(chunks, total);
  }

  /** A request whose whole (bounded) body is read: status, headers and bytes. */
  async fetch(req: OutboundRequest, maxBytes: number): Promise<{ status: number; headers: IncomingHttpHeaders; header(name: string): string | undefined; bytes: Buffer; url: URL; retryAfterMs?: number }> {
    return this.exchange({ ...req, retryBody: req.retryBody ?? isTransientNetworkError }, async (res) => ({
      status: res.status,
      headers: res.headers,
      header: res.header,
      url: res.url,
      bytes: await this.readAll(res, maxBytes),
      ...(res.retryAfterMs !== undefined ? { retryAfterMs: res.retryAfterMs } : {}),
    }));
  }

  /** Releases the kept-alive connections of a client with its own agent (a private CA). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close().catch(() => undefined);
  }

  private authFor(req: OutboundRequest): TokenProvider | undefined {
    return req.auth === null ? undefined : (req.auth ?? this.policy.auth);
  }

  private async pause(req: OutboundRequest, url: URL, attempt: number, delayMs: number, why: { status?: number; error?: string }): Promise<void> {
    log.warn({ server: url.origin, label: this.policy.label, operation: req.operation ?? req.method ?? 'GET', attempt: attempt + 1, delayMs: Math.round(delayMs), ...why }, 'outbound request failed; retrying');
    try {
      await sleep(delayMs, req.signal);
    } catch (e) {
      throw cancelled(url, e);
    }
  }

  /** One attempt up to the response headers, following allowed redirects. */
  private async open(req: OutboundRequest, first: URL, attempt: number): Promise<OutboundResponse> {
    let url = first;
    let method = req.method ?? 'GET';
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === first.origin;
      const headers: Record<string, string> = { ...(sameOrigin ? this.policy.headers : {}), ...(sameOrigin ? req.headers : pick(req.headers, ['accept'])) };
      const auth = sameOrigin ? this.authFor(req) : undefined;
      if (auth) headers.authorization = `Bearer ${await auth.token(req.signal)}`;
      const body = hop > 0 ? undefined : req.bodyForAttempt ? await req.bodyForAttempt(attempt) : req.body;
      const res = await this.send(url, method, headers, body, req, attempt);
      const location = res.header('location');
      const canFollow = (method === 'GET' || method === 'HEAD') && hop < (this.policy.maxRedirects ?? 0);
      if (res.status < 300 || res.status >= 400 || res.status === 304 || !location || !canFollow) return res;
      await release(res.body);
      url = new URL(location, url);
      this.checkUrl(url);
      method = method === 'HEAD' ? 'HEAD' : 'GET';
    }
  }

  private async send(url: URL, method: string, headers: Record<string, string>, body: string | Buffer | Uint8Array | undefined, req: OutboundRequest, attempt: number): Promise<OutboundResponse> {
    if (req.signal?.aborted) throw cancelled(url, req.signal.reason);
    const timeoutMs = req.timeoutMs ?? this.policy.timeoutMs ?? 30_000;
    // The caller's signal stays linked for the body too; the timer only until the headers arrive.
    const timeoutCtl = new AbortController();
    const signal = req.signal ? AbortSignal.any([req.signal, timeoutCtl.signal]) : timeoutCtl.signal;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      timeoutCtl.abort(Object.assign(new Error(`no response within ${timeoutMs} ms`), { code: 'VBMD_TIMEOUT' }));
    }, timeoutMs);
    try {
      if (req.streamed && url.protocol === 'http:' && method === 'GET' && body === undefined && !this.policy.dispatcher) {
        const r = await rawGet(url, {
          headers,
          timeoutMs,
          idleTimeoutMs: req.idleTimeoutMs ?? this.policy.idleTimeoutMs ?? 60_000,
          signal,
          ...(this.allowNonPublic ? {} : { lookup: checkedLookup(false) }),
        });
        const rh = r.headers;
        return { status: r.status, headers: rh, body: r.body, url, attempts: attempt + 1, header: (name) => firstValue(rh[name.toLowerCase()]) };
      }
      const r = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(body !== undefined ? { body } : {}),
        dispatcher: this.dispatcher,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: req.idleTimeoutMs ?? this.policy.idleTimeoutMs ?? 60_000,
        maxRedirections: 0,
      });
      const h = r.headers;
      return { status: r.statusCode, headers: h, body: r.body, url, attempts: attempt + 1, header: (name) => firstValue(h[name.toLowerCase()]) };
    } catch (e) {
      if (req.signal?.aborted) throw cancelled(url, req.signal.reason);
      const refused = refusal(e);
      if (refused) throw new OutboundError('refused-address', `Refusing to call ${url.origin}: ${refused.message}.`, undefined, { cause: e, attempts: attempt + 1 });
      if (timedOut || errnoOf(e) === 'UND_ERR_HEADERS_TIMEOUT' || errnoOf(e) === 'VBMD_TIMEOUT') {
        throw new OutboundError('timeout', `No answer from ${url.origin} within ${timeoutMs} ms.`, undefined, { cause: e, errno: 'VBMD_TIMEOUT', attempts: attempt + 1 });
      }
      throw new OutboundError('network', `Could not reach ${url.origin}: ${(e as Error).message}.`, undefined, { cause: e, errno: errnoOf(e), attempts: attempt + 1 });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Drops a body unread; undici reports a destroyed body as an 'error' (aborted), which nobody needs here. */
export function discard(body: ResponseBody): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Reads a small unwanted body to its end so undici can reuse the connection (at most 128 KiB), else drops it. */
async function release(body: ResponseBody): Promise<void> {
  const dump = (body as Partial<Dispatcher.ResponseData['body']>).dump;
  if (typeof dump === 'function') await dump.call(body).catch(() => undefined);
  else discard(body);
}

function pick(h: Record<string, string> | undefined, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (names.includes(k.toLowerCase())) out[k] = v;
  return out;
}

function cancelled(url: URL, reason: unknown): OutboundError {
  return new OutboundError('cancelled', `The request to ${url.origin} was cancelled.`, undefined, { cause: reason });
}

export { DEFAULT_RETRY };
