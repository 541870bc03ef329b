/**
 * The one retry policy type, for both levels that repeat work after a failure:
 * - one outbound HTTP request within an attempt (src/net/outbound.ts: FHIR, token endpoints, DICOMweb, cohort
 *   sources): sub-second to seconds, capped, a server's Retry-After honoured up to `maxRetryAfterMs`;
 * - one whole job (src/jobs: an analysis run again after it failed, JOB_ATTEMPTS / JOB_BACKOFF_MS): minutes
 *   apart, stored with each job on the embedded queue (as its total run count) and run by BullMQ's own
 *   exponential backoff on Redis (mapped in src/jobs/bullmq-queue.ts). A job retry comes after a request's
 *   retries gave up.
 * It lives here (src/util) so that src/net and src/jobs both import it without depending on each other.
 */
export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry; the number of runs in all is retries + 1). */
  retries: number;
  /** The wait before the first retry; each later one doubles it. */
  baseDelayMs: number;
  /** Longest wait between two attempts; none when absent (BullMQ's exponential backoff has no cap). */
  maxDelayMs?: number;
  /** Longest Retry-After honoured (HTTP only); a longer one ends the retries (the job queue retries later). */
  maxRetryAfterMs?: number;
}

/**
 * The wait before retry number `attempt + 1` (attempt 0 = the first retry): base * 2^attempt, capped at
 * maxDelayMs, times a jitter uniform in [0.8, 1.2), and never above maxDelayMs. `random` is injectable for tests.
 *
 * Why +-20% and not "full jitter" (uniform in [0, ceiling], which the request layer used before): every
 * user of this wait needs it to be a real wait. A whole-job retry that comes at once wastes one of a few
 * JOB_ATTEMPTS on a PACS or FHIR server that is still down; a worker process that keeps dying must not be
 * restarted in a tight loop; a 503 without Retry-After asks for a pause. Centred on the nominal wait, the
 * embedded queue also waits as long on average as BullMQ's exponential backoff (no jitter) for the same
 * JOB_BACKOFF_MS. The 40% spread still keeps workers that failed together from retrying in lockstep, and a
 * server's Retry-After, when given, wins over this wait in the request layer.
 */
export function backoffDelayMs(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const cap = policy.maxDelayMs ?? Number.POSITIVE_INFINITY;
  const ceiling = Math.min(cap, policy.baseDelayMs * 2 ** attempt);
  return Math.round(Math.min(cap, ceiling * (0.8 + 0.4 * random())));
}
