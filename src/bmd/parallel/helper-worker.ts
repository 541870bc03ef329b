import { parentPort } from 'node:worker_threads';
import { ENGINE_TASKS } from './engine-tasks.js';
import { DONE, IDLE, NEXT, STATE, WORKING, type HelperReply, type HelperRequest } from './helper-protocol.js';

/**
 * The engine's helper thread: takes chunks of a task until none is left, beside the thread that asked.
 * A request that arrives after the asking thread has taken every chunk (it then sets DECLINED) is left alone.
 */
parentPort!.on('message', (req: HelperRequest) => {
  const { control } = req;
  if (Atomics.compareExchange(control, STATE, IDLE, WORKING) !== IDLE) {
    req.reply.close();
    return;
  }
  const reply: HelperReply = { results: [] };
  try {
    const run = ENGINE_TASKS[req.task] as (args: unknown, chunk: number) => unknown;
    for (let i = Atomics.add(control, NEXT, 1); i < req.chunks; i = Atomics.add(control, NEXT, 1)) reply.results.push([i, run(req.args, i)]);
  } catch (e) {
    reply.error = e instanceof Error ? e.message : String(e);
  }
  req.reply.postMessage(reply);
  req.reply.close();
  Atomics.store(control, STATE, DONE);
  Atomics.notify(control, STATE);
});

// Loaded: the engine's code is in this thread now (HelperThread.ready).
parentPort!.postMessage('ready');
