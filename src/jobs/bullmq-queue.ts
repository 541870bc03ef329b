import { Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { VbmdError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import { JOB_STATES, failureReason, isPermanentFailure, needsReview } from './queue.js';
import type { AddOptions, FinishedJobState, JobCheckpoint, JobHandler, JobInfo, JobQueue, JobState, JobWorker, WorkerOptions } from './queue.js';

/**
 * BullMQ on Redis (REDIS_URL): the same JobQueue contract, for workers on several machines. BullMQ's lock +
 * stalled-job check gives at-least-once delivery when a worker dies (lockDuration); attempts with exponential
 * backoff are BullMQ's own; permanent failures are thrown as UnrecoverableError so they fail at once.
 * Failed jobs are kept (with failedReason) so an operator sees them; completed ones for 7 days.
 */
export interface BullMqQueueOptions {
  redisUrl: string;
  name?: string;
  /** Whole-job retries (jobRetryPolicy in queue.ts), run by BullMQ (bullMqRetryOptions). */
  retry: RetryPolicy;
  /** Lock time of a running job; a dead worker's job is taken again after about this long (default 30 s). */
  lockDurationMs?: number;
  /** Key prefix (tests use a unique one per run). */
  prefix?: string;
  /**
   * Fail Redis commands fast (boundedRedisConnection) instead of waiting for Redis (default true): for
   * processes that answer HTTP. A worker-only process waits instead: its engine blocks the event loop for
   * seconds, which a 500 ms command timer would count as Redis being slow.
   */
  boundedWaits?: boolean;
}

/** BullMQ priority of archive backfill jobs (any value > 0 runs after the unprioritized interactive jobs). */
const BACKFILL_PRIORITY = 10;

/** How long a non-blocking Redis command may take before it fails (a hook has about a second in all). */
export const REDIS_COMMAND_TIMEOUT_MS = 500;

/**
 * A connection for a BullMQ Worker: blocking commands wait as long as they need (BullMQ requires
 * maxRetriesPerRequest: null) and commands queue while Redis is away.
 */
export function redisConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
}

/**
 * A connection for request-time work (adding and reading jobs, watches, the jti replay set): a command fails
 * after REDIS_COMMAND_TIMEOUT_MS, and at once while Redis is disconnected, instead of waiting for it to come
 * back, so a hook or an API call answers an error in time rather than hanging (BullMQ's advice for a Queue
 * used by an HTTP endpoint: enableOfflineQueue false).
 */
export function boundedRedisConnection(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 5000,
    enableReadyCheck: true,
  });
}

/** Resolves when the connection is ready (commands accepted), or rejects after `timeoutMs`. */
export function redisReady(redis: Redis, what: string, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new VbmdError('config', `Redis (${what}) did not answer within ${timeoutMs / 1000} s: check REDIS_URL and that Redis is running.`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(t);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/**
 * One warn line per source per interval while Redis is away, with how many were left out, instead of a
 * line (or a stack) per reconnect attempt and connection.
 */
export function throttledRedisWarning(source: string, everyMs = 30_000): (e: Error) => void {
  let last = 0;
  let skipped = 0;
  return (e) => {
    const now = Date.now();
    if (now - last < everyMs) {
      skipped++;
      return;
    }
    log.warn({ source, err: e.message, ...(skipped ? { suppressed: skipped } : {}) }, 'Redis connection error');
    last = now;
    skipped = 0;
  };
}

/**
 * The one RetryPolicy in BullMQ's terms: BullMQ counts runs in all (`attempts` = retries + 1) and waits
 * delay * 2^(n-1) before run n + 1, which is backoffDelayMs's nominal wait (without its jitter). BullMQ's
 * exponential backoff has no cap, so a policy with a maxDelayMs is refused rather than run uncapped.
 */
export function bullMqRetryOptions(policy: RetryPolicy): { attempts: number; backoff: { type: 'exponential'; delay: number } } {
  if (policy.maxDelayMs !== undefined && Number.isFinite(policy.maxDelayMs)) {
    throw new VbmdError('config', `The job queue on Redis cannot cap its retry wait (maxDelayMs ${policy.maxDelayMs}): BullMQ's exponential backoff has no cap.`);
  }
  return { attempts: policy.retries + 1, backoff: { type: 'exponential', delay: policy.baseDelayMs } };
}

export class BullMqJobQueue<T> implements JobQueue<T> {
  readonly kind = 'bullmq' as const;
  private readonly queue: Queue;
  private readonly connection: Redis;
  private readonly name: string;
  private readonly workers = new Set<JobWorker>();

  constructor(private readonly options: BullMqQueueOptions) {
    bullMqRetryOptions(options.retry); // a policy BullMQ cannot run fails here, not at the first add
    this.name = options.name ?? 'vbmd-analysis';
    this.connection = options.boundedWaits === false ? redisConnection(options.redisUrl) : boundedRedisConnection(options.redisUrl);
    this.connection.on('error', throttledRedisWarning('queue connection'));
    this.queue = new Queue(this.name, { connection: this.connection, ...(options.prefix ? { prefix: options.prefix } : {}) });
    // Without a listener an EventEmitter 'error' is thrown: a stack trace on stderr per failed command.
    this.queue.on('error', throttledRedisWarning('queue'));
  }

  /** Resolves once Redis accepts commands (start-up waits for it; afterwards calls fail fast). */
  ready(timeoutMs?: number): Promise<void> {
    return redisReady(this.connection, 'queue', timeoutMs);
  }

  /**
   * BullMQ has no state of our own: a held job is a failed one (UnrecoverableError, so it is not retried)
   * whose id is also in this sorted set (scored by time), and is reported as `needs-review`.
   */
  private get reviewKey(): string {
    return `${this.options.prefix ?? 'bull'}:${this.name}:vbmd:needs-review`;
  }

  private get checkpointKey(): string {
    return `${this.options.prefix ?? 'bull'}:${this.name}:vbmd:checkpoints`;
  }

  private checkpoint(id: string): JobCheckpoint {
    return {
      load: async () => {
        const v = await this.connection.hget(this.checkpointKey, id);
        return v ? (JSON.parse(v) as unknown) : undefined;
      },
      save: async (value) => void (await this.connection.hset(this.checkpointKey, id, JSON.stringify(value))),
    };
  }

  async add(data: T, options: AddOptions = {}): Promise<{ id: string; created: boolean }> {
    if (options.jobId) {
      const existing = await this.queue.getJob(options.jobId);
      if (existing) {
        const state = await existing.getState();
        if (state === 'failed') {
          // A failed or held job added again runs afresh with the new data (as on the embedded queue).
          await existing.updateData(data);
          await this.connection.zrem(this.reviewKey, options.jobId);
          await existing.retry('failed');
        }
        return { id: options.jobId, created: false };
      }
    }
    const job = await this.queue.add('analyze', data, {
      ...(options.jobId ? { jobId: options.jobId } : {}),
      // BullMQ takes jobs without a priority (its wait list) before any prioritized one: interactive jobs
      // get none, backfill jobs one, so an order never waits behind the archive.
      ...(options.priority === 'backfill' ? { priority: BACKFILL_PRIORITY } : {}),
      ...bullMqRetryOptions(this.options.retry),
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: false,
    });
    return { id: job.id!, created: true };
  }

  async get(id: string): Promise<JobInfo<T> | undefined> {
    // State first, then the job hash: read the other way round, a job finishing in between shows as
    // completed without its result.
    const raw = await this.queue.getJobState(id);
    const job = (await this.queue.getJob(id)) as Job<T> | undefined;
    if (!job) return undefined;
    const held = raw === 'failed' && (await this.connection.zscore(this.reviewKey, id)) !== null;
    const state: JobState = held ? 'needs-review' : raw === 'completed' || raw === 'failed' || raw === 'active' || raw === 'delayed' ? raw : 'waiting';
    return {
      id,
      data: job.data,
      state,
      attempts: job.attemptsStarted ?? job.attemptsMade,
      ...(job.failedReason ? { failedReason: job.failedReason } : {}),
      ...(job.returnvalue !== undefined && job.returnvalue !== null ? { result: job.returnvalue as unknown } : {}),
      createdAt: new Date(job.timestamp).toISOString(),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
    };
  }

  async counts(): Promise<Record<JobState, number>> {
    const c = await this.queue.getJobCounts('waiting', 'prioritized', 'waiting-children', 'delayed', 'active', 'completed', 'failed');
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    out.waiting = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c['waiting-children'] ?? 0);
    out.delayed = c.delayed ?? 0;
    out.active = c.active ?? 0;
    out.completed = c.completed ?? 0;
    out['needs-review'] = await this.connection.zcard(this.reviewKey);
    out.failed = Math.max(0, (c.failed ?? 0) - out['needs-review']);
    return out;
  }

  async list(state: JobState, limit: number): Promise<JobInfo<T>[]> {
    const ids =
      state === 'needs-review'
        ? await this.connection.zrevrange(this.reviewKey, 0, Math.max(0, limit - 1))
        : ((await this.queue.getJobs(state === 'waiting' ? ['wait', 'prioritized'] : [state], 0, Math.max(0, limit - 1) + (state === 'failed' ? await this.connection.zcard(this.reviewKey) : 0), false)) as Job<T>[])
            .map((j) => j?.id)
            .filter((id): id is string => id !== undefined);
    const out: JobInfo<T>[] = [];
    for (const id of ids) {
      const info = await this.get(id);
      if (info && info.state === state && out.length < limit) out.push(info);
    }
    return out;
  }

  async purge(states: readonly FinishedJobState[]): Promise<number> {
    let n = 0;
    // 0 grace, 0 limit: every completed job, however recent.
    if (states.includes('completed')) n += (await this.queue.clean(0, 0, 'completed')).length;
    const failed = states.includes('failed');
    const held = states.includes('needs-review');
    if (!failed && !held) return n;
    // Both are BullMQ failed jobs; the held ones are also in the review set.
    const review = new Set(await this.connection.zrange(this.reviewKey, '0', '-1'));
    for (const job of await this.queue.getJobs(['failed'], 0, -1)) {
      const id = job?.id;
      if (id === undefined || (review.has(id) ? !held : !failed)) continue;
      n += await this.queue.remove(id);
      await this.connection.zrem(this.reviewKey, id);
      await this.connection.hdel(this.checkpointKey, id);
    }
    return n;
  }

  async ping(): Promise<void> {
    // With the offline queue off, a command while ioredis reconnects fails at once with its own words
    // ("Stream isn't writeable..."), which /readyz would show as an internal error.
    if (this.connection.status !== 'ready') {
      throw new VbmdError('remote', `The queue's Redis connection is ${this.connection.status} (Redis restarting or unreachable); it reconnects by itself.`);
    }
    const pong = await this.connection.ping();
    if (pong !== 'PONG') throw new Error(`Redis answered ${pong} to PING`);
  }

  process(handler: JobHandler<T>, options: WorkerOptions): JobWorker {
    const connection = redisConnection(this.options.redisUrl);
    connection.on('error', throttledRedisWarning('worker connection'));
    const aborts = new Map<string, AbortController>();
    const worker = new Worker<T>(
      this.name,
      async (job: Job<T>) => {
        const abort = new AbortController();
        aborts.set(job.id!, abort);
        // attemptsStarted counts every run, a re-run after a worker died included (attemptsMade only failures).
        const attempt = Math.max(1, job.attemptsStarted);
        try {
          const result = await handler(job.data, { id: job.id!, attempt, signal: abort.signal, checkpoint: this.checkpoint(job.id!) });
          await this.connection.hdel(this.checkpointKey, job.id!).catch(() => undefined);
          return result;
        } catch (e) {
          log.warn({ jobId: job.id, attempt, err: failureReason(e) }, 'job attempt failed');
          if (needsReview(e)) await this.connection.zadd(this.reviewKey, Date.now(), job.id!);
          if (isPermanentFailure(e)) throw new UnrecoverableError(failureReason(e));
          throw new Error(failureReason(e));
        } finally {
          aborts.delete(job.id!);
        }
      },
      {
        connection,
        concurrency: options.concurrency,
        lockDuration: this.options.lockDurationMs ?? 30_000,
        stalledInterval: Math.max(1000, Math.floor((this.options.lockDurationMs ?? 30_000) / 2)),
        // A job whose worker died is taken again until it has had JOB_ATTEMPTS runs, as on the embedded queue
        // (a fixed 2 failed a job for good after three worker deaths whatever JOB_ATTEMPTS said).
        maxStalledCount: Math.max(0, this.options.retry.retries),
        ...(this.options.prefix ? { prefix: this.options.prefix } : {}),
      },
    );
    worker.on('error', throttledRedisWarning('worker'));
    worker.on('stalled', (jobId: string) => log.warn({ jobId }, 'job stalled (its worker stopped or lost its lock); it runs again'));
    worker.on('failed', (job: Job<T> | undefined, err: Error) => {
      // Each failed attempt is logged by the processor; this is the final one (or a stall past the limit).
      if (!job?.finishedOn) return;
      void this.connection.zscore(this.reviewKey, job.id!).then(
        (held) => log[held === null ? 'error' : 'warn']({ jobId: job.id, attempts: job.attemptsStarted, reason: err.message }, held === null ? 'job failed for good' : 'job held for review'),
        () => log.error({ jobId: job.id, attempts: job.attemptsStarted, reason: err.message }, 'job failed for good'),
      );
    });
    const handle: JobWorker = {
      close: async () => {
        const timeout = this.options.lockDurationMs ?? 30_000;
        let t: NodeJS.Timeout | undefined;
        const graceful = worker.close().then(() => false);
        const timedOut = await Promise.race([graceful, new Promise<boolean>((r) => (t = setTimeout(() => r(true), options.drainTimeoutMs ?? timeout)))]);
        clearTimeout(t);
        if (timedOut) {
          for (const a of aborts.values()) a.abort(new Error('worker stopping'));
          await worker.close(true);
        }
        await connection.quit().catch(() => undefined);
        this.workers.delete(handle);
      },
    };
    this.workers.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    for (const w of [...this.workers]) await w.close();
    await this.queue.close();
    await this.connection.quit().catch(() => undefined);
  }
}
