/**
 * The one retry policy of every outbound call (FHIR, token endpoints, DICOMweb, cohort sources): exponential
 * backoff with full jitter (AWS architecture blog "Exponential Backoff And Jitter", 2015): the wait before
 * attempt n+1 is uniform in [0, min(cap, base * 2^n)], so many workers retrying after one outage do not hit
 * the server in lockstep. A server's Retry-After wins when present, up to `maxRetryAfterMs`. The job queue's
 * JobRetryPolicy (src/jobs/queue.ts) is the other level: it runs a whole failed job again, minutes later.
 */
export interface RequestRetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After honoured; a longer one ends the retries (the caller's job queue retries later). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RequestRetryPolicy = { retries: 4, baseDelayMs: 300, maxDelayMs: 8_000, maxRetryAfterMs: 30_000 };

export function retryPolicy(overrides: Partial<RequestRetryPolicy> = {}, base: RequestRetryPolicy = DEFAULT_RETRY): RequestRetryPolicy {
  const out = { ...base };
  for (const k of Object.keys(out) as (keyof RequestRetryPolicy)[]) {
    const v = overrides[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export function backoffDelayMs(attempt: number, policy: RequestRetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function retryAfterMs(header: string | readonly string[] | null | undefined, now: number = Date.now()): number | undefined {
  const first = Array.isArray(header) ? header[0] : header;
  if (typeof first !== 'string') return undefined;
  const s = first.trim();
  if (s === '') return undefined;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Statuses a repeat may cure: timeouts, rate limits, a failing or overloaded server or gateway. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Waits, or rejects as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
