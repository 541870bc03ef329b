import type { MessagePort } from 'node:worker_threads';
import type { EngineTasks } from './engine-tasks.js';

/**
 * The helper thread's side of a chunked task, in shared memory (Int32Array over a SharedArrayBuffer):
 * NEXT is the next unclaimed chunk, taken by either thread with Atomics.add; STATE says whether the helper
 * has started, finished, or was told it came too late (the caller had already taken every chunk).
 */
export const NEXT = 0;
export const STATE = 1;
export const IDLE = 0;
export const WORKING = 1;
export const DONE = 2;
export const DECLINED = 3;

export interface HelperRequest {
  task: keyof EngineTasks;
  args: unknown;
  chunks: number;
  control: Int32Array;
  /** The helper posts one HelperReply here before it sets STATE to DONE. */
  reply: MessagePort;
}

export interface HelperReply {
  /** [chunk, result] for each chunk the helper ran. */
  results: [number, unknown][];
  error?: string;
}
