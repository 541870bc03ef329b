import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PhantomPreset } from '../phantom/types.js';
import { caseLine, summarize, type CaseRecord, type EvalSummary } from './eval-phantoms.js';

/**
 * Runs eval-phantoms cases in `workers` child processes (each with its own engine and model runner), one seed at
 * a time from a shared queue, so a slow hard case does not hold back the rest. Two workers fill two cores: a
 * worker is single-threaded apart from its model's onnxruntime threads (VBMD_MODEL_THREADS, default cores - 1).
 */
export interface PoolOptions {
  count: number;
  seed: number;
  preset: PhantomPreset;
  size?: number;
  workers: number;
  onCase?: (line: string) => void;
}

export type WorkerRequest = { seed: number; preset: PhantomPreset; size?: number } | { done: true };
export type WorkerReply = { record: CaseRecord } | { seed: number; error: string } | { ready: true };

const WORKER = fileURLToPath(new URL('./eval-phantoms-worker.ts', import.meta.url));

function startWorker(): ChildProcess {
  // Children run the TypeScript entry through tsx, as the parent does (`tsx src/cli.ts`).
  const execArgv = process.execArgv.some((a) => a.includes('tsx')) ? process.execArgv : [...process.execArgv, '--import', 'tsx'];
  return fork(WORKER, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

export async function evaluatePhantomsInWorkers(o: PoolOptions): Promise<EvalSummary> {
  const seeds = Array.from({ length: o.count }, (_, i) => o.seed + i);
  const records: CaseRecord[] = [];
  const failures: string[] = [];
  const n = Math.max(1, Math.min(o.workers, o.count));
  await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve, reject) => {
        const child = startWorker();
        const next = (): void => {
          const seed = seeds.shift();
          child.send((seed === undefined ? { done: true } : { seed, preset: o.preset, size: o.size }) satisfies WorkerRequest);
        };
        child.on('message', (m: WorkerReply) => {
          if ('record' in m) {
            records.push(m.record);
            o.onCase?.(caseLine(m.record));
          } else if ('error' in m) failures.push(`seed ${m.seed}: ${m.error}`);
          next();
        });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`eval-phantoms worker exited with code ${code}.`))));
      }),
    ),
  );
  if (failures.length) throw new Error(`eval-phantoms: ${failures.length} case(s) failed: ${failures.join('; ')}`);
  records.sort((a, b) => a.seed - b.seed);
  return summarize(records);
}
