import { poolGridChunk } from '../spine/working-grid.js';
import { straightenChunk } from '../spine/straighten.js';

/**
 * The chunked loops a helper thread may run, by name (a thread is sent the name and the arguments; functions
 * do not cross threads). Each writes only its own chunk's part of an output in shared memory.
 */
export const ENGINE_TASKS = {
  poolGrid: poolGridChunk,
  straighten: straightenChunk,
};

export type EngineTasks = typeof ENGINE_TASKS;
