import type { EnvConfig } from '../config.js';
import { isVbmdError } from '../util/errors.js';
import type { RetryPolicy } from '../util/retry-policy.js';

/**
 * The job queue behind the pipeline: one interface, two adapters (DESIGN.md "The house"): embedded durable
 * SQLite (`SqliteJobQueue`, the default: a restart loses no job) and BullMQ on Redis (`BullMqJobQueue`, when
 * REDIS_URL is set, so workers scale out over machines). Both give at-least-once delivery (a job whose worker
 * dies is handed out again once its lease/lock expires; FHIR writes are idempotent, so a repeat never
 * duplicates), retries with exponential backoff, a visible `failed` state with the reason, bounded
 * concurrency and graceful shutdown.
 */
/**
 * `needs-review`: the job stopped on purpose and wrote nothing, because a person must decide (the study's
 * patient is not the order's, two orders claim one accession); its reason says why, without PHI. Adding the
 * job again (after fixing the order or the study) runs it afresh, as for `failed`.
 */
export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'needs-review';
export const JOB_STATES: readonly JobState[] = ['waiting', 'delayed', 'active', 'completed', 'failed', 'needs-review'];
/** The states `purge` empties: finished jobs only (a waiting, delayed or running job is never dropped that way). */
export type FinishedJobState = Extract<JobState, 'completed' | 'failed' | 'needs-review'>;

export interface JobInfo<T> {
  id: string;
  data: T;
  state: JobState;
  /** Attempts started so far. */
  attempts: number;
  /** Why the last attempt failed (the final reason when `failed`; why it is held when `needs-review`). */
  failedReason?: string;
  result?: unknown;
  createdAt: string;
  finishedAt?: string;
}

export interface JobContext {
  id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborted when the worker is forced to stop; the job then runs again elsewhere. */
  signal: AbortSignal;
  /** What an earlier attempt of this job saved (e.g. its finished analysis), so a retry need not redo it
   * (both queue adapters provide it). */
  checkpoint?: JobCheckpoint;
}

/** Per-job saved state, kept with the job (same store) and dropped when the job completes. */
export interface JobCheckpoint {
  load(): Promise<unknown>;
  save(value: unknown): Promise<void>;
}

export type JobHandler<T> = (data: T, ctx: JobContext) => Promise<unknown>;

/**
 * `interactive` (default): a study someone is waiting for (an order, an API call). `backfill`: the archive,
 * taken only when no interactive job waits, so a backfill never delays an oncologist's card.
 */
export type JobPriority = 'interactive' | 'backfill';

export interface AddOptions {
  /** Deduplication key: adding an id that exists does nothing (a failed or needs-review one is run again). */
  jobId?: string;
  priority?: JobPriority;
}

export interface WorkerOptions {
  concurrency: number;
  /** How long close() waits for running jobs before aborting them (they are retried later). */
  drainTimeoutMs?: number;
}

export interface JobWorker {
  /** Stops taking jobs, waits for running ones (up to drainTimeoutMs), then returns. */
  close(): Promise<void>;
}

/**
 * How a whole failed job (an analysis: retrieval, measurement, FHIR write) is run again: the one RetryPolicy
 * (src/util/retry-policy.ts), from JOB_ATTEMPTS (runs in all, the first included, so retries = JOB_ATTEMPTS - 1)
 * and JOB_BACKOFF_MS (the first retry's wait, doubling each time). No maxDelayMs: BullMQ's exponential backoff,
 * which runs the retries on Redis, has no cap, and the embedded queue waits as it does. The run count is
 * stored with each job (embedded: its max_attempts column; BullMQ: the job's own options), so a job keeps
 * the count it was added with across restarts and setting changes.
 */
export function jobRetryPolicy(cfg: Pick<EnvConfig, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>): RetryPolicy {
  return { retries: cfg.JOB_ATTEMPTS - 1, baseDelayMs: cfg.JOB_BACKOFF_MS };
}

export interface JobQueue<T> {
  readonly kind: 'embedded' | 'bullmq';
  add(data: T, options?: AddOptions): Promise<{ id: string; created: boolean }>;
  get(id: string): Promise<JobInfo<T> | undefined>;
  counts(): Promise<Record<JobState, number>>;
  /** Jobs in one state, newest first (operators: what failed and why). */
  list(state: JobState, limit: number): Promise<JobInfo<T>[]>;
  /**
   * Deletes this queue's jobs in the given finished states and returns how many went. Their ids are free
   * again: adding one creates a new job (the sandbox, whose FHIR store starts empty, drops its completed jobs
   * at start so the demo studies are analysed and written again).
   */
  purge(states: readonly FinishedJobState[]): Promise<number>;
  /** Resolves when the queue's store answers (readiness). */
  ping(): Promise<void>;
  process(handler: JobHandler<T>, options: WorkerOptions): JobWorker;
  close(): Promise<void>;
}

/**
 * Failures that will not go away by retrying (bad input, no CT series, no spine in view, unsupported
 * format, configuration): fail the job at once with the reason. Remote/network errors are retried.
 */
export function isPermanentFailure(e: unknown): boolean {
  return isVbmdError(e) && ['bad-input', 'unsupported', 'no-series', 'no-spine', 'config', 'needs-review'].includes(e.code);
}

export function needsReview(e: unknown): boolean {
  return isVbmdError(e) && e.code === 'needs-review';
}

export function failureReason(e: unknown): string {
  if (isVbmdError(e)) return e.message;
  return `Internal error: ${e instanceof Error ? e.message : String(e)}`;
}
