import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentiles, runOpenLoop } from '../bench/open-loop.js';

/**
 * The CDS Hooks bench's load generator (test/bench/open-loop.ts) must measure what README.md "Performance" reports:
 * an even, open-loop offered rate, with time lost to a stalled server counted (coordinated omission). Only lower
 * bounds and counts are asserted: a busy machine can make latencies longer, never shorter.
 */
let server: Server;
let port: number;
const arrivals: number[] = [];
const auths: string[] = [];
let stallMs = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    arrivals.push(performance.now());
    auths.push(req.headers.authorization ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (stallMs > 0) {
        // Block the event loop, as a long GC pause or a slow synchronous step would.
        const until = performance.now() + stallMs;
        stallMs = 0;
        while (performance.now() < until);
      }
      const body = JSON.stringify({ bytes: Buffer.concat(chunks).length, auth: req.headers.authorization ?? '' });
      res.writeHead(req.url === '/missing' ? 404 : 200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...(req.url === '/close' ? { connection: 'close' } : {}),
      });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const body = Buffer.alloc(15_000, 0x20);

describe('open-loop load generator', () => {
  it('sends every request on its own schedule, evenly spaced, with its own header line', async () => {
    arrivals.length = 0;
    auths.length = 0;
    const r = await runOpenLoop({ host: '127.0.0.1', port, method: 'POST', path: '/x', body, headersFor: (i) => `authorization: Bearer t${i}`, rate: 100, seconds: 1 });
    expect(r.scheduled).toBe(100);
    expect(r.ok).toBe(100);
    expect(r.errors + r.timeouts + r.non2xx).toBe(0);
    expect(arrivals).toHaveLength(100);
    expect(new Set(auths).size).toBe(100);
    expect(auths).toContain('Bearer t99');
    // 100 req/s is one every 10 ms: the server sees them spread over the second, not in a burst (autocannon's
    // overallRate put a whole second's requests into its first ~50 ms).
    const spanMs = arrivals.at(-1)! - arrivals[0]!;
    expect(spanMs).toBeGreaterThan(900);
    const gaps = Float64Array.from(arrivals.slice(1).map((t, i) => t - arrivals[i]!));
    expect(percentiles(gaps).p50).toBeGreaterThan(5);
    // Latencies are kept at sub-millisecond resolution, not rounded to whole ms.
    expect(r.latencyMs.p50 % 1).not.toBe(0);
    expect(r.serviceMs.p50).toBeLessThanOrEqual(r.latencyMs.p50);
  });

  it('counts the time a stalled server makes later requests wait, from their scheduled send time', async () => {
    stallMs = 0;
    const warm = await runOpenLoop({ host: '127.0.0.1', port, method: 'POST', path: '/x', body, headersFor: () => 'x-a: 1', rate: 200, seconds: 0.2 });
    expect(warm.ok).toBe(40);
    stallMs = 300; // the first request of the next run stalls the server for 300 ms
    const r = await runOpenLoop({ host: '127.0.0.1', port, method: 'POST', path: '/x', body, headersFor: () => 'x-a: 1', rate: 200, seconds: 1 });
    expect(r.ok).toBe(200);
    // Requests due during the stall (200/s x 0.3 s = 60) cannot be answered before it ends: the first waited
    // the whole 300 ms, the later ones less. Measured from their scheduled times, more than 1% of all
    // requests take >= 150 ms, so p99 shows the stall; a closed-loop client would have sent fewer requests
    // meanwhile and hidden it.
    expect(r.latencyMs.max).toBeGreaterThanOrEqual(290);
    expect(r.latencyMs.p99).toBeGreaterThanOrEqual(150);
    expect(r.connectionsUsed).toBeGreaterThan(8);
  });

  it('reports non-2xx answers separately from successes', async () => {
    const r = await runOpenLoop({ host: '127.0.0.1', port, method: 'GET', path: '/missing', body: Buffer.alloc(0), headersFor: () => 'x-a: 1', rate: 100, seconds: 0.2 });
    expect(r.non2xx).toBe(20);
    expect(r.ok).toBe(0);
    expect(r.statusCounts[404]).toBe(20);
  });

  it('does not reuse a connection the server closes after its answer', async () => {
    const r = await runOpenLoop({ host: '127.0.0.1', port, method: 'POST', path: '/close', body, headersFor: () => 'x-a: 1', rate: 100, seconds: 0.3, connections: 2 });
    expect(r.ok).toBe(30);
    expect(r.errors + r.timeouts).toBe(0);
  });
});
