import { config } from '../../config.js';
import { closeSharedModelRunner, sharedModelRunner } from '../../model/shared-runner.js';
import { evaluateCase } from './eval-phantoms.js';
import type { WorkerReply, WorkerRequest } from './eval-phantoms-pool.js';
import { defaultCalibrate } from '../../analysis/run-analysis.js';

/** Child process of eval-phantoms-pool.ts: evaluates the seeds it is sent, one at a time, and reports each record. */
const send = (m: WorkerReply): void => void process.send?.(m);
const model = await sharedModelRunner(config());
const calibrate = await defaultCalibrate();
process.on('message', (m: WorkerRequest) => {
  if ('done' in m) {
    void closeSharedModelRunner().finally(() => process.exit(0));
    return;
  }
  evaluateCase(m.seed, m.preset, m.size, model, calibrate).then(
    (record) => send({ record }),
    (e: unknown) => send({ seed: m.seed, error: e instanceof Error ? e.message : String(e) }),
  );
});
// The parent died or stopped the pool: stop too rather than linger with the model runner alive.
process.on('disconnect', () => process.exit(1));
send({ ready: true });
