import type { Bundle, FhirResource, Resource } from 'fhir/r4.js';
import { log } from '../util/log.js';
import type { AccessTokenProvider } from './auth.js';
import { FhirError, hintForStatus, outcomeText } from './fhir-error.js';
import type { FetchFn } from './http.js';
import { fetchWithRetry, NoResponseError } from './http.js';
import type { RetryPolicy } from './retry.js';
import { DEFAULT_RETRY } from './retry.js';

export interface FhirClientOptions {
  /** FHIR R4 base, e.g. `https://ehr.example.org/fhir/R4`. */
  baseUrl: string;
  /** No provider = no Authorization header (the sandbox). */
  auth?: AccessTokenProvider;
  fetch?: FetchFn;
  /** Per attempt; default 30 s. */
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

/**
 * A small FHIR R4 REST client over fetch. Credentials: none, a static bearer, or SMART Backend Services
 * (one AccessTokenProvider interface, as fhirclient puts one Client over its adapters). Retries network
 * errors, timeouts, 429 and 5xx with exponential backoff and jitter (Retry-After honoured) for requests
 * that are safe to repeat; a 401 with a refreshable token is retried once with a new token. Failures are a
 * FhirError naming the server, the request, the status and the server's OperationOutcome text.
 * Tokens are never logged; retries are logged with the server origin and status only.
 */
export class FhirClient {
  readonly baseUrl: string;
  readonly writeMode: 'transaction' | 'sequential';
  private readonly origin: string;
  private readonly fetchFn: FetchFn;
  private readonly retry: RetryPolicy;

  constructor(private readonly o: FhirClientOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, '');
    this.writeMode = o.writeMode ?? 'transaction';
    this.origin = new URL(this.baseUrl).origin;
    this.fetchFn = o.fetch ?? fetch;
    this.retry = { ...DEFAULT_RETRY, ...o.retry };
  }

  /** `path` is relative to the base (`Observation?code=...`) or an absolute URL on the same server. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<FhirResponse<T>> {
    const url = this.resolve(path);
    const what = `${method} ${describePath(url, this.baseUrl)}`;
    const idempotent = opts.idempotent ?? method !== 'POST';
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    let retriedAuth = false;
    for (;;) {
      const headers: Record<string, string> = { accept: FHIR_JSON, ...opts.headers };
      if (body !== undefined) headers['content-type'] = FHIR_JSON;
      if (this.o.auth) headers.authorization = `Bearer ${await this.o.auth.token(opts.signal)}`;
      let res: Response;
      try {
        res = await fetchWithRetry(url, { method, headers, ...(body !== undefined ? { body } : {}) }, {
          fetch: this.fetchFn,
          timeoutMs: this.o.timeoutMs ?? 30_000,
          retry: this.retry,
          retryable: idempotent,
          ...(opts.signal ? { signal: opts.signal } : {}),
          onRetry: (i) => log.warn({ server: this.origin, request: what, ...i }, 'FHIR request failed, retrying'),
        });
      } catch (e) {
        if (e instanceof NoResponseError) {
          throw new FhirError(this.origin, undefined, what, undefined,
            `No answer from the FHIR server ${this.origin} to ${what} (${e.message}); ${hintForStatus(undefined)}.`, undefined, { cause: e });
        }
        throw e;
      }
      if (res.status === 401 && this.o.auth && !retriedAuth) {
        // An expired or revoked token: get a new one once.
        retriedAuth = true;
        this.o.auth.invalidate();
        await res.body?.cancel().catch(() => undefined);
        continue;
      }
      const text = await res.text();
      let parsed: unknown = undefined;
      if (text.length > 0) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
      }
      if (!res.ok) {
        const diag = outcomeText(parsed);
        throw new FhirError(this.origin, res.status, what, diag,
          `The FHIR server ${this.origin} answered ${res.status} to ${what}${diag ? `: ${diag}` : ''}; ${hintForStatus(res.status)}.`,
          parsed && (parsed as { resourceType?: string }).resourceType === 'OperationOutcome' ? (parsed as never) : undefined);
      }
      if (text.length > 0 && parsed === undefined) {
        throw new FhirError(this.origin, res.status, what, undefined, `The FHIR server ${this.origin} answered ${what} with a body that is not JSON.`);
      }
      return { status: res.status, body: parsed as T, headers: res.headers };
    }
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
