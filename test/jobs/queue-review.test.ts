import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue.js';
import { SqliteJobQueue } from '../../src/jobs/sqlite-queue.js';
import type { JobQueue } from '../../src/jobs/queue.js';
import { VbmdError } from '../../src/util/errors.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';

/**
 * Two queue features the worker relies on, on both adapters with real storage: a job held for review (its
 * own state and reason, counted and listed apart from failures, run afresh when added again) and a
 * checkpoint an attempt saves for the next (dropped when the job completes).
 */
interface Payload {
  n: number;
}

let redis: RedisHandle;
let dir: string;
beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'vbmd-queue-review-'));
});
afterAll(async () => {
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const retry = { attempts: 3, backoffMs: 20 };
const adapters: [string, (name: string) => JobQueue<Payload>][] = [
  ['embedded (SQLite)', (name) => new SqliteJobQueue<Payload>({ db: join(dir, `${name}.sqlite`), retry, pollMs: 20 })],
  ['BullMQ (Redis)', (name) => new BullMqJobQueue<Payload>({ redisUrl: redis.url, retry, lockDurationMs: 1500, prefix: `t-${name}-${randomUUID().slice(0, 8)}` })],
];

async function waitState(q: JobQueue<Payload>, id: string, state: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await q.get(id))?.state !== state) {
    if (Date.now() > deadline) throw new Error(`${id} never reached ${state}: ${JSON.stringify(await q.get(id))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(adapters)('job queue: %s', (_label, make) => {
  it('holds a job for review: own state and reason, not retried, not a failure, run afresh when added again', async () => {
    const q = make('review');
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

  it('keeps what an attempt saved for the next attempt, and drops it when the job completes', async () => {
    const q = make('checkpoint');
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
