import Database from 'better-sqlite3';
import { Backoffs } from 'bullmq';
import type { MinimalJob } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { bullMqRetryOptions } from '../../src/jobs/bullmq-queue.js';
import { jobRetryPolicy } from '../../src/jobs/queue.js';
import { SqliteJobQueue } from '../../src/jobs/sqlite-queue.js';
import { WORKER_RESTART } from '../../src/jobs/worker-process.js';
import { VbmdError } from '../../src/util/errors.js';
import { backoffDelayMs } from '../../src/util/retry-policy.js';

/**
 * The one retry policy and its one backoff, as the request layer, both job queues and the worker supervisor
 * use them: the waits, the mapping to BullMQ's options, and the embedded queue's stored run count.
 */
const mid = (): number => 0.5; // jitter factor exactly 1
const low = (): number => 0; // factor 0.8
const high = (): number => 0.999_999; // factor just under 1.2

describe('backoffDelayMs', () => {
  it('doubles from the base delay, attempt 0 being the first retry', () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffDelayMs(n, { baseDelayMs: 100 }, mid))).toEqual([100, 200, 400, 800, 1600]);
  });

  it('jitters within [0.8, 1.2) of that wait', () => {
    expect(backoffDelayMs(2, { baseDelayMs: 100 }, low)).toBe(320);
    expect(backoffDelayMs(2, { baseDelayMs: 100 }, high)).toBe(480);
    const samples = Array.from({ length: 500 }, () => backoffDelayMs(3, { baseDelayMs: 1000 }));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(6400);
    expect(Math.max(...samples)).toBeLessThanOrEqual(9600);
    expect(new Set(samples).size).toBeGreaterThan(50); // spread, not one value
  });

  it('never waits longer than maxDelayMs, and has no cap without one', () => {
    expect(backoffDelayMs(10, { baseDelayMs: 100, maxDelayMs: 5000 }, high)).toBe(5000);
    expect(backoffDelayMs(10, { baseDelayMs: 100, maxDelayMs: 5000 }, low)).toBe(4000);
    expect(backoffDelayMs(20, { baseDelayMs: 1 }, mid)).toBe(2 ** 20);
    expect(backoffDelayMs(3, { baseDelayMs: 0 }, high)).toBe(0);
  });

  it('gives the worker supervisor its former restart waits (0.5 s doubling to 30 s) at the jitter midpoint', () => {
    for (let restarts = 0; restarts < 12; restarts++) {
      expect(backoffDelayMs(restarts, WORKER_RESTART, mid)).toBe(Math.min(30_000, 500 * 2 ** Math.min(restarts, 6)));
    }
    expect(backoffDelayMs(5000, WORKER_RESTART, high)).toBe(30_000);
  });
});

describe('job retries under the one policy', () => {
  it('reads JOB_ATTEMPTS as runs in all and JOB_BACKOFF_MS as the first wait', () => {
    expect(jobRetryPolicy({ JOB_ATTEMPTS: 5, JOB_BACKOFF_MS: 15_000 })).toEqual({ retries: 4, baseDelayMs: 15_000 });
    expect(jobRetryPolicy({ JOB_ATTEMPTS: 1, JOB_BACKOFF_MS: 0 })).toEqual({ retries: 0, baseDelayMs: 0 });
  });

  it("maps onto BullMQ's attempts and exponential backoff, whose waits are backoffDelayMs's nominal ones", async () => {
    const policy = jobRetryPolicy({ JOB_ATTEMPTS: 5, JOB_BACKOFF_MS: 15_000 });
    const opts = bullMqRetryOptions(policy);
    expect(opts).toEqual({ attempts: 5, backoff: { type: 'exponential', delay: 15_000 } });
    // BullMQ's wait after its n-th failed run (attemptsMade = n) is ours before retry n (attempt index n - 1).
    for (let made = 1; made < opts.attempts; made++) {
      const bull = await Backoffs.calculate(opts.backoff, made, new Error('x'), {} as MinimalJob);
      expect(bull).toBe(backoffDelayMs(made - 1, policy, mid));
    }
  });

  it('refuses a capped policy for BullMQ, which cannot cap its waits', () => {
    expect(() => bullMqRetryOptions({ retries: 2, baseDelayMs: 10, maxDelayMs: 1000 })).toThrow(VbmdError);
    expect(bullMqRetryOptions({ retries: 2, baseDelayMs: 10, maxDelayMs: Number.POSITIVE_INFINITY }).attempts).toBe(3);
  });

  it('the embedded queue stores retries + 1 runs per job and waits backoffDelayMs after a failure', async () => {
    const db = new Database(':memory:');
    const queue = new SqliteJobQueue<{ n: number }>({ db, retry: { retries: 2, baseDelayMs: 60_000 }, pollMs: 10 });
    try {
      await queue.add({ n: 1 }, { jobId: 'a' });
      const row = (): { max_attempts: number; attempts: number; state: string; run_at: number } =>
        db.prepare("SELECT max_attempts, attempts, state, run_at FROM jobs WHERE id = 'a'").get() as never;
      expect(row().max_attempts).toBe(3);
      let failedAt = 0;
      const w = queue.process(async () => {
        failedAt = Date.now();
        throw new VbmdError('remote', 'PACS busy');
      }, { concurrency: 1 });
      for (let i = 0; i < 200 && row().state !== 'delayed'; i++) await new Promise((r) => setTimeout(r, 10));
      await w.close();
      const r = row();
      expect(r).toMatchObject({ state: 'delayed', attempts: 1 });
      // First retry: the base delay, +-20%.
      expect(r.run_at - failedAt).toBeGreaterThanOrEqual(0.8 * 60_000 - 5);
      expect(r.run_at - failedAt).toBeLessThanOrEqual(1.2 * 60_000 + 50);
    } finally {
      await queue.close();
      db.close();
    }
  });

  it('a job stored by an earlier version keeps its own run count (max_attempts), whatever the policy now says', async () => {
    const db = new Database(':memory:');
    const queue = new SqliteJobQueue<{ n: number }>({ db, retry: { retries: 0, baseDelayMs: 1 }, pollMs: 10 });
    try {
      // As older versions wrote it, from { attempts: 2, backoffMs }: max_attempts = 2 runs in all.
      db.prepare(
        "INSERT INTO jobs (id, queue, data, state, attempts, max_attempts, run_at, created_at) VALUES ('old', 'analysis', '{\"n\":7}', 'waiting', 0, 2, 0, 0)",
      ).run();
      const runs: number[] = [];
      const w = queue.process(async (d, ctx) => {
        runs.push(ctx.attempt);
        if (ctx.attempt === 1) throw new VbmdError('remote', 'PACS busy');
        return d.n;
      }, { concurrency: 1 });
      for (let i = 0; i < 300 && (await queue.get('old'))?.state !== 'completed'; i++) await new Promise((r) => setTimeout(r, 10));
      await w.close();
      expect(await queue.get('old')).toMatchObject({ state: 'completed', attempts: 2, result: 7 });
      expect(runs).toEqual([1, 2]);
    } finally {
      await queue.close();
      db.close();
    }
  });
});
