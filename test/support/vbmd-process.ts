import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * `vbmd` as a real process for integration tests: `start` (web process; it supervises its own worker
 * process) or a one-shot command (`backfill ... --json`). JSON log lines from stderr are kept; stop() sends
 * SIGTERM to its own pid (running jobs finish), then SIGKILL after 20 s.
 */
export const ROOT = resolve(__dirname, '../..');
const CLI = resolve(ROOT, 'src/cli.ts');

export interface VbmdProcess {
  child: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

export function spawnVbmd(args: string[], env: Record<string, string>, stdout: 'ignore' | 'pipe' = 'ignore'): VbmdProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', stdout, 'pipe'] });
  const logs: string[] = [];
  let buffered = '';
  child.stderr!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    logs.push(...lines);
  });
  return {
    child,
    logs,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Runs a one-shot command to its end; resolves with its exit code, stdout and stderr. */
export async function runVbmd(args: string[], env: Record<string, string>, timeoutMs = 240_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnVbmd(args, env, 'pipe');
  let stdout = '';
  p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  clearTimeout(t);
  return { code, stdout, stderr: p.logs.join('\n') };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
