import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { log } from '../util/log.js';
import { backoffDelayMs } from '../util/retry-policy.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import { JOB_STATES, failureReason, isPermanentFailure, needsReview } from './queue.js';
import type { AddOptions, FinishedJobState, JobCheckpoint, JobHandler, JobInfo, JobPriority, JobQueue, JobState, JobWorker, WorkerOptions } from './queue.js';
import { migrateEmbeddedStore } from './sqlite-schema.js';

/**
 * The embedded durable queue: one SQLite table (WAL), shared safely by several processes on one machine
 * (the web process adds, a worker process takes). A worker takes a job by a lease (`lease_until`) that it
 * renews while running; if the worker dies the lease runs out and the job is taken again (at-least-once).
 * Every claim is one IMMEDIATE transaction, so two workers never take the same job at once.
 */
export interface SqliteQueueOptions {
  /** Database file (created with its folder's permissions), or an open better-sqlite3 Database. */
  db: string | Db;
  name?: string;
  /** Whole-job retries (jobRetryPolicy in queue.ts); a job keeps retries + 1 as its max_attempts. */
  retry: RetryPolicy;
  /** How long a taken job stays taken without a renewal (default 30 s; renewed every third of it). */
  leaseMs?: number;
  /** How often an idle worker looks for jobs added by other processes (default 250 ms). */
  pollMs?: number;
}

interface JobRow {
  id: string;
  queue: string;
  data: string;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: number;
  lease_until: number | null;
  lease_owner: string | null;
  failed_reason: string | null;
  result: string | null;
  created_at: number;
  finished_at: number | null;
}

export function openSqlite(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  migrateEmbeddedStore(db, path);
  return db;
}

/** Lower runs first; interactive 0 so a job added before priorities existed stays ahead of the backfill. */
const PRIORITY: Record<JobPriority, number> = { interactive: 0, backfill: 10 };

export class SqliteJobQueue<T> implements JobQueue<T> {
  readonly kind = 'embedded' as const;
  private readonly db: Db;
  private readonly ownsDb: boolean;
  private readonly name: string;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly workers = new Set<JobWorker>();
  private wake: (() => void) | undefined;

  constructor(private readonly options: SqliteQueueOptions) {
    this.ownsDb = typeof options.db === 'string';
    this.db = typeof options.db === 'string' ? openSqlite(options.db) : options.db;
    this.name = options.name ?? 'analysis';
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollMs = options.pollMs ?? 250;
    // The table and its later columns (checkpoint, priority) come from the store's migrations.
    migrateEmbeddedStore(this.db);
  }

  async add(data: T, options: AddOptions = {}): Promise<{ id: string; created: boolean }> {
    const id = options.jobId ?? randomUUID();
    const now = Date.now();
    const priority = PRIORITY[options.priority ?? 'interactive'];
    const created = this.db
      .prepare(
        `INSERT OR IGNORE INTO jobs (id, queue, data, state, attempts, max_attempts, run_at, created_at, priority)
         VALUES (?, ?, ?, 'waiting', 0, ?, ?, ?, ?)`,
      )
      .run(id, this.name, JSON.stringify(data), this.options.retry.retries + 1, now, now, priority).changes === 1;
    if (!created) {
      // A failed or held job added again (e.g. after the PACS or the order was fixed) gets a fresh set of attempts.
      this.db
        .prepare(
          `UPDATE jobs SET state = 'waiting', attempts = 0, run_at = ?, failed_reason = NULL, finished_at = NULL, data = ?, priority = ? WHERE queue = ? AND id = ? AND state IN ('failed', 'needs-review')`,
        )
        .run(now, JSON.stringify(data), priority, this.name, id);
    }
    this.wake?.();
    return { id, created };
  }

  async get(id: string): Promise<JobInfo<T> | undefined> {
    const r = this.db.prepare('SELECT * FROM jobs WHERE queue = ? AND id = ?').get(this.name, id) as JobRow | undefined;
    return r ? this.info(r) : undefined;
  }

  private info(r: JobRow): JobInfo<T> {
    // A job whose lease ran out is not running any more, whatever the row says.
    const state: JobState = r.state === 'active' && (r.lease_until ?? 0) < Date.now() ? 'waiting' : r.state;
    return {
      id: r.id,
      data: JSON.parse(r.data) as T,
      state,
      attempts: r.attempts,
      ...(r.failed_reason ? { failedReason: r.failed_reason } : {}),
      ...(r.result ? { result: JSON.parse(r.result) as unknown } : {}),
      createdAt: new Date(r.created_at).toISOString(),
      ...(r.finished_at ? { finishedAt: new Date(r.finished_at).toISOString() } : {}),
    };
  }

  async counts(): Promise<Record<JobState, number>> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM jobs WHERE queue = ? GROUP BY state').all(this.name) as { state: JobState; n: number }[];
    for (const r of rows) out[r.state] = r.n;
    return out;
  }

  async list(state: JobState, limit: number): Promise<JobInfo<T>[]> {
    const rows = this.db
      .prepare('SELECT * FROM jobs WHERE queue = ? AND state = ? ORDER BY COALESCE(finished_at, created_at) DESC LIMIT ?')
      .all(this.name, state, limit) as JobRow[];
    return rows.map((r) => this.info(r));
  }

  async purge(states: readonly FinishedJobState[]): Promise<number> {
    if (states.length === 0) return 0;
    return this.db.prepare(`DELETE FROM jobs WHERE queue = ? AND state IN (${states.map(() => '?').join(', ')})`).run(this.name, ...states).changes;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  /** Takes the next ready job (or one whose worker's lease ran out); undefined when none. */
  private claim(owner: string): JobRow | undefined {
    const now = Date.now();
    const tx = this.db.transaction((): JobRow | undefined => {
      const r = this.db
        .prepare(
          `SELECT * FROM jobs WHERE queue = ? AND (
             (state IN ('waiting', 'delayed') AND run_at <= ?) OR (state = 'active' AND lease_until < ?)
           ) ORDER BY priority, run_at LIMIT 1`,
        )
        .get(this.name, now, now) as JobRow | undefined;
      if (!r) return undefined;
      if (r.state === 'active' && r.attempts >= r.max_attempts) {
        // Its worker died on the last allowed attempt.
        this.db
          .prepare(`UPDATE jobs SET state = 'failed', lease_owner = NULL, finished_at = ?, failed_reason = ? WHERE queue = ? AND id = ?`)
          .run(now, `The worker stopped during the last of ${r.max_attempts} attempts${r.failed_reason ? ` (earlier: ${r.failed_reason})` : ''}.`, this.name, r.id);
        return undefined;
      }
      this.db
        .prepare(`UPDATE jobs SET state = 'active', attempts = attempts + 1, lease_owner = ?, lease_until = ? WHERE queue = ? AND id = ?`)
        .run(owner, now + this.leaseMs, this.name, r.id);
      return { ...r, state: 'active', attempts: r.attempts + 1, lease_owner: owner };
    });
    return tx.immediate();
  }

  private checkpoint(id: string, owner: string): JobCheckpoint {
    return {
      load: async () => {
        const r = this.db.prepare('SELECT checkpoint FROM jobs WHERE queue = ? AND id = ?').get(this.name, id) as { checkpoint: string | null } | undefined;
        return r?.checkpoint ? (JSON.parse(r.checkpoint) as unknown) : undefined;
      },
      save: async (value) => {
        this.db.prepare('UPDATE jobs SET checkpoint = ? WHERE queue = ? AND id = ? AND lease_owner = ?').run(JSON.stringify(value), this.name, id, owner);
      },
    };
  }

  private renew(id: string, owner: string): boolean {
    return (
      this.db
        .prepare(`UPDATE jobs SET lease_until = ? WHERE queue = ? AND id = ? AND lease_owner = ? AND state = 'active'`)
        .run(Date.now() + this.leaseMs, this.name, id, owner).changes === 1
    );
  }

  private complete(id: string, owner: string, result: unknown): void {
    this.db
      .prepare(
        `UPDATE jobs SET state = 'completed', result = ?, lease_owner = NULL, lease_until = NULL, finished_at = ?, failed_reason = NULL, checkpoint = NULL
         WHERE queue = ? AND id = ? AND lease_owner = ?`,
      )
      .run(result === undefined ? null : JSON.stringify(result), Date.now(), this.name, id, owner);
  }

  private fail(row: JobRow, owner: string, e: unknown): void {
    const reason = failureReason(e);
    const permanent = isPermanentFailure(e);
    const now = Date.now();
    if (permanent || row.attempts >= row.max_attempts) {
      this.db
        .prepare(`UPDATE jobs SET state = ?, failed_reason = ?, lease_owner = NULL, lease_until = NULL, finished_at = ? WHERE queue = ? AND id = ? AND lease_owner = ?`)
        .run(needsReview(e) ? 'needs-review' : 'failed', reason, now, this.name, row.id, owner);
      return;
    }
    // row.attempts counts the run that just failed (1 after the first), so the first retry waits the base delay.
    const delay = backoffDelayMs(row.attempts - 1, this.options.retry);
    this.db
      .prepare(`UPDATE jobs SET state = 'delayed', failed_reason = ?, run_at = ?, lease_owner = NULL, lease_until = NULL WHERE queue = ? AND id = ? AND lease_owner = ?`)
      .run(reason, now + delay, this.name, row.id, owner);
  }

  process(handler: JobHandler<T>, options: WorkerOptions): JobWorker {
    const owner = `${process.pid}-${randomUUID()}`;
    const running = new Map<string, { done: Promise<void>; abort: AbortController }>();
    let stopping = false;
    let timer: NodeJS.Timeout | undefined;

    const run = (row: JobRow): void => {
      const abort = new AbortController();
      const renewTimer = setInterval(() => {
        if (!this.renew(row.id, owner)) abort.abort(new Error('lease lost'));
      }, Math.max(50, Math.floor(this.leaseMs / 3)));
      const done = (async () => {
        try {
          const result = await handler(JSON.parse(row.data) as T, { id: row.id, attempt: row.attempts, signal: abort.signal, checkpoint: this.checkpoint(row.id, owner) });
          if (!abort.signal.aborted) this.complete(row.id, owner, result);
        } catch (e) {
          if (abort.signal.aborted) {
            log.warn({ jobId: row.id }, 'job interrupted; it will run again');
          } else {
            log.warn({ jobId: row.id, attempt: row.attempts, err: failureReason(e) }, 'job attempt failed');
            this.fail(row, owner, e);
          }
        } finally {
          clearInterval(renewTimer);
          running.delete(row.id);
          schedule(0);
        }
      })();
      running.set(row.id, { done, abort });
    };

    const tick = (): void => {
      timer = undefined;
      if (stopping) return;
      try {
        while (running.size < options.concurrency) {
          const row = this.claim(owner);
          if (!row) break;
          run(row);
        }
      } catch (e) {
        log.error({ err: (e as Error).message }, 'embedded queue: could not take a job');
      }
      schedule(this.pollMs);
    };
    const schedule = (ms: number): void => {
      if (stopping) return;
      if (timer) {
        if (ms > 0) return;
        clearTimeout(timer);
      }
      timer = setTimeout(tick, ms);
    };
    this.wake = () => schedule(0);
    schedule(0);

    const worker: JobWorker = {
      close: async () => {
        stopping = true;
        if (timer) clearTimeout(timer);
        const all = Promise.all([...running.values()].map((r) => r.done));
        const timeout = options.drainTimeoutMs ?? 30_000;
        let t: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (t = setTimeout(() => r(true), timeout)))]);
        clearTimeout(t);
        if (timedOut) {
          // Give the jobs back now rather than when their lease runs out.
          for (const [id, r] of running) {
            r.abort.abort(new Error('worker stopping'));
            this.db.prepare(`UPDATE jobs SET state = 'waiting', lease_owner = NULL, lease_until = NULL WHERE queue = ? AND id = ? AND lease_owner = ?`).run(this.name, id, owner);
          }
          // Handlers that ignore the signal are not waited for: their results are discarded (aborted).
        }
        this.workers.delete(worker);
      },
    };
    this.workers.add(worker);
    return worker;
  }

  async close(): Promise<void> {
    for (const w of [...this.workers]) await w.close();
    if (this.ownsDb) this.db.close();
  }
}
