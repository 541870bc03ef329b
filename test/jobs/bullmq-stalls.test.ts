import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue.js';
import { startRedis } from '../support/redis.js';
import type { RedisHandle } from '../support/redis.js';

/**
 * Worker deaths on BullMQ count like the embedded queue's: a job gets JOB_ATTEMPTS runs, whether they end
 * in an error or in a dead worker (maxStalledCount was fixed at 2, so the third death failed the job for
 * good whatever JOB_ATTEMPTS said), each run reports its own attempt number (a re-run after a death was
 * logged as attempt 1), and the stall is logged. Real Redis, real worker processes killed with SIGKILL.
 */
let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const ATTEMPTS = 5;

function startHangingWorker(prefix: string): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures/hanging-worker.ts'), 'bullmq', redis.url, prefix, String(ATTEMPTS)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('BullMQ worker deaths', () => {
  it(`three worker deaths do not fail a job allowed ${ATTEMPTS} attempts; each run has its attempt number; stalls are logged`, async () => {
    const prefix = `t-stall-${randomUUID().slice(0, 8)}`;
    const queue = new BullMqJobQueue<{ n: number }>({ redisUrl: redis.url, retry: { retries: ATTEMPTS - 1, baseDelayMs: 50 }, lockDurationMs: 1500, prefix });
    const stderr: string[] = [];
    try {
      await queue.add({ n: 3 }, { jobId: 'stall-1' });
      for (let death = 1; death <= 3; death++) {
        const w = startHangingWorker(prefix);
        await waitFor(`run ${death}`, () => w.out().includes(`started stall-1 3 attempt ${death}`));
        w.child.kill('SIGKILL');
        await new Promise((r) => w.child.once('exit', r));
        stderr.push(w.err());
        expect((await queue.get('stall-1'))?.state).not.toBe('failed');
      }
      let attemptSeen = 0;
      const worker = queue.process(async (d, ctx) => {
        attemptSeen = ctx.attempt;
        return d.n * 2;
      }, { concurrency: 1 });
      await waitFor('the job to complete', async () => (await queue.get('stall-1'))?.state === 'completed');
      await worker.close();
      const done = await queue.get('stall-1');
      expect(done).toMatchObject({ state: 'completed', result: 6, attempts: 4 });
      expect(attemptSeen).toBe(4);
      // The workers that took the job again after a death saw it stalled and said so.
      expect(stderr.join('')).toContain('job stalled');
    } finally {
      await queue.close();
    }
  }, 120_000);

  it('a job whose workers keep dying fails after its attempts, with the reason visible', async () => {
    const prefix = `t-stall-${randomUUID().slice(0, 8)}`;
    const queue = new BullMqJobQueue<{ n: number }>({ redisUrl: redis.url, retry: { retries: 1, baseDelayMs: 50 }, lockDurationMs: 1500, prefix });
    try {
      await queue.add({ n: 1 }, { jobId: 'stall-2' });
      for (let death = 1; death <= 2; death++) {
        const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures/hanging-worker.ts'), 'bullmq', redis.url, prefix, '2'], { stdio: ['ignore', 'pipe', 'ignore'] });
        let out = '';
        child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        await waitFor(`run ${death}`, () => out.includes(`attempt ${death}`));
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      // Any worker's stalled-job check moves it to failed now (the second death was the last allowed run).
      const worker = queue.process(async () => 'should not run', { concurrency: 1 });
      await waitFor('the job to fail', async () => (await queue.get('stall-2'))?.state === 'failed');
      await worker.close();
      const failed = await queue.list('failed', 10);
      expect(failed.map((j) => j.id)).toContain('stall-2');
      expect(failed.find((j) => j.id === 'stall-2')?.failedReason).toMatch(/stalled/);
    } finally {
      await queue.close();
    }
  }, 120_000);
});
