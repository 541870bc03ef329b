import type { EngineTasks } from './engine-tasks.js';

/**
 * How the engine runs its two largest whole-volume loops (the working grid's pooling and the straightened spine):
 * as numbered chunks, each a pure function of its arguments and its index that writes only its own part of the
 * output. A runner may give some chunks to a helper thread (helper-thread.ts); the results are the same as on
 * one thread, chunk for chunk, because no chunk depends on another.
 */
export interface ChunkRunner {
  /**
   * Runs `task` on chunks 0..chunks-1 and returns their results in chunk order. `local` is the task's own
   * function (the one a helper runs under the name `task`), used for the chunks this thread takes.
   */
  run<K extends keyof EngineTasks>(
    task: K,
    args: Parameters<EngineTasks[K]>[0],
    chunks: number,
    local: EngineTasks[K],
  ): ReturnType<EngineTasks[K]>[];
  /** A zeroed Float32Array that a helper can write into (shared memory when this runner has a helper). */
  float32(length: number): Float32Array;
}

/** Every chunk on this thread, in order. */
export const ONE_THREAD: ChunkRunner = {
  run<K extends keyof EngineTasks>(_task: K, args: Parameters<EngineTasks[K]>[0], chunks: number, local: EngineTasks[K]): ReturnType<EngineTasks[K]>[] {
    const runLocal = local as (a: typeof args, i: number) => ReturnType<EngineTasks[K]>;
    const out: ReturnType<EngineTasks[K]>[] = [];
    for (let i = 0; i < chunks; i++) out.push(runLocal(args, i));
    return out;
  },
  float32: (length) => new Float32Array(length),
};

/** Chunks of `size` items covering `n` items. */
export function chunkCount(n: number, size: number): number {
  return Math.max(0, Math.ceil(n / size));
}
