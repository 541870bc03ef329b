/**
 * A real Orthanc PACS (with its DICOMweb plugin) for integration tests and benches.
 *
 * ```ts
 * const pacs = await startOrthanc();                 // free loopback port, temp storage, DICOMweb on
 * await pacs.upload(['/tmp/x/1.dcm', buffer]);       // POST /instances (files or Part-10 buffers)
 * await pacs.stow(buffers);                          // STOW-RS (POST /dicom-web/studies)
 * const src = new DicomWebSource({ baseUrl: pacs.dicomWebUrl, allowInsecureHttp: true });
 * await pacs.stop();                                 // SIGTERM by pid, SIGKILL after 10 s, temp dir removed
 * ```
 *
 * - Runs `/usr/sbin/Orthanc CONFIG.json` (Debian `orthanc` + `orthanc-dicomweb`) with a generated JSON config:
 *   HTTP on a probed free 127.0.0.1 port, `RemoteAccessAllowed:false` (loopback only), DICOM (C-STORE) off,
 *   storage and index in a fresh directory under os.tmpdir(). Startup is retried on another port if the
 *   probed one was taken meanwhile.
 * - `options.users` turns HTTP basic authentication on (for 401 tests); the helper methods then send the
 *   first user's credentials themselves.
 * - Readiness: polls `GET /system` until it answers 200 (Orthanc logs go to `orthanc.log` in the temp dir and
 *   their tail is included in the error if it does not come up).
 * - `stop()` is idempotent; a process `exit` hook kills a forgotten Orthanc by its own pid so a crashed test
 *   run never leaves one behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
export const ORTHANC_DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface StartOrthancOptions {
  /** Basic-auth users (`{ name: password }`); enables `AuthenticationEnabled`. */
  users?: Record<string, string>;
  /** Extra top-level Orthanc configuration merged over the defaults. */
  extraConfig?: Record<string, unknown>;
  /** How long to wait for `GET /system` to answer (default 30 s). */
  startTimeoutMs?: number;
  /** Extra environment of the Orthanc process (its Lua scripts read it with os.getenv). */
  env?: Record<string, string>;
}

export interface UploadedInstance {
  /** Orthanc's own id of the instance, and of its parents (for /modify, /studies/{id}, ...). */
  ID: string;
  ParentPatient: string;
  ParentStudy: string;
  ParentSeries: string;
  Status: string;
}

export interface OrthancHandle {
  /** e.g. http://127.0.0.1:41234 (Orthanc REST API). */
  baseUrl: string;
  /** e.g. http://127.0.0.1:41234/dicom-web (no trailing slash). */
  dicomWebUrl: string;
  port: number;
  pid: number;
  /** The temp directory holding the config, storage and `orthanc.log`. */
  dir: string;
  /** Basic credentials the helpers use when `users` was given. */
  credentials?: { username: string; password: string };
  /** Upload Part-10 files (paths) or buffers through `POST /instances`, in order. */
  upload(items: ReadonlyArray<string | Uint8Array>): Promise<UploadedInstance[]>;
  /** Upload Part-10 buffers in one STOW-RS request (`POST /dicom-web/studies`); returns the response JSON. */
  stow(items: ReadonlyArray<Uint8Array>): Promise<unknown>;
  /** Call the Orthanc REST API (JSON in/out); throws with the body on a non-2xx status. */
  rest<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Raw REST call returning the bytes (e.g. `GET /instances/{id}/file`). */
  restBytes(method: string, path: string, body?: unknown): Promise<Buffer>;
  /** Last ~4 KB of Orthanc's log, for failure messages. */
  logTail(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) if (c.pid !== undefined && c.exitCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function startOrthanc(options: StartOrthancOptions = {}): Promise<OrthancHandle> {
  for (const p of [ORTHANC_BIN, ORTHANC_DICOMWEB_PLUGIN]) {
    if (!existsSync(p)) throw new Error(`Orthanc tests need ${p}: run  sudo apt-get install -y orthanc orthanc-dicomweb`);
  }
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (e) {
      lastError = e;
      // Most likely the probed port was taken between probe and bind: try another one.
    }
  }
  throw lastError;
}

async function startOnce(options: StartOrthancOptions): Promise<OrthancHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'vbmd-orthanc-'));
  const port = await freeLoopbackPort();
  const users = options.users;
  const config = {
    Name: `vbmd-test-${randomUUID().slice(0, 8)}`,
    StorageDirectory: join(dir, 'db'),
    IndexDirectory: join(dir, 'db'),
    HttpPort: port,
    HttpServerEnabled: true,
    DicomServerEnabled: false,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: users !== undefined,
    RegisteredUsers: users ?? {},
    // Tests read what they wrote: no compression of storage, no HTTP gzip (curl/our client do not ask for it).
    StorageCompression: false,
    HttpCompressionEnabled: false,
    SaveJobs: false,
    // `/modify` with Keep:[SOPInstanceUID] (transcoding in place) replaces the stored instance.
    OverwriteInstances: true,
    ConcurrentJobs: 2,
    HttpThreadsCount: 8,
    Plugins: [ORTHANC_DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Host: '127.0.0.1', Ssl: false },
    ...options.extraConfig,
  };
  const configPath = join(dir, 'orthanc.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const logPath = join(dir, 'orthanc.log');
  writeFileSync(logPath, '');
  const { openSync, closeSync } = await import('node:fs');
  const logFd = openSync(logPath, 'a');
  const child = spawn(ORTHANC_BIN, [configPath], {
    cwd: dir,
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    stdio: ['ignore', logFd, logFd],
    detached: false,
  });
  closeSync(logFd);
  installExitHook();
  live.add(child);
  const pid = child.pid;
  const baseUrl = `http://127.0.0.1:${port}`;
  const credentials = users
    ? { username: Object.keys(users)[0], password: users[Object.keys(users)[0]] }
    : undefined;
  const authHeader: Record<string, string> = credentials
    ? { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` }
    : {};

  const logTail = (): string => {
    try {
      const t = readFileSync(logPath, 'utf8');
      return t.slice(-4000);
    } catch {
      return '';
    }
  };

  let stopped = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null && pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const killed = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!killed) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await Promise.race([exited, sleep(5_000)]);
      }
    }
    live.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };

  if (pid === undefined) {
    await stop();
    throw new Error(`Could not start ${ORTHANC_BIN}.`);
  }

  // Wait until the REST API answers (or the process dies).
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  let ready = false;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const r = await fetch(`${baseUrl}/system`, { headers: authHeader, signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.ok || (users !== undefined && r.status === 401)) {
        ready = r.ok;
        if (ready) break;
      }
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  if (!ready) {
    const tail = logTail();
    await stop();
    throw new Error(`Orthanc did not come up on port ${port}. Log tail:\n${tail}`);
  }

  const rawRest = async (method: string, path: string, body?: unknown): Promise<Response> => {
    let payload: BodyInit | undefined;
    const headers: Record<string, string> = { ...authHeader };
    if (body instanceof Uint8Array) {
      payload = new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength);
      headers['content-type'] = 'application/dicom';
    } else if (typeof body === 'string') {
      payload = body;
      headers['content-type'] = 'text/plain';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const r = await fetch(`${baseUrl}${path}`, { method, headers, body: payload });
    if (!r.ok) {
      const text = await r.text().catch(() => '');
      throw new Error(`Orthanc ${method} ${path} answered ${r.status}: ${text.slice(0, 500)}`);
    }
    return r;
  };
  const rest = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await rawRest(method, path, body);
    const text = await r.text();
    return (text ? JSON.parse(text) : undefined) as T;
  };
  const restBytes = async (method: string, path: string, body?: unknown): Promise<Buffer> => {
    const r = await rawRest(method, path, body);
    return Buffer.from(await r.arrayBuffer());
  };

  const upload = async (items: ReadonlyArray<string | Uint8Array>): Promise<UploadedInstance[]> => {
    const out: UploadedInstance[] = [];
    for (const item of items) {
      const bytes = typeof item === 'string' ? await readFile(item) : item;
      out.push(await rest<UploadedInstance>('POST', '/instances', bytes));
    }
    return out;
  };

  const stow = async (items: ReadonlyArray<Uint8Array>): Promise<unknown> => {
    const boundary = `vbmd-${randomUUID()}`;
    const chunks: Buffer[] = [];
    for (const item of items) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${item.byteLength}\r\n\r\n`));
      chunks.push(Buffer.from(item.buffer, item.byteOffset, item.byteLength));
      chunks.push(Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    const r = await fetch(`${baseUrl}/dicom-web/studies`, {
      method: 'POST',
      headers: {
        ...authHeader,
        'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
        accept: 'application/dicom+json',
      },
      body: Buffer.concat(chunks),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`STOW-RS to Orthanc answered ${r.status}: ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : undefined;
  };

  return {
    baseUrl,
    dicomWebUrl: `${baseUrl}/dicom-web`,
    port,
    pid,
    dir,
    credentials,
    upload,
    stow,
    rest,
    restBytes,
    logTail,
    stop,
  };
}
