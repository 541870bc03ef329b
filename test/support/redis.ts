/**
 * A real Redis for integration tests and benches: `/usr/bin/redis-server` (Debian `redis-server`) on a free
 * 127.0.0.1 port, a fresh temp dir, no persistence (`--save '' --appendonly no`) unless asked for AOF,
 * stopped by its own pid.
 *
 * ```ts
 * const redis = await startRedis({ persistence: 'aof' });   // redis.url = redis://127.0.0.1:PORT
 * await redis.pause(); await redis.resume();                 // an outage; a restart without persistence
 * await redis.stop();                                        // SIGTERM by pid, SIGKILL after 5 s, temp dir removed
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
  /** Stops the server (SIGTERM; an AOF server writes its file) and keeps its port and directory. */
  pause(): Promise<void>;
  /** Starts it again on the same port; with `persistence: 'none'` (default) empty, in a fresh directory. */
  resume(options?: StartRedisOptions): Promise<void>;
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

export interface StartRedisOptions {
  startTimeoutMs?: number;
  /** `none` (default: fast, nothing written) or `aof` (appendonly yes, fsync every second), as a production
   * Redis would run; the service refuses a Redis without persistence unless told otherwise. */
  persistence?: 'none' | 'aof';
}

function persistenceArgs(p: StartRedisOptions['persistence']): string[] {
  return p === 'aof' ? ['--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--save', '', '--appendonly', 'no'];
}

/** Starts redis-server on `port` in `dir`; resolves with its process once it answers PING. */
async function spawnRedis(port: number, dir: string, options: StartRedisOptions): Promise<ChildProcess | undefined> {
  const logFile = join(dir, 'redis.log');
  const child = spawn(
    REDIS_BIN,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...persistenceArgs(options.persistence), '--logfile', logFile, '--daemonize', 'no', '--protected-mode', 'yes'],
    { stdio: 'ignore' },
  );
  live.add(child);
  child.once('exit', () => live.delete(child));
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    if (await answersPing(port)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  return undefined;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(killer);
}

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisHandle> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let dir = mkdtempSync(join(tmpdir(), 'vbmd-redis-'));
    let child = await spawnRedis(port, dir, options);
    if (child) {
      const handle: RedisHandle = {
        url: `redis://127.0.0.1:${port}`,
        port,
        pid: child.pid!,
        dir,
        pause: () => stopProcess(child!),
        resume: async (again = {}) => {
          // Without persistence a restarted Redis starts empty: a fresh directory, so no old file is loaded.
          if ((again.persistence ?? 'none') === 'none') {
            rmSync(dir, { recursive: true, force: true });
            dir = mkdtempSync(join(tmpdir(), 'vbmd-redis-'));
            handle.dir = dir;
          }
          const next = await spawnRedis(port, dir, { ...options, ...again });
          if (!next) throw new Error(`redis-server did not restart on 127.0.0.1:${port}`);
          child = next;
          handle.pid = next.pid!;
        },
        stop: async () => {
          await stopProcess(child!);
          rmSync(dir, { recursive: true, force: true });
        },
      };
      return handle;
    }
    let tail = '';
    try {
      tail = readFileSync(join(dir, 'redis.log'), 'utf8').slice(-2000);
    } catch {
      /* no log yet */
    }
    rmSync(dir, { recursive: true, force: true });
    if (attempt === 2) throw new Error(`redis-server did not start on 127.0.0.1:${port}: ${tail}`);
  }
  throw new Error('unreachable');
}
