import { Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { log } from '../util/log.js';
import { JOB_STATES, failureReason, isPermanentFailure } from './queue.js';
import type { AddOptions, JobHandler, JobInfo, JobQueue, JobState, JobWorker, RetryPolicy, WorkerOptions } from './queue.js';

/**
 * BullMQ on Redis (REDIS_URL): the same JobQueue contract, for workers on several machines. BullMQ's lock +
 * stalled-job check gives at-least-once delivery when a worker dies (lockDuration); attempts with exponential
 * backoff are BullMQ's own; permanent failures are thrown as UnrecoverableError so they fail at once.
 * Failed jobs are kept (with failedReason) so an operator sees them; completed ones for 7 days.
 */
export interface BullMqQueueOptions {
  redisUrl: string;
  name?: string;
  retry: RetryPolicy;
  /** Lock time of a running job; a dead worker's job is taken again after about this long (default 30 s). */
  lockDurationMs?: number;
  /** Key prefix (tests use a unique one per run). */
  prefix?: string;
}

export function redisConnection(url: string): Redis {
  // BullMQ workers need maxRetriesPerRequest: null (blocking commands must not time out).
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
}

export class BullMqJobQueue<T> implements JobQueue<T> {
  readonly kind = 'bullmq' as const;
  private readonly queue: Queue;
  private readonly connection: Redis;
  private readonly name: string;
  private readonly workers = new Set<JobWorker>();

  constructor(private readonly options: BullMqQueueOptions) {
    this.name = options.name ?? 'vbmd-analysis';
    this.connection = redisConnection(options.redisUrl);
    this.connection.on('error', (e: Error) => log.warn({ err: e.message }, 'Redis connection error (queue)'));
    this.queue = new Queue(this.name, { connection: this.connection, ...(options.prefix ? { prefix: options.prefix } : {}) });
  }

  async add(data: T, options: AddOptions = {}): Promise<{ id: string; created: boolean }> {
    if (options.jobId) {
      const existing = await this.queue.getJob(options.jobId);
      if (existing) {
        const state = await existing.getState();
        if (state === 'failed') await existing.retry('failed');
        return { id: options.jobId, created: false };
      }
    }
    const job = await this.queue.add('analyze', data, {
      ...(options.jobId ? { jobId: options.jobId } : {}),
      attempts: this.options.retry.attempts,
      backoff: { type: 'exponential', delay: this.options.retry.backoffMs },
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
    const state: JobState = raw === 'completed' || raw === 'failed' || raw === 'active' || raw === 'delayed' ? raw : 'waiting';
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
    out.failed = c.failed ?? 0;
    return out;
  }

  async list(state: JobState, limit: number): Promise<JobInfo<T>[]> {
    const jobs = (await this.queue.getJobs([state === 'waiting' ? 'wait' : state], 0, Math.max(0, limit - 1), false)) as Job<T>[];
    const out: JobInfo<T>[] = [];
    for (const j of jobs) {
      const info = j?.id ? await this.get(j.id) : undefined;
      if (info) out.push(info);
    }
    return out;
  }

  async ping(): Promise<void> {
    const pong = await this.connection.ping();
    if (pong !== 'PONG') throw new Error(`Redis answered ${pong} to PING`);
  }

  process(handler: JobHandler<T>, options: WorkerOptions): JobWorker {
    const connection = redisConnection(this.options.redisUrl);
    connection.on('error', (e: Error) => log.warn({ err: e.message }, 'Redis connection error (worker)'));
    const aborts = new Map<string, AbortController>();
    const worker = new Worker<T>(
      this.name,
      async (job: Job<T>) => {
        const abort = new AbortController();
        aborts.set(job.id!, abort);
        try {
          return await handler(job.data, { id: job.id!, attempt: job.attemptsMade + 1, signal: abort.signal });
        } catch (e) {
          log.warn({ jobId: job.id, attempt: job.attemptsMade + 1, err: failureReason(e) }, 'job attempt failed');
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
        // A job whose worker died is taken again this many times before it fails as stalled.
        maxStalledCount: 2,
        ...(this.options.prefix ? { prefix: this.options.prefix } : {}),
      },
    );
    worker.on('error', (e) => log.warn({ err: e.message }, 'BullMQ worker error'));
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
