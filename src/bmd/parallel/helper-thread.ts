import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { workerEntry } from '../../util/built.js';
import { ONE_THREAD, type ChunkRunner } from './chunk-runner.js';
import { isShared, sharedFloat32 } from '../../imaging/shared-memory.js';
import type { EngineTasks } from './engine-tasks.js';
import { DECLINED, DONE, IDLE, NEXT, STATE, WORKING, type HelperReply, type HelperRequest } from './helper-protocol.js';

/**
 * A second thread for the engine's whole-volume loops (chunk-runner.ts). The measurement stays synchronous:
 * the calling thread posts the task, takes chunks itself, and waits (Atomics.wait) only for the chunk the
 * helper holds when none is left. A helper that has not started by then is declined and the caller has done
 * everything, so a slow or busy helper costs nothing but its own time. On the 2-core bench machine the helper
 * takes about half of each loop (its CPU profile: 110 ms of the straightening, 115 of the pooling, beside the
 * calling thread's 103 and 113), which shortens `vbmd analyze` by about 0.1 s, not by half: both loops read
 * the whole volume, and two threads share the memory bandwidth. The calibration's six slices were tried too
 * and came out slower (the helper ran each slice's code cold), so they stay on the calling thread.
 *
 * Only arguments in shared memory go across: a task whose arguments hold a large ordinary typed array (a
 * volume read into ArrayBuffer memory) runs on the calling thread alone, rather than copy it.
 */
export class HelperThread implements ChunkRunner {
  private worker: Worker | undefined;
  /** Chunks the helper has run and brought back, since it started (for the bench and tests). */
  helperChunks = 0;
  /** Settles once the helper has loaded the engine's code (or failed to). */
  readonly ready: Promise<boolean>;

  constructor() {
    const worker = new Worker(workerEntry('helper-worker', new URL('./helper-worker.mjs', import.meta.url)));
    this.worker = worker;
    this.ready = new Promise((resolve) => {
      worker.once('message', () => resolve(true));
      worker.once('error', () => resolve(false));
      worker.once('exit', () => resolve(false));
    });
    // An idle helper never keeps the process alive; a failed one is dropped and its chunks run here.
    worker.unref();
    worker.on('error', () => this.drop());
    worker.on('exit', () => (this.worker = undefined));
  }

  float32(length: number): Float32Array {
    return sharedFloat32(length);
  }

  run<K extends keyof EngineTasks>(task: K, args: Parameters<EngineTasks[K]>[0], chunks: number, local: EngineTasks[K]): ReturnType<EngineTasks[K]>[] {
    type R = ReturnType<EngineTasks[K]>;
    const runLocal = local as (a: typeof args, i: number) => R;
    const results = new Array<R>(chunks);
    const done = new Uint8Array(chunks);
    const worker = this.worker;
    if (!worker || chunks < 2 || holdsUnsharedArray(args)) return ONE_THREAD.run(task, args, chunks, local);
    const control = new Int32Array(new SharedArrayBuffer(8));
    const { port1, port2 } = new MessageChannel();
    const request: HelperRequest = { task, args, chunks, control, reply: port2 };
    worker.postMessage(request, [port2]);
    for (let i = Atomics.add(control, NEXT, 1); i < chunks; i = Atomics.add(control, NEXT, 1)) {
      results[i] = runLocal(args, i);
      done[i] = 1;
    }
    const reply = this.awaitHelper(control, port1);
    port1.close();
    for (const [i, r] of reply?.results ?? []) {
      results[i] = r as R;
      done[i] = 1;
      this.helperChunks++;
    }
    // Whatever the helper did not bring back (it failed, or timed out) is run here: the same chunks, the same values.
    for (let i = 0; i < chunks; i++) if (!done[i]) results[i] = runLocal(args, i);
    return results;
  }

  /** Stops the helper thread. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  /**
   * The helper's reply once it has finished the chunk it holds; undefined when it never started (declined now)
   * or failed. A helper that does not finish within HELPER_TIMEOUT_MS is dropped for good.
   */
  private awaitHelper(control: Int32Array, port: MessagePort): HelperReply | undefined {
    if (Atomics.compareExchange(control, STATE, IDLE, DECLINED) === IDLE) return undefined;
    const deadline = performance.now() + HELPER_TIMEOUT_MS;
    while (Atomics.load(control, STATE) === WORKING) {
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(control, STATE, WORKING, left) === 'timed-out') {
        this.drop();
        return undefined;
      }
    }
    const msg = Atomics.load(control, STATE) === DONE ? (receiveMessageOnPort(port)?.message as HelperReply | undefined) : undefined;
    if (msg?.error !== undefined) return undefined;
    return msg;
  }

  private drop(): void {
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
  }
}

/** A chunk is milliseconds; a helper this late is stuck (or its thread starved), and its chunks are run here. */
const HELPER_TIMEOUT_MS = 5_000;

/** Typed arrays of at least this many bytes in ordinary memory are not copied to the helper. */
const COPY_LIMIT_BYTES = 1 << 20;

/** True when `args` hold (up to three levels down) a large typed array that is not in shared memory. */
function holdsUnsharedArray(args: unknown, depth = 0): boolean {
  if (ArrayBuffer.isView(args)) return !isShared(args) && args.byteLength >= COPY_LIMIT_BYTES;
  if (depth >= 3 || args === null || typeof args !== 'object') return false;
  return Object.values(args).some((v) => holdsUnsharedArray(v, depth + 1));
}

let shared: HelperThread | undefined;

/** The process's one helper thread, started on first use (a one-shot command or the service's worker); unref'd, it never keeps the process alive. */
export function sharedHelperThread(): HelperThread {
  shared ??= new HelperThread();
  return shared;
}
