import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { EnvConfig } from '../config.js';
import { log } from '../util/log.js';
import { BUILT_DIR } from '../util/built.js';
import { backoffDelayMs } from '../util/retry-policy.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import type { MetricsJson } from '../metrics/metrics.js';

/**
 * The analysis worker as a supervised child process (`vbmd start --worker-only`) of the web process. The
 * engine is seconds of synchronous CPU per study; in the web process it would stall every hook for that
 * long (CDS Hooks answers must take tens of milliseconds). The child gets the parent's resolved settings as
 * environment variables, is restarted with backoff if it dies (its job is taken again after the lease), and
 * is stopped gracefully (SIGTERM: running jobs finish) with the service. An IPC channel ties it to the
 * parent: if the web process dies, the child sees `disconnect` and stops too.
 */
export interface SupervisedWorker {
  readonly pid: number | undefined;
  /** The child's Prometheus metrics over the IPC channel (none when it is not running or does not answer in 2 s). */
  metrics(): Promise<MetricsJson[]>;
  stop(): Promise<void>;
}

/** IPC messages between the web process and its worker: a metrics request and its answer. */
export const METRICS_REQUEST = 'vbmd:metrics?';
export const METRICS_ANSWER = 'vbmd:metrics';
interface MetricsAnswer {
  type: typeof METRICS_ANSWER;
  id: number;
  metrics: MetricsJson;
}

/** The child runs the same kind of code as this process: the built command (no TypeScript to compile at each (re)start), else the sources through tsx. */
const CHILD_ENTRY = BUILT_DIR ? [fileURLToPath(new URL('cli.js', BUILT_DIR))] : ['--import', 'tsx', fileURLToPath(new URL('../cli.ts', import.meta.url))];

/** Settings back to environment form (the inverse of config.ts's parsing). */
export function configToEnv(cfg: EnvConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg)) {
    if (v === undefined) continue;
    env[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return env;
}

/** Restarts of a worker process that died: for as long as the service runs, 0.5 s doubling to 30 s. */
export const WORKER_RESTART: RetryPolicy = { retries: Number.POSITIVE_INFINITY, baseDelayMs: 500, maxDelayMs: 30_000 };

export function superviseWorkerProcess(cfg: EnvConfig, overrides: Record<string, string> = {}): SupervisedWorker {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  const env = { ...process.env, ...configToEnv(cfg), ...overrides };

  const start = (): void => {
    const startedAt = Date.now();
    const c = spawn(process.execPath, [...CHILD_ENTRY, 'start', '--worker-only'], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child = c;
    log.info({ pid: c.pid }, 'analysis worker process started');
    c.once('exit', (code, signal) => {
      if (stopping) return;
      // A worker that ran a while before dying starts again at once; one that keeps dying backs off.
      restarts = Date.now() - startedAt > 60_000 ? 0 : restarts + 1;
      const delay = backoffDelayMs(restarts, WORKER_RESTART);
      log.error({ code, signal, restartInMs: delay }, 'analysis worker process exited; restarting');
      restartTimer = setTimeout(start, delay);
    });
  };
  start();

  let asked = 0;
  const metrics = async (): Promise<MetricsJson[]> => {
    const c = child;
    if (!c || !c.connected) return [];
    const id = ++asked;
    return new Promise<MetricsJson[]>((resolve) => {
      const done = (m: MetricsJson[]): void => {
        clearTimeout(timer);
        c.off('message', onMessage);
        resolve(m);
      };
      const onMessage = (msg: unknown): void => {
        const a = msg as Partial<MetricsAnswer> | null;
        if (a?.type === METRICS_ANSWER && a.id === id && Array.isArray(a.metrics)) done([a.metrics]);
      };
      const timer = setTimeout(() => done([]), 2000);
      c.on('message', onMessage);
      c.send({ type: METRICS_REQUEST, id }, (err) => err && done([]));
    });
  };

  return {
    get pid() {
      return child?.pid;
    },
    metrics,
    stop: async () => {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const killer = setTimeout(() => c.kill('SIGKILL'), 75_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
