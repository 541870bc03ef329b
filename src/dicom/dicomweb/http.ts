import type { IncomingHttpHeaders } from 'node:http';
import { errnoOf, isTransientNetworkError, OutboundClient, OutboundError } from '../../net/outbound.js';
import type { OutboundResponse, ResponseBody } from '../../net/outbound.js';
import type { RetryPolicy } from '../../util/retry-policy.js';
import { retryPolicy } from '../../net/retry.js';
import type { TokenProvider } from '../../net/token-provider.js';
import { log } from '../../util/log.js';
import { VbmdError } from '../../util/errors.js';
import { DicomWebError, adviceForStatus, codeForStatus } from './errors.js';
import { MultipartError } from './multipart.js';

/**
 * The HTTP side of the DICOMweb client, on the outbound layer (src/net/outbound.ts): auth headers, TLS
 * policy, timeouts, the one retry policy (network errors, 408/429/5xx with Retry-After, bodies cut short)
 * and cancellation are the layer's; this file turns its failures into DicomWebErrors that name the server,
 * the operation and the study or series. Bodies stay streams, so WADO-RS responses are parsed while they
 * arrive (over plain http through the layer's one-buffer reader, raw-http.ts).
 */
export type DicomWebAuth =
  | { type: 'bearer'; tokens: TokenProvider }
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
  /** Over DICOMWEB_RETRY: 3 retries, 500 ms doubling to 10 s (+-20% jitter), a Retry-After up to 60 s. */
  retry?: Partial<RetryPolicy>;
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
   * through the outbound layer's one-buffer reader (src/net/raw-http.ts), and 'data' chunks are then only
   * valid during the listener call.
   */
  streamed?: boolean;
}

export type { ResponseBody };

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

/** The DICOMweb retry policy: fewer, longer waits than FHIR's default (a PACS under load recovers slowly). */
export const DICOMWEB_RETRY: Required<RetryPolicy> = { retries: 3, baseDelayMs: 500, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 };

function cancelledError(server: string, spec: Pick<RequestSpec, 'operation' | 'studyInstanceUid' | 'seriesInstanceUid'>, cause?: unknown): DicomWebError {
  return new DicomWebError('cancelled', `The ${spec.operation} on DICOMweb server ${server} was cancelled.`, {
    server,
    operation: spec.operation,
    studyInstanceUid: spec.studyInstanceUid,
    seriesInstanceUid: spec.seriesInstanceUid,
  }, { cause });
}

export class DicomWebHttp {
  /** Base URL for messages: origin + path, no credentials, no query, no trailing slash. */
  readonly server: string;
  private readonly base: URL;
  private readonly net: OutboundClient;
  private readonly retry: Required<RetryPolicy>;
  private readonly timeoutMs: number;
  private readonly basic?: string;
  private readonly bearer?: TokenProvider;
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
    if (auth?.type === 'bearer') this.bearer = auth.tokens;
    if (auth?.type === 'basic') this.basic = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    if (options.retrievalGate) this.retrievalGate = options.retrievalGate;
    this.retry = retryPolicy(options.retry ?? {}, DICOMWEB_RETRY);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.net = new OutboundClient({
      label: 'DICOMweb server',
      allowInsecureHttp: options.allowInsecureHttp ?? false,
      connections: options.maxSockets ?? 4,
      timeoutMs: this.timeoutMs,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      retry: this.retry,
      headers: { ...(options.headers ?? {}), ...(this.basic ? { authorization: this.basic } : {}) },
      ...(auth?.type === 'bearer' ? { auth: auth.tokens } : {}),
      ...(options.caPem ? { caPem: options.caPem } : {}),
    });
    try {
      this.net.checkUrl(url);
    } catch {
      throw new VbmdError(
        'config',
        `Refusing plain http to DICOMweb server ${this.server}: images and tokens would cross the network unencrypted; use https:// or allow insecure http explicitly.`,
      );
    }
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

  /** The credentials every request carries (bench curl and tests send the same); never logged. */
  async baseHeaders(): Promise<Record<string, string>> {
    const h: Record<string, string> = {};
    if (this.bearer) h.authorization = `Bearer ${await this.bearer.token()}`;
    else if (this.basic) h.authorization = this.basic;
    return h;
  }

  close(): void {
    void this.net.close();
  }

  /**
   * Runs `consume` on a successful (2xx) response; the outbound layer repeats the whole exchange on network
   * errors, retriable statuses and bodies cut short (RetriableBodyError, a truncated multipart, a reset).
   * Rejects with a DicomWebError that names the server.
   */
  async request<T>(spec: RequestSpec, consume: (res: OpenResponse) => Promise<T>): Promise<T> {
    const headers: Record<string, string> = { accept: spec.accept };
    if (spec.body) headers['content-type'] = spec.contentType ?? 'application/octet-stream';
    let attempts = 1;
    try {
      return await this.net.exchange({
        method: spec.method ?? 'GET',
        url: this.url(spec.path, spec.query),
        headers,
        ...(spec.body ? { body: spec.body } : {}),
        // STOW-RS stores instances by their SOP Instance UIDs: repeating it stores nothing twice.
        retryable: true,
        retry: spec.retries !== undefined ? { ...this.retry, retries: spec.retries } : this.retry,
        retryBody: retriableBody,
        ...(spec.timeoutMs !== undefined ? { timeoutMs: spec.timeoutMs } : {}),
        ...(spec.signal ? { signal: spec.signal } : {}),
        ...(spec.streamed ? { streamed: true } : {}),
        operation: spec.operation,
      }, async (res) => {
        attempts = res.attempts;
        if (res.status >= 200 && res.status < 300) return consume(res);
        throw await this.refusal(spec, res);
      });
    } catch (e) {
      if (spec.signal?.aborted || (e instanceof OutboundError && e.reason === 'cancelled')) throw cancelledError(this.server, spec, e);
      if (e instanceof OutboundError) throw this.networkError(spec, e, e.attempts);
      if (e instanceof VbmdError || e instanceof StopRequest) throw e;
      throw this.bodyError(spec, e, attempts);
    }
  }

  /** The DicomWebError for a non-2xx answer the layer did not (or no longer) retry. */
  private async refusal(spec: RequestSpec, res: OutboundResponse): Promise<DicomWebError> {
    const text = await readSmallBody(res.body);
    if (res.retryAfterMs !== undefined) {
      return new DicomWebError(codeForStatus(res.status), `DICOMweb server ${this.server} answered HTTP ${res.status} to the ${spec.operation}${this.what(spec)} and asks to retry after ${formatMs(res.retryAfterMs)}, longer than this service waits; try again later.`, this.details(spec, res.attempts, res.status));
    }
    return this.statusError(spec, res.status, text, res.attempts);
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

  private networkError(spec: RequestSpec, e: OutboundError, attempts: number): DicomWebError {
    const code = e.reason === 'refused-address' ? 'VBMD_ADDRESS_REFUSED' : e.errno;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    let why: string;
    if (code === 'ECONNREFUSED') why = 'the connection was refused; check the URL and that the server is running';
    else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') why = 'the host name could not be resolved; check the URL';
    else if (code === 'ECONNRESET') why = 'the connection was reset; check the server and network';
    else if (code === 'VBMD_TIMEOUT') why = `it did not answer in time (no response within ${formatMs(spec.timeoutMs ?? this.timeoutMs)}); check the server and network`;
    else if (code === 'VBMD_ADDRESS_REFUSED') why = e.message.replace(/\.$/, '');
    else if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(VERIFY|GET)|ISSUER|SIGNATURE/i.test(code)) why = `its TLS certificate was not accepted (${code}); install the PACS CA certificate or fix the server certificate`;
    else why = `the connection failed (${code ?? e.message.replace(/\.$/, '')})`;
    return new DicomWebError('remote', `Cannot reach DICOMweb server ${this.server} for the ${spec.operation}${this.what(spec)}${tries}: ${why}.`, this.details(spec, attempts), { cause: e });
  }

  private bodyError(spec: RequestSpec, e: unknown, attempts: number): DicomWebError {
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    const code = errnoOf(e);
    let why = e instanceof Error ? e.message : String(e);
    if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || why === 'aborted') why = 'the connection closed before the whole response arrived';
    else if (code === 'VBMD_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') why = `the data stopped arriving (${why})`;
    return new DicomWebError('remote', `The response of DICOMweb server ${this.server} to the ${spec.operation}${this.what(spec)} was broken${tries}: ${why.replace(/\.$/, '')}.`, this.details(spec, attempts), { cause: e });
  }
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** A consume error a fresh attempt may cure: a body cut short, a truncated multipart, a reset connection. */
function retriableBody(e: unknown): boolean {
  if (e instanceof VbmdError || e instanceof StopRequest) return false;
  return e instanceof RetriableBodyError || (e instanceof MultipartError && e.reason === 'truncated') || isTransientNetworkError(e);
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
