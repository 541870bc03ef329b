import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A small open-loop HTTP/1.1 load generator for benches (wrk2's model, written here because wrk2 is not in
 * Debian and autocannon's `overallRate` is not open-loop; see cds-hooks.bench.ts for what went wrong):
 *
 * - Request i is due at `t0 + i / rate` (a fixed schedule, decided before the run), whatever happened to
 *   earlier requests. Latency is measured from that SCHEDULED time, so time a request spends waiting because
 *   the server (or the generator) fell behind is counted: coordinated omission is accounted for by
 *   construction, not by a statistical correction after the fact.
 * - Keep-alive connections, opened before the run; a request goes out on an idle one. When none is idle a new
 *   one is opened (up to `maxConnections`, its connect time counts against the request) or the request waits
 *   for one (counted too).
 * - Header and body leave in one `writev` (cork/uncork) on a no-delay socket: no Nagle / delayed-ACK stall.
 *   The header is a short string per request (it carries that request's token); the body Buffer is shared.
 * - Every latency is kept as a double in ms (performance.now(), sub-microsecond), so percentiles are exact
 *   order statistics, not buckets of a 1 ms histogram.
 * - Send lag (actual write - scheduled time) is reported on its own: it is the generator's timer jitter
 *   (Node timers fire on a 1 ms tick), part of every latency, and tells whether the generator kept up.
 */
export interface OpenLoopOptions {
  host: string;
  port: number;
  method: 'POST' | 'GET';
  path: string;
  /** Extra header lines for request i, e.g. `authorization: Bearer ...` (without CRLF). */
  headersFor: (i: number) => string;
  body: Buffer;
  contentType?: string;
  rate: number;
  seconds: number;
  /** Connections opened before the schedule starts (default 8). */
  connections?: number;
  /** Most connections ever open (default 256). */
  maxConnections?: number;
  /** A request not answered this long after its scheduled time is a timeout (default 10 s). */
  timeoutMs?: number;
}

export interface OpenLoopResult {
  offeredRate: number;
  scheduled: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Completed responses per second over the run (first scheduled send to last response). */
  achievedRate: number;
  /** Latency from the scheduled send time, ms, all answered requests (2xx and not). */
  latencyMs: Percentiles;
  /** From the actual write to the end of the response, ms (no queueing in the generator). */
  serviceMs: Percentiles;
  /** Actual write - scheduled time, ms. */
  sendLagMs: Percentiles;
  /** Most connections open at once. */
  connectionsUsed: number;
  /** CPU time of this (generator) process during the run, ms. */
  generatorCpuMs: number;
  statusCounts: Record<number, number>;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function percentiles(values: Float64Array): Percentiles {
  const s = Float64Array.from(values).sort();
  const at = (q: number): number => (s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!);
  let sum = 0;
  for (const v of s) sum += v;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: s.length ? s[s.length - 1]! : Number.NaN, mean: sum / s.length };
}

interface Pending {
  i: number;
  sentAt: number;
}

/** One keep-alive connection with a minimal response parser (status, Content-Length or chunked). */
class Connection {
  readonly socket: Socket;
  busy: Pending | undefined;
  alive = true;
  closing = false;
  readonly ready: Promise<void>;
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    host: string,
    port: number,
    private readonly onResponse: (c: Connection, p: Pending, status: number) => void,
    private readonly onFail: (c: Connection, p: Pending | undefined) => void,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.ready.catch(() => undefined);
    this.socket.on('data', (d: Buffer) => this.data(d));
    const fail = (): void => {
      if (!this.alive) return;
      this.alive = false;
      const p = this.busy;
      this.busy = undefined;
      this.onFail(this, p);
    };
    this.socket.on('error', fail);
    this.socket.on('close', fail);
  }

  send(p: Pending, head: string, body: Buffer): void {
    this.busy = p;
    this.socket.cork();
    this.socket.write(head, 'latin1');
    if (body.length) this.socket.write(body);
    this.socket.uncork();
  }

  private data(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let total: number;
    if (cl) {
      total = end + 4 + Number(cl[1]);
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const last = this.buf.indexOf('\r\n0\r\n\r\n', end);
      if (last < 0) return;
      total = last + 7;
    } else {
      total = end + 4; // no body (e.g. 204)
    }
    if (this.buf.length < total) return;
    if (this.buf.length > total) throw new Error('open-loop: bytes after the response on a connection with one request in flight');
    this.buf = Buffer.alloc(0);
    const p = this.busy;
    this.busy = undefined;
    // A server that closes after this answer: not reused; its 'close' takes it out of the pool.
    this.closing = /\r\nconnection:\s*close/i.test(head);
    if (p) this.onResponse(this, p, status);
    if (this.closing) this.socket.destroy();
  }

  close(): void {
    this.alive = false;
    this.socket.destroy();
  }
}

export async function runOpenLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const n = Math.round(o.rate * o.seconds);
  const intervalMs = 1000 / o.rate;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const maxConnections = o.maxConnections ?? 256;
  const scheduledAt = new Float64Array(n);
  const sentAt = new Float64Array(n).fill(Number.NaN);
  const doneAt = new Float64Array(n).fill(Number.NaN);
  const status = new Uint16Array(n);
  const failed = new Uint8Array(n);
  let errors = 0;
  let completed = 0;
  const statusCounts: Record<number, number> = {};
  const idle: Connection[] = [];
  const all = new Set<Connection>();
  const waiting: number[] = [];
  let connectionsUsed = 0;
  const prefix = `${o.method} ${o.path} HTTP/1.1\r\nhost: ${o.host}:${o.port}\r\ncontent-type: ${o.contentType ?? 'application/json'}\r\ncontent-length: ${o.body.length}\r\n`;

  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const settle = (): void => {
    if (++completed === n) finish();
  };

  const onResponse = (c: Connection, p: Pending, code: number): void => {
    doneAt[p.i] = performance.now();
    status[p.i] = code;
    statusCounts[code] = (statusCounts[code] ?? 0) + 1;
    settle();
    if (!c.closing) release(c);
  };
  const onFail = (c: Connection, p: Pending | undefined): void => {
    all.delete(c);
    const k = idle.indexOf(c);
    if (k >= 0) idle.splice(k, 1);
    if (p) {
      errors++;
      failed[p.i] = 1;
      settle();
    }
    if (waiting.length) dispatchOnNew();
  };
  const open = (): Connection => {
    const c = new Connection(o.host, o.port, onResponse, onFail);
    all.add(c);
    connectionsUsed = Math.max(connectionsUsed, all.size);
    return c;
  };
  const write = (c: Connection, i: number): void => {
    const now = performance.now();
    sentAt[i] = now;
    c.send({ i, sentAt: now }, `${prefix}${o.headersFor(i)}\r\n\r\n`, o.body);
  };
  const release = (c: Connection): void => {
    const i = waiting.shift();
    if (i !== undefined) write(c, i);
    else idle.push(c);
  };
  const dispatchOnNew = (): void => {
    if (all.size >= maxConnections) return;
    const c = open();
    c.ready.then(
      () => {
        if (c.alive) release(c);
      },
      () => undefined,
    );
  };
  const dispatch = (i: number): void => {
    const c = idle.pop();
    if (c) return write(c, i);
    waiting.push(i);
    dispatchOnNew();
  };

  for (let k = 0; k < (o.connections ?? 8); k++) open();
  await Promise.all([...all].map((c) => c.ready));
  idle.push(...all);

  const cpu0 = process.cpuUsage();
  const t0 = performance.now() + 20;
  for (let i = 0; i < n; i++) scheduledAt[i] = t0 + i * intervalMs;
  let next = 0;
  const tick = (): void => {
    const now = performance.now();
    while (next < n && scheduledAt[next]! <= now) dispatch(next++);
    if (next < n) setTimeout(tick, Math.max(0, scheduledAt[next]! - performance.now()));
  };
  setTimeout(tick, 20);
  const deadline = setTimeout(() => finish(), o.seconds * 1000 + 20 + timeoutMs);
  await finished;
  clearTimeout(deadline);
  const cpu = process.cpuUsage(cpu0);
  for (const c of all) c.close();

  const lat: number[] = [];
  const svc: number[] = [];
  const lag: number[] = [];
  let ok = 0;
  let non2xx = 0;
  let timeouts = 0;
  let lastDone = t0;
  for (let i = 0; i < n; i++) {
    if (!Number.isNaN(sentAt[i]!)) lag.push(sentAt[i]! - scheduledAt[i]!);
    if (failed[i]) continue;
    if (Number.isNaN(doneAt[i]!)) {
      timeouts++;
      continue;
    }
    const l = doneAt[i]! - scheduledAt[i]!;
    if (l > timeoutMs) {
      timeouts++;
      continue;
    }
    lastDone = Math.max(lastDone, doneAt[i]!);
    lat.push(l);
    svc.push(doneAt[i]! - sentAt[i]!);
    if (status[i]! >= 200 && status[i]! < 300) ok++;
    else non2xx++;
  }
  return {
    offeredRate: o.rate,
    scheduled: n,
    ok,
    non2xx,
    errors,
    timeouts,
    achievedRate: (ok + non2xx) / ((lastDone - t0) / 1000),
    latencyMs: percentiles(Float64Array.from(lat)),
    serviceMs: percentiles(Float64Array.from(svc)),
    sendLagMs: percentiles(Float64Array.from(lag)),
    connectionsUsed,
    generatorCpuMs: (cpu.user + cpu.system) / 1000,
    statusCounts,
  };
}
