import type { IncomingHttpHeaders } from 'node:http';
import type { Bundle, FhirResource, Resource } from 'fhir/r4.js';
import type { Dispatcher } from 'undici';
import { OutboundClient, OutboundError } from '../net/outbound.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import { RETRYABLE_STATUSES } from '../net/retry.js';
import type { TokenProvider } from '../net/token-provider.js';
import { FhirError, hintForStatus, outcomeText } from './fhir-error.js';

export interface FhirClientOptions {
  /** FHIR R4 base, e.g. `https://ehr.example.org/fhir/R4`. */
  baseUrl: string;
  /** No provider = no Authorization header (the sandbox). */
  auth?: TokenProvider;
  /** Plain http to a non-loopback server (ALLOW_INSECURE_HTTP); refused otherwise. */
  allowInsecureHttp?: boolean;
  /** undici's MockAgent in unit tests; the outbound layer's policy agent otherwise. */
  dispatcher?: Dispatcher;
  /** To the response headers, per attempt; default 30 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /**
   * How writeAnalysis writes: one transaction Bundle (default; atomic), or `sequential` conditional creates
   * in dependency order for EHR servers without transaction support (still idempotent: a re-run completes
   * a set a crash interrupted, but a reader may briefly see an Observation before its Provenance).
   */
  writeMode?: 'transaction' | 'sequential';
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Safe to repeat (GET/PUT/DELETE are; a POST only when conditional). Default: by method. */
  idempotent?: boolean;
}

export interface FhirResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

export type SearchParams = Record<string, string | number | readonly (string | number)[]> | URLSearchParams;

export interface SearchOptions {
  signal?: AbortSignal;
  /** Stop after this many pages (default 100): a guard against servers whose `next` never ends. */
  maxPages?: number;
}

const FHIR_JSON = 'application/fhir+json';
/** A FHIR answer larger than this is a broken server (a search page of hundreds of resources is a few MB). */
const MAX_FHIR_REPLY_BYTES = 64 * 1024 * 1024;
/** 409: servers such as HAPI answer a lost race between two conditional creates with a version conflict;
 * repeating the (idempotent) request then finds the winner's resource. */
const FHIR_RETRY_STATUSES: ReadonlySet<number> = new Set([...RETRYABLE_STATUSES, 409]);

/**
 * A small FHIR R4 REST client over the outbound layer (src/net/outbound.ts). Credentials: none, a static
 * bearer, or SMART Backend Services (one TokenProvider interface, as fhirclient puts one Client over its
 * adapters). Retries network errors, timeouts, 408, 409, 429 and 5xx with the one retry policy (Retry-After
 * honoured) for requests that are safe to repeat; a 401 with a refreshable token is retried once with a new
 * token. Failures are a FhirError naming the server, the request, the status and the server's
 * OperationOutcome text. Tokens are never logged; retries are logged with the server origin and status only.
 */
export class FhirClient {
  readonly baseUrl: string;
  readonly writeMode: 'transaction' | 'sequential';
  private readonly origin: string;
  private readonly net: OutboundClient;

  constructor(private readonly o: FhirClientOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, '');
    this.writeMode = o.writeMode ?? 'transaction';
    this.origin = new URL(this.baseUrl).origin;
    this.net = new OutboundClient({
      label: 'FHIR server',
      timeoutMs: o.timeoutMs ?? 30_000,
      ...(o.auth ? { auth: o.auth } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
      ...(o.allowInsecureHttp ? { allowInsecureHttp: true } : {}),
      ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
    });
  }

  /** `path` is relative to the base (`Observation?code=...`) or an absolute URL on the same server. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<FhirResponse<T>> {
    const url = this.resolve(path);
    const what = `${method} ${describePath(url, this.baseUrl)}`;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { accept: FHIR_JSON, ...opts.headers };
    if (body !== undefined) headers['content-type'] = FHIR_JSON;
    let res: Awaited<ReturnType<OutboundClient['fetch']>>;
    try {
      res = await this.net.fetch({
        method: method as 'GET',
        url,
        headers,
        ...(body !== undefined ? { body } : {}),
        retryable: opts.idempotent ?? method !== 'POST',
        retryStatuses: FHIR_RETRY_STATUSES,
        operation: what,
        ...(opts.signal ? { signal: opts.signal } : {}),
      }, MAX_FHIR_REPLY_BYTES);
    } catch (e) {
      if (e instanceof OutboundError && e.reason !== 'cancelled') {
        const why = e.reason === 'timeout' ? 'timed out' : e.message.replace(/\.$/, '');
        throw new FhirError(this.origin, undefined, what, undefined,
          `No answer from the FHIR server ${this.origin} to ${what} (${why}); ${hintForStatus(undefined)}.`, undefined, { cause: e });
      }
      throw e;
    }
    const text = res.bytes.toString('utf8');
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (res.status < 200 || res.status >= 300) {
      const diag = outcomeText(parsed);
      throw new FhirError(this.origin, res.status, what, diag,
        `The FHIR server ${this.origin} answered ${res.status} to ${what}${diag ? `: ${diag}` : ''}; ${hintForStatus(res.status)}.`,
        parsed && (parsed as { resourceType?: string }).resourceType === 'OperationOutcome' ? (parsed as never) : undefined);
    }
    if (text.length > 0 && parsed === undefined) {
      throw new FhirError(this.origin, res.status, what, undefined, `The FHIR server ${this.origin} answered ${what} with a body that is not JSON.`);
    }
    return { status: res.status, body: parsed as T, headers: toHeaders(res.headers) };
  }

  async read<T extends Resource>(resourceType: T['resourceType'], id: string, signal?: AbortSignal): Promise<T> {
    return (await this.request<T>('GET', `${resourceType}/${encodeURIComponent(id)}`, signal ? { signal } : {})).body;
  }

  /** Plain or conditional create; only a conditional create is retried. */
  async create<T extends FhirResource>(resource: T, opts: { ifNoneExist?: string; signal?: AbortSignal } = {}): Promise<T> {
    return (
      await this.request<T>('POST', resource.resourceType, {
        body: resource,
        ...(opts.ifNoneExist ? { headers: { 'if-none-exist': opts.ifNoneExist }, idempotent: true } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      })
    ).body;
  }

  /**
   * POST a transaction or batch Bundle. Retried only when every entry is safe to repeat (reads, PUT,
   * DELETE, conditional creates), which is what buildAnalysisBundle produces.
   */
  async transaction(bundle: Bundle, signal?: AbortSignal): Promise<Bundle> {
    const idempotent = (bundle.entry ?? []).every((e) => e.request && (e.request.method !== 'POST' || !!e.request.ifNoneExist));
    const res = await this.request<Bundle>('POST', '', { body: bundle, idempotent, ...(signal ? { signal } : {}) });
    return res.body;
  }

  /** Every page of a search, following `next` links (same server only: the token is never sent elsewhere). */
  async *searchPages(resourceType: string, params: SearchParams = {}, opts: SearchOptions = {}): AsyncGenerator<Bundle> {
    let url: string | undefined = `${resourceType}${queryString(params)}`;
    const maxPages = opts.maxPages ?? 100;
    for (let page = 0; url && page < maxPages; page++) {
      const bundle: Bundle = (await this.request<Bundle>('GET', url, opts.signal ? { signal: opts.signal } : {})).body;
      yield bundle;
      url = bundle.link?.find((l) => l.relation === 'next')?.url;
    }
  }

  /** All matching resources of `resourceType` (included resources of other types are left out). */
  async search<T extends Resource>(resourceType: T['resourceType'], params: SearchParams = {}, opts: SearchOptions = {}): Promise<T[]> {
    const out: T[] = [];
    for await (const bundle of this.searchPages(resourceType, params, opts)) {
      for (const e of bundle.entry ?? []) {
        if (e.resource?.resourceType === resourceType && e.search?.mode !== 'include') out.push(e.resource as T);
      }
    }
    return out;
  }

  private resolve(path: string): string {
    if (/^https?:\/\//i.test(path)) {
      const u = new URL(path);
      if (u.origin !== this.origin) {
        throw new FhirError(this.origin, undefined, `GET ${u.origin}`, undefined,
          `The FHIR server ${this.origin} sent a link to another server (${u.origin}); vbmd does not follow it with its credentials.`);
      }
      return path;
    }
    return path === '' ? this.baseUrl : `${this.baseUrl}/${path.replace(/^\/+/, '')}`;
  }
}

function toHeaders(h: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(h)) {
    for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) out.append(k, one);
  }
  return out;
}

function queryString(params: SearchParams): string {
  const p = params instanceof URLSearchParams ? new URLSearchParams(params) : new URLSearchParams();
  if (!(params instanceof URLSearchParams)) {
    for (const [k, v] of Object.entries(params)) {
      for (const one of Array.isArray(v) ? v : [v]) p.append(k, String(one));
    }
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** The request for messages: the path without the query (queries hold patient ids). */
function describePath(url: string, base: string): string {
  const u = new URL(url);
  const b = new URL(base);
  const rel = u.pathname.startsWith(b.pathname) ? u.pathname.slice(b.pathname.length) : u.pathname;
  return `${rel.replace(/^\/+/, '') || '(base: transaction/batch Bundle)'}${u.search ? '?...' : ''}`;
}
