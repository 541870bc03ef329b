import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteJobQueue } from '../../src/jobs/sqlite-queue.js';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue.js';
import type { JobQueue, JobState } from '../../src/jobs/queue.js';
import { VbmdError } from '../../src/util/errors.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';

/**
 * The queue contract, run against both adapters with real storage: SQLite files in a temp dir, and BullMQ
 * on a real redis-server started by the test. Includes a worker process killed with SIGKILL mid-job, a job
 * held for review (its own state and reason, counted apart from failures, run afresh when added again) and
 * a checkpoint an attempt saves for the next (dropped when the job completes).
 */
interface Payload {
  n: number;
}

let redis: RedisHandle;
let dir: string;

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'vbmd-queue-test-'));
});

afterAll(async () => {
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const retry = { retries: 2, baseDelayMs: 50 };

type Make = (name: string) => { queue: JobQueue<Payload>; crashArgs: string[] };
const adapters: [string, Make][] = [
  [
    'embedded (SQLite)',
    (name) => {
      const file = join(dir, `${name}.sqlite`);
      return { queue: new SqliteJobQueue<Payload>({ db: file, retry, leaseMs: 1500, pollMs: 50 }), crashArgs: ['embedded', file] };
    },
  ],
  [
    'BullMQ (Redis)',
    (name) => {
      const prefix = `t-${name}-${randomUUID().slice(0, 8)}`;
      return { queue: new BullMqJobQueue<Payload>({ redisUrl: redis.url, retry, lockDurationMs: 1500, prefix }), crashArgs: ['bullmq', redis.url, prefix] };
    },
  ],
];

async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function waitState(q: JobQueue<Payload>, id: string, state: JobState) {
  return waitFor(async () => {
    const j = await q.get(id);
    return j?.state === state ? j : undefined;
  });
}

describe.each(adapters)('job queue: %s', (_label, make) => {
  it('runs a job once, records the result, and ignores a duplicate id', async () => {
    const { queue } = make('basic');
    try {
      const a = await queue.add({ n: 1 }, { jobId: 'study-1.2.3' });
      const b = await queue.add({ n: 1 }, { jobId: 'study-1.2.3' });
      expect(a).toEqual({ id: 'study-1.2.3', created: true });
      expect(b.created).toBe(false);
      let runs = 0;
      const w = queue.process(async (d) => {
        runs++;
        return { doubled: d.n * 2 };
      }, { concurrency: 1 });
      const done = await waitState(queue, 'study-1.2.3', 'completed');
      expect(done.result).toEqual({ doubled: 2 });
      expect(done.attempts).toBe(1);
      expect(runs).toBe(1);
      await w.close();
      expect((await queue.counts()).completed).toBe(1);
    } finally {
      await queue.close();
    }
  });

  it('retries with backoff and succeeds; exhausts attempts into a visible failed state; fails permanent errors at once', async () => {
    const { queue } = make('retry');
    try {
      const calls = new Map<number, number[]>();
      const w = queue.process(async (d) => {
        const times = calls.get(d.n) ?? [];
        times.push(Date.now());
        calls.set(d.n, times);
        if (d.n === 1 && times.length < 3) throw new VbmdError('remote', `PACS busy (try ${times.length})`);
        if (d.n === 2) throw new VbmdError('remote', 'The PACS at http://pacs answered 503.');
        if (d.n === 3) throw new VbmdError('no-spine', 'No spine in the field of view of study 1.2.3.');
        return 'ok';
      }, { concurrency: 2 });
      await queue.add({ n: 1 }, { jobId: 'j1' });
      await queue.add({ n: 2 }, { jobId: 'j2' });
      await queue.add({ n: 3 }, { jobId: 'j3' });
      const j1 = await waitState(queue, 'j1', 'completed');
      expect(j1.attempts).toBe(3);
      const t1 = calls.get(1)!;
      expect(t1[1]! - t1[0]!).toBeGreaterThanOrEqual(35); // backoff ~50 ms (jitter -20%)
      expect(t1[2]! - t1[1]!).toBeGreaterThanOrEqual(75); // doubled
      const j2 = await waitState(queue, 'j2', 'failed');
      expect(j2.attempts).toBe(3);
      expect(j2.failedReason).toContain('answered 503');
      const j3 = await waitState(queue, 'j3', 'failed');
      expect(calls.get(3)).toHaveLength(1);
      expect(j3.failedReason).toBe('No spine in the field of view of study 1.2.3.');
      await w.close();
      const failed = await queue.list('failed', 10);
      expect(failed.map((j) => j.id).sort()).toEqual(['j2', 'j3']);
      expect(failed.find((j) => j.id === 'j3')?.failedReason).toContain('No spine');
      expect((await queue.counts()).failed).toBe(2);
      // Adding a failed job again gives it a fresh run.
      await queue.add({ n: 3 }, { jobId: 'j3' });
      const w2 = queue.process(async () => 'fixed', { concurrency: 1 });
      expect((await waitState(queue, 'j3', 'completed')).result).toBe('fixed');
      await w2.close();
    } finally {
      await queue.close();
    }
  });

  it('bounds concurrency and drains running jobs on close', async () => {
    const { queue } = make('concurrency');
    try {
      let active = 0;
      let maxActive = 0;
      let finished = 0;
      for (let i = 0; i < 6; i++) await queue.add({ n: i }, { jobId: `c${i}` });
      const w = queue.process(async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 150));
        active--;
        finished++;
      }, { concurrency: 2, drainTimeoutMs: 5000 });
      await waitFor(async () => active > 0);
      await w.close(); // graceful: the running ones finish, no new ones start
      const afterClose = finished;
      expect(active).toBe(0);
      expect(afterClose).toBeGreaterThanOrEqual(1);
      expect(maxActive).toBeLessThanOrEqual(2);
      const counts = await queue.counts();
      expect(counts.completed).toBe(afterClose);
      expect(counts.waiting + counts.delayed).toBe(6 - afterClose);
      const w2 = queue.process(async () => undefined, { concurrency: 3 });
      await waitFor(async () => (await queue.counts()).completed === 6);
      await w2.close();
    } finally {
      await queue.close();
    }
  });

  it('hands a job out again when its worker process is killed mid-job (at-least-once)', async () => {
    const { queue, crashArgs } = make('crash');
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures/hanging-worker.ts'), ...crashArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await queue.add({ n: 7 }, { jobId: 'crash-1' });
      await waitFor(async () => out.includes('started crash-1'), 30_000);
      expect((await queue.get('crash-1'))?.state).toBe('active');
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      let runs = 0;
      const w = queue.process(async (d) => {
        runs++;
        return d.n;
      }, { concurrency: 1 });
      const done = await waitState(queue, 'crash-1', 'completed');
      expect(done.result).toBe(7);
      expect(runs).toBe(1);
      await w.close();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await queue.close();
    }
  });

  it('holds a job for review: own state and reason, not retried, not a failure, run afresh when added again', async () => {
    const { queue: q } = make('review');
    let runs = 0;
    const w = q.process(async (d) => {
      runs++;
      if (d.n === 1) throw new VbmdError('needs-review', 'Held for review: the study patient is not the order patient.');
      if (d.n === 2) throw new VbmdError('no-spine', 'No spine in view.');
      return 'written';
    }, { concurrency: 1 });
    try {
      await q.add({ n: 1 }, { jobId: 'r1' });
      await q.add({ n: 2 }, { jobId: 'f1' });
      await waitState(q, 'r1', 'needs-review');
      await waitState(q, 'f1', 'failed');
      expect(runs).toBe(2);
      expect(await q.get('r1')).toMatchObject({ state: 'needs-review', failedReason: 'Held for review: the study patient is not the order patient.' });
      expect(await q.counts()).toMatchObject({ 'needs-review': 1, failed: 1 });
      expect((await q.list('needs-review', 10)).map((j) => j.id)).toEqual(['r1']);
      expect((await q.list('failed', 10)).map((j) => j.id)).toEqual(['f1']);
      // The order was corrected: added again with new data, it runs again and completes.
      await q.add({ n: 3 }, { jobId: 'r1' });
      await waitState(q, 'r1', 'completed');
      expect(await q.get('r1')).toMatchObject({ data: { n: 3 }, result: 'written' });
      expect((await q.counts())['needs-review']).toBe(0);
    } finally {
      await w.close();
      await q.close();
    }
  });

  it('purges finished jobs by state: only those states, and a purged id can be added (and run) again', async () => {
    const { queue: q } = make('purge');
    const w = q.process(async (d) => {
      if (d.n === 1) throw new VbmdError('needs-review', 'Held for review.');
      if (d.n === 2) throw new VbmdError('no-spine', 'No spine in view.');
      return 'written';
    }, { concurrency: 1 });
    try {
      await q.add({ n: 1 }, { jobId: 'p-held' });
      await q.add({ n: 2 }, { jobId: 'p-failed' });
      await q.add({ n: 3 }, { jobId: 'p-done-1' });
      await q.add({ n: 4 }, { jobId: 'p-done-2' });
      await waitFor(async () => (await q.counts()).completed === 2);
      await waitState(q, 'p-held', 'needs-review');
      await waitState(q, 'p-failed', 'failed');
      await w.close();
      await q.add({ n: 5 }, { jobId: 'p-waiting' });

      expect(await q.purge([])).toBe(0);
      expect(await q.purge(['completed'])).toBe(2);
      expect(await q.counts()).toMatchObject({ completed: 0, failed: 1, 'needs-review': 1, waiting: 1 });
      expect(await q.get('p-done-1')).toBeUndefined();
      expect(await q.purge(['needs-review'])).toBe(1);
      expect(await q.counts()).toMatchObject({ failed: 1, 'needs-review': 0, waiting: 1 });
      expect(await q.purge(['failed', 'completed'])).toBe(1);
      expect(await q.counts()).toMatchObject({ completed: 0, failed: 0, 'needs-review': 0, waiting: 1 });

      expect(await q.add({ n: 6 }, { jobId: 'p-done-1' })).toEqual({ id: 'p-done-1', created: true });
      const w2 = q.process(async () => 'again', { concurrency: 1 });
      await waitState(q, 'p-done-1', 'completed');
      await w2.close();
      expect(await q.get('p-done-1')).toMatchObject({ data: { n: 6 }, result: 'again' });
    } finally {
      await w.close();
      await q.close();
    }
  });

  it('takes interactive jobs before backfill jobs that waited longer, and backfill jobs in arrival order', async () => {
    const { queue } = make('priority');
    try {
      for (let i = 1; i <= 4; i++) await queue.add({ n: 100 + i }, { jobId: `backfill-${i}`, priority: 'backfill' });
      await queue.add({ n: 1 }, { jobId: 'order-1' });
      await queue.add({ n: 105 }, { jobId: 'backfill-5', priority: 'backfill' });
      await queue.add({ n: 2 }, { jobId: 'order-2', priority: 'interactive' });
      expect((await queue.counts()).waiting).toBe(7);
      expect((await queue.list('waiting', 10)).map((j) => j.id).sort()).toHaveLength(7);
      const order: number[] = [];
      const w = queue.process(async (d) => void order.push(d.n), { concurrency: 1 });
      await waitFor(async () => (await queue.counts()).completed === 7);
      await w.close();
      expect(order).toEqual([1, 2, 101, 102, 103, 104, 105]);
    } finally {
      await queue.close();
    }
  });

  it('keeps what an attempt saved for the next attempt, and drops it when the job completes', async () => {
    const { queue: q } = make('checkpoint');
    const seen: unknown[] = [];
    const w = q.process(async (_d, ctx) => {
      const saved = await ctx.checkpoint!.load();
      seen.push(saved);
      if (saved === undefined) {
        await ctx.checkpoint!.save({ analysis: 'expensive result' });
        throw new VbmdError('remote', 'The FHIR server answered 503.');
      }
      return saved;
    }, { concurrency: 1 });
    try {
      await q.add({ n: 1 }, { jobId: 'c1' });
      await waitState(q, 'c1', 'completed');
      expect(seen).toEqual([undefined, { analysis: 'expensive result' }]);
      expect((await q.get('c1'))?.result).toEqual({ analysis: 'expensive result' });
    } finally {
      await w.close();
      await q.close();
    }
  });
});
