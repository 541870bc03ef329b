/**
 * A real Redis for integration tests and benches: `/usr/bin/redis-server` (Debian `redis-server`) on a free
 * 127.0.0.1 port, a fresh temp dir, no persistence (`--save '' --appendonly no`), stopped by its own pid.
 *
 * ```ts
 * const redis = await startRedis();   // redis.url = redis://127.0.0.1:PORT
 * await redis.stop();                 // SIGTERM by pid, SIGKILL after 5 s, temp dir removed
 * ```
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_BIN = '/usr/bin/redis-server';

export interface RedisHandle {
  url: string;
  port: number;
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    sock.setTimeout(500, () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('PONG')) {
        sock.end();
        resolve(true);
      }
    });
    sock.on('error', () => resolve(false));
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function startRedis(options: { startTimeoutMs?: number } = {}): Promise<RedisHandle> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'vbmd-redis-'));
    const logFile = join(dir, 'redis.log');
    const child = spawn(
      REDIS_BIN,
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--logfile', logFile, '--daemonize', 'no', '--protected-mode', 'yes'],
      { stdio: 'ignore' },
    );
    live.add(child);
    let exited = false;
    child.once('exit', () => {
      exited = true;
      live.delete(child);
    });
    const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
    while (Date.now() < deadline && !exited) {
      if (await answersPing(port)) {
        const stop = async (): Promise<void> => {
          if (!exited) {
            child.kill('SIGTERM');
            const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
            await new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
            clearTimeout(killer);
          }
          rmSync(dir, { recursive: true, force: true });
        };
        return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid!, dir, stop };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    let tail = '';
    try {
      tail = readFileSync(logFile, 'utf8').slice(-2000);
    } catch {
      /* no log yet */
    }
    if (!exited) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    if (attempt === 2) throw new Error(`redis-server did not start on 127.0.0.1:${port}: ${tail}`);
  }
  throw new Error('unreachable');
}
