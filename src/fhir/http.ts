import { VbmdError } from '../util/errors.js';
import type { RetryPolicy } from './retry.js';
import { backoffDelayMs, isRetryableStatus, retryAfterMs, sleep } from './retry.js';

export type FetchFn = typeof fetch;

export interface RetryingFetchOptions {
  fetch: FetchFn;
  /** Per attempt. */
  timeoutMs: number;
  retry: RetryPolicy;
  signal?: AbortSignal;
  /** False for requests that must not be repeated (a POST that is not conditional): no retry at all. */
  retryable: boolean;
  onRetry?: (info: { attempt: number; status?: number; delayMs: number; error?: string }) => void;
}

/** Thrown when no response came back (network failure or per-attempt timeout) after the last attempt. */
export class NoResponseError extends Error {
  constructor(readonly timedOut: boolean, options?: { cause?: unknown }) {
    super(timedOut ? 'timed out' : 'network error', options);
  }
}

/**
 * fetch with per-attempt timeout, caller cancellation, and retries on network errors, timeouts, 408, 429
 * and 5xx (Retry-After honoured). Returns the last Response, which may be an error status; the caller turns
 * it into a FhirError with the server's OperationOutcome.
 */
export async function fetchWithRetry(url: string, init: RequestInit, o: RetryingFetchOptions): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    if (o.signal?.aborted) throw cancelled(url, o.signal.reason);
    const timeout = AbortSignal.timeout(o.timeoutMs);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    let res: Response | undefined;
    let failure: unknown;
    try {
      res = await o.fetch(url, { ...init, signal });
    } catch (e) {
      if (o.signal?.aborted) throw cancelled(url, o.signal.reason);
      failure = e;
    }
    const mayRetry = o.retryable && attempt < o.retry.retries;
    if (res && (!isRetryableStatus(res.status) || !mayRetry)) return res;
    if (!res && !mayRetry) throw new NoResponseError(timeout.aborted, { cause: failure });
    let delayMs = backoffDelayMs(attempt, o.retry);
    if (res) {
      const ra = retryAfterMs(res.headers.get('retry-after'));
      if (ra !== undefined) {
        if (ra > o.retry.maxRetryAfterMs) return res;
        delayMs = ra;
      }
      await res.body?.cancel().catch(() => undefined);
    }
    o.onRetry?.({
      attempt: attempt + 1,
      ...(res ? { status: res.status } : { error: timeout.aborted ? 'timeout' : errorName(failure) }),
      delayMs,
    });
    try {
      await sleep(delayMs, o.signal);
    } catch (e) {
      throw cancelled(url, e);
    }
  }
}

function cancelled(url: string, reason: unknown): VbmdError {
  return new VbmdError('cancelled', `The request to ${new URL(url).origin} was cancelled.`, {}, { cause: reason });
}

function errorName(e: unknown): string {
  const cause = (e as { cause?: { code?: string } })?.cause?.code;
  return cause ?? (e instanceof Error ? e.name : 'error');
}
