import type { Command } from 'commander';
import { config } from '../config.js';
import { userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { COMMAND_SUMMARIES } from './summaries.js';

/**
 * `vbmd start`: the service (src/cli/service.ts), loaded only when this command runs so other commands do
 * not pay for the HTTP stack and the sandbox authorization server. SIGINT/SIGTERM stop it gracefully: the
 * poller stops, running jobs finish (or are handed back), then the HTTP server and stores close.
 */
export function registerStart(program: Command): void {
  program
    .command('start')
    .description(COMMAND_SUMMARIES.start)
    .option('--worker-only', 'run only the analysis worker and study poller (no HTTP)')
    .action(async (opts: { workerOnly?: boolean }) => {
      const { startService } = await import('./service.js');
      const running = await startService(config(), { workerOnly: opts.workerOnly === true });
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping: finishing running jobs');
        running.close().then(
          () => process.exit(0),
          (e: unknown) => {
            log.error({ err: userMessage(e) }, 'unclean stop');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      // A worker started by a web process (src/jobs/worker-process.ts) stops when its parent goes away.
      if (process.send) process.on('disconnect', () => stop('parent-exit'));
      // ... and answers its parent's /metrics with its own (src/jobs/worker-process.ts).
      if (process.send) process.on('message', (m: unknown) => void answerMetrics(m));
      await new Promise<never>(() => undefined);
    });
}

async function answerMetrics(message: unknown): Promise<void> {
  const { METRICS_REQUEST, METRICS_ANSWER } = await import('../jobs/worker-process.js');
  const m = message as { type?: unknown; id?: unknown } | null;
  if (m?.type !== METRICS_REQUEST || typeof m.id !== 'number' || !process.send) return;
  const { metricsJson } = await import('../metrics/metrics.js');
  process.send({ type: METRICS_ANSWER, id: m.id, metrics: await metricsJson() });
}
