import type { RetryPolicy } from '../util/retry-policy.js';

/**
 * The outbound layer's retries (FHIR, token endpoints, DICOMweb, cohort sources) under the one RetryPolicy
 * (src/util/retry-policy.ts, with its one backoffDelayMs): the defaults, Retry-After, and which statuses
 * are worth a repeat. A server's Retry-After wins over the backoff when present, up to `maxRetryAfterMs`.
 */
export const DEFAULT_RETRY: Required<RetryPolicy> = { retries: 4, baseDelayMs: 300, maxDelayMs: 8_000, maxRetryAfterMs: 30_000 };

/** `base` with the fields `overrides` gives (an undefined one keeps the base's). */
export function retryPolicy(overrides: Partial<RetryPolicy> = {}, base: Required<RetryPolicy> = DEFAULT_RETRY): Required<RetryPolicy> {
  const out = { ...base };
  for (const k of Object.keys(out) as (keyof RetryPolicy)[]) {
    const v = overrides[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
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
