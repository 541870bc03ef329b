/**
 * CDS Hooks patient-view under load (`npm run bench -- cds-hooks`). The service runs in its own process (as
 * in production); this process plays the EHR, sending patient-view with a realistic prefetch (6 results with
 * per-level components + 1 RiskAssessment, ~15 KB) and a fresh ES384 client JWT on every call (signed before
 * the run, each used once: unique jti, so the replay check is real work too).
 *
 * 1. Offered 200 req/s for 30 s, open loop: p50/p99/max, errors. Target p99 <= 20 ms, no errors.
 * 2. The same load on a bare express route (JSON body parsed, fixed answer, no JWT check) in the same server
 *    process: the floor of express + loopback + generator on this machine.
 * 3. Increasing offered rates, 10 s each, until p99 > 100 ms or errors: the highest sustained rate.
 *
 * Why the load generator is our own (open-loop.ts) and not autocannon. This bench first used autocannon 9
 * with `overallRate: 200` over 64 connections and reported p99 180 ms for patient-view and 75 ms for the bare
 * route, a route that costs the server 0.1-0.4 ms of CPU. Checked against autocannon's source
 * (lib/httpClient.js, lib/run.js) and by logging arrival times in a server, the numbers measured autocannon:
 * - `overallRate` is not a schedule. Each connection gets rate/connections (~3) requests per second, sends
 *   them back to back as soon as each answer arrives, then pauses until its own 1 s setInterval resets the
 *   count. All 64 intervals start together, so the whole second's 200 requests hit the server in one burst:
 *   1089 arrivals in 5 s fell 623 in the first 50 ms of each second, 28 in the next 50 ms, none in the other
 *   900 ms (median inter-arrival 0.12 ms). The server then works through a queue of up to 64 requests, and
 *   that queue is what p99 measured: a closed-loop burst test, not an offered 200 req/s.
 * - Its coordinated-omission correction calls `recordValueWithExpectedInterval(latency, Math.ceil(1 / rate))`
 *   with rate in requests per SECOND per connection, so the expected interval is ceil(1/3) = 1 ms instead of
 *   333 ms: every answer taking L ms adds L-1 synthetic samples. 99 answers of 2 ms + one of 100 ms give
 *   p99 98 ms. Long latencies are multiplied, short ones are not.
 * - Its latency histogram records integer milliseconds (0.4 ms is recorded as 0, 1.7 ms as 1), too coarse
 *   for a floor below 1 ms.
 * - With `setupRequest` (a different token per call) it rebuilds the 15 KB request buffer per call in the
 *   same process, which adds allocation and GC to the client but was not the main error.
 * Also checked: the JWT pre-signing is awaited before each run (it never overlaps a run), and the generator
 * and the server are separate processes.
 *
 * So the generator here follows wrk2's model: a fixed schedule of send times at the offered rate, latency
 * measured from the SCHEDULED time (queueing anywhere is counted, which is the honest form of the
 * coordinated-omission correction), keep-alive no-delay sockets, header + body in one writev, exact
 * percentiles from every sample (performance.now(), sub-microsecond). It reports separately the service time
 * (from the actual write) and the generator's send lag (timer jitter, part of every latency), the server's
 * CPU per request (process.cpuUsage in the server), the generator's CPU, the server-side inter-arrival
 * times (proof that the load arrives evenly), the load average, and from /proc/PID/task/TID/schedstat how long
 * the server and the generator were runnable but waiting for a CPU per request: 2 cores are shared with other
 * work here, and that wait is the part of the latency the service cannot do anything about.
 *
 * Environment: BENCH_SECONDS (30) for the 200 req/s runs, BENCH_STEP_SECONDS (10), BENCH_CPU_PROF=dir to run
 * the server under --cpu-prof, BENCH_AUTOCANNON=1 to also run the old autocannon configuration (overallRate
 * 200 over 64 connections) against the same server, next to the open-loop numbers, to see the difference.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, getPriority, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createServer } from 'node:http';
import express from 'express';
import Database from 'better-sqlite3';
import { createClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import { generateClientKey, signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { loadCtValueSet } from '../../cds-hooks/ct-value-set.js';
import { SqliteFeedbackStore } from '../../cds-hooks/feedback-store.js';
import { MemoryReplayCache } from '../../cds-hooks/replay-cache.js';
import { createCdsHooksRouter } from '../../cds-hooks/router.js';
import { SqliteWatchStore } from '../../src/jobs/watches.js';
import { VBMD_BASIS_CODES, VBMD_LEVEL_CODE, VBMD_SUMMARY_CODE } from '../../src/fhir/codes.js';
import { percentiles, runOpenLoop } from './open-loop.js';
import type { OpenLoopResult } from './open-loop.js';

interface AutocannonResult {
  latency: { p50: number; p99: number; max: number };
  requests: { total: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

// ---------------------------------------------------------------- server role (child process)
if (process.argv.includes('--serve')) {
  const jwk = JSON.parse(process.argv[process.argv.indexOf('--serve') + 1]!) as Record<string, unknown>;
  const iss = process.argv[process.argv.indexOf('--serve') + 2]!;
  const db = new Database(':memory:');
  const app = express();
  app.disable('x-powered-by');
  // Arrival time of every request (a preallocated array: no allocation on the hot path), so the driver can
  // show how evenly the load arrived.
  const arrivals = new Float64Array(200_000);
  let nArrivals = 0;
  app.use((_req, _res, next) => {
    if (nArrivals < arrivals.length) arrivals[nArrivals++] = performance.now();
    next();
  });
  app.post('/bare', express.json({ limit: '5mb' }), (_req, res) => void res.json({ cards: [] }));
  // Bound before the router is built: JWT aud is checked against the base URL, never the Host header.
  const server = createServer();
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port;
    app.use(
      createCdsHooksRouter({
        verifier: createClientJwtVerifier({ clients: [{ iss, jwks: { keys: [jwk] } }], replayCache: new MemoryReplayCache(), maxLifetimeS: 3600 }),
        publicBaseUrl: `http://127.0.0.1:${port}`,
        valueSet: loadCtValueSet(),
        declinePctPerYear: 5,
        watches: new SqliteWatchStore(db),
        watchTtlMs: 3600_000,
        feedback: new SqliteFeedbackStore(db),
      }),
    );
    server.on('request', app);
    process.stdout.write(`PORT ${port}\n`);
  });
  server.keepAliveTimeout = 65_000;
  // Commands on stdin: "cpu" -> CPU time so far (us); "arrivals" -> inter-arrival stats since the last call.
  process.stdin.on('data', (d: Buffer) => {
    const cmd = d.toString();
    if (cmd.includes('cpu')) {
      const u = process.cpuUsage();
      process.stdout.write(`CPU ${u.user + u.system}\n`);
    }
    if (cmd.includes('arrivals')) {
      const gaps = new Float64Array(Math.max(0, nArrivals - 1));
      let maxIn10 = 0;
      for (let i = 1, lo = 0; i < nArrivals; i++) {
        gaps[i - 1] = arrivals[i]! - arrivals[i - 1]!;
        while (arrivals[i]! - arrivals[lo]! > 10) lo++;
        maxIn10 = Math.max(maxIn10, i - lo + 1);
      }
      const p = percentiles(gaps);
      nArrivals = 0;
      process.stdout.write(`ARR ${JSON.stringify({ n: gaps.length + 1, p1: percentiles(gaps.map((g) => -g)).p99 * -1, p50: p.p50, p99: p.p99, maxIn10 })}\n`);
    }
  });
  process.on('SIGTERM', () => process.exit(0));
} else {
  await main();
}

function prefetchBody(): string {
  const dates = ['2022-06-01', '2023-01-10', '2023-09-15', '2024-05-02', '2025-02-20', '2025-11-03'];
  const values = [131.2, 122.8, 110.4, 101.0, 88.7, 76.3];
  const observations = dates.map((d, i) => ({
    resourceType: 'Observation',
    id: `obs-${i}`,
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging' }] }],
    code: { coding: [{ ...VBMD_SUMMARY_CODE }], text: 'Vertebral trabecular vBMD (QCT from CT)' },
    subject: { reference: 'Patient/bench-1' },
    effectiveDateTime: `${d}T10:00:00Z`,
    issued: `${d}T13:00:00Z`,
    valueQuantity: { value: values[i], unit: 'mg/cm3', system: 'http://unitsofmeasure.org', code: 'mg/cm3' },
    method: { coding: [{ ...VBMD_BASIS_CODES.lumbar }] },
    bodySite: { text: 'L1-L2' },
    derivedFrom: [{ identifier: { system: 'urn:dicom:uid', value: `urn:oid:1.2.826.0.1.3680043.8.498.${i + 1}` } }],
    component: ['T11', 'T12', 'L1', 'L2', 'L3'].map((level, j) => ({
      code: { coding: [{ ...VBMD_LEVEL_CODE }], text: level },
      valueQuantity: { value: values[i]! + j - 2, unit: 'mg/cm3', system: 'http://unitsofmeasure.org', code: 'mg/cm3' },
    })),
  }));
  const risk = {
    resourceType: 'RiskAssessment',
    id: 'ra-5',
    status: 'final',
    subject: { reference: 'Patient/bench-1' },
    basis: [{ reference: 'Observation/obs-5' }],
    prediction: [
      {
        outcome: { coding: [{ system: 'http://snomed.info/sct', code: '64859006' }] },
        qualitativeRisk: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/risk-probability', code: 'high' }] },
      },
    ],
  };
  const searchset = (rs: object[]) => ({ resourceType: 'Bundle', type: 'searchset', total: rs.length, entry: rs.map((resource) => ({ resource })) });
  return JSON.stringify({
    hook: 'patient-view',
    hookInstance: randomUUID(),
    fhirServer: 'https://ehr.example.org/fhir',
    context: { userId: 'Practitioner/bench', patientId: 'bench-1' },
    prefetch: { vbmdObservations: searchset(observations.reverse()), riskAssessments: searchset([risk]) },
  });
}

async function signTokens(key: CdsClientKey, aud: string, n: number): Promise<string[]> {
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = await signClientJwt(key, aud, 1800);
  return out;
}

function ms(x: number, w = 6): string {
  return (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)).padStart(w);
}
function load(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/**
 * Linux scheduler accounting of a process, all threads (/proc/PID/task/TID/schedstat: ns on a CPU, ns
 * runnable but waiting for one). The wait is the part of every latency that other work on the machine
 * causes; zeros where /proc is not there.
 */
function schedstat(pid: number): { runMs: number; waitMs: number } {
  let run = 0;
  let wait = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const [r, w] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      run += r ?? 0;
      wait += w ?? 0;
    }
  } catch {
    // not Linux, or a thread ended between the listing and the read: the totals are then approximate
  }
  return { runMs: run / 1e6, waitMs: wait / 1e6 };
}

interface Measured {
  r: OpenLoopResult;
  /** Server CPU per answered request (process.cpuUsage in the server: main thread + threadpool). */
  cpu: number;
  /** Server time runnable but waiting for a CPU, per answered request. */
  serverWait: number;
  /** The same for this (generator) process. */
  generatorWait: number;
}

function line(label: string, m: Measured): string {
  const { r, cpu: serverCpuMsPerReq } = m;
  const l = r.latencyMs;
  return (
    `${label.padEnd(26)} offered ${String(r.offeredRate).padStart(4)}/s achieved ${r.achievedRate.toFixed(0).padStart(4)}/s` +
    `  p50 ${ms(l.p50)} p90 ${ms(l.p90)} p99 ${ms(l.p99)} p99.9 ${ms(l.p999)} max ${ms(l.max)} ms` +
    `  errors ${r.errors + r.timeouts} non-2xx ${r.non2xx}  server CPU ${serverCpuMsPerReq.toFixed(2)} ms/req` +
    `  | service p50 ${ms(r.serviceMs.p50, 5)} p99 ${ms(r.serviceMs.p99, 5)}  send lag p50 ${ms(r.sendLagMs.p50, 4)} p99 ${ms(r.sendLagMs.p99, 4)}` +
    `  conns ${r.connectionsUsed}  gen CPU ${(r.generatorCpuMs / r.scheduled).toFixed(2)} ms/req` +
    `  | waiting for a CPU: server ${m.serverWait.toFixed(2)} gen ${m.generatorWait.toFixed(2)} ms/req`
  );
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 30);
  const stepSeconds = Number(process.env.BENCH_STEP_SECONDS ?? 10);
  const key = await generateClientKey('https://ehr.bench');
  const prof = process.env.BENCH_CPU_PROF;
  const child = spawn(
    process.execPath,
    [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), '--import', 'tsx', new URL(import.meta.url).pathname, '--serve', JSON.stringify(key.publicJwk), key.iss],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /PORT (\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (c) => reject(new Error(`bench server exited with ${c}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const path = '/cds-services/vbmd-patient-view';
    const aud = `${base}${path}`;
    const bodyText = prefetchBody();
    const body = Buffer.from(bodyText);
    console.log(
      `patient-view request body ${body.length} bytes; ${cpus().length} CPUs; server in its own process (pid ${child.pid}, nice ${getPriority(child.pid!)}), generator in this one (pid ${process.pid}, nice ${getPriority()})`,
    );

    // Correctness first: one call must give the warning card.
    const one = await fetch(aud, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, aud)}` }, body: bodyText });
    const card = ((await one.json()) as { cards: { indicator: string; summary: string }[] }).cards[0];
    console.log(`check: HTTP ${one.status}, card [${card?.indicator}] ${card?.summary}`);
    if (one.status !== 200 || card?.indicator !== 'warning') throw new Error('patient-view did not return the expected warning card');

    const replies: { cpu?: (us: number) => void; arr?: (s: string) => void } = {};
    child.stdout!.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) {
        const c = /^CPU (\d+)/.exec(l);
        if (c && replies.cpu) replies.cpu(Number(c[1]));
        const a = /^ARR (.*)/.exec(l);
        if (a && replies.arr) replies.arr(a[1]!);
      }
    });
    const serverCpuUs = (): Promise<number> => new Promise((resolve) => ((replies.cpu = resolve), child.stdin!.write('cpu\n')));
    const arrivalStats = async (): Promise<string> => {
      const s = await new Promise<string>((resolve) => ((replies.arr = resolve), child.stdin!.write('arrivals\n')));
      const a = JSON.parse(s) as { n: number; p1: number | null; p50: number | null; p99: number | null; maxIn10: number };
      if (a.n < 2 || a.p1 === null || a.p50 === null || a.p99 === null) return `server saw ${a.n} arrivals`;
      return `server saw ${a.n} arrivals, inter-arrival p1 ${a.p1.toFixed(2)} p50 ${a.p50.toFixed(2)} p99 ${a.p99.toFixed(2)} ms, at most ${a.maxIn10} in any 10 ms`;
    };

    /** One open-loop run with tokens signed beforehand; returns the result and server CPU ms per request. */
    const measure = async (route: string, rate: number, secs: number, tokens: string[]): Promise<Measured> => {
      (globalThis as { gc?: () => void }).gc?.(); // the generator starts with a clean heap
      await arrivalStats();
      const s0 = schedstat(child.pid!);
      const g0 = schedstat(process.pid);
      const c0 = await serverCpuUs();
      const r = await runOpenLoop({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: route,
        body,
        headersFor: (i) => `authorization: Bearer ${tokens[i % tokens.length]!}`,
        rate,
        seconds: secs,
      });
      const c1 = await serverCpuUs();
      const s1 = schedstat(child.pid!);
      const g1 = schedstat(process.pid);
      const answered = r.ok + r.non2xx;
      return { r, cpu: (c1 - c0) / 1000 / answered, serverWait: (s1.waitMs - s0.waitMs) / answered, generatorWait: (g1.waitMs - g0.waitMs) / answered };
    };

    let t0 = performance.now();
    const warmTokens = await signTokens(key, aud, 1000);
    await measure(path, 200, 4, warmTokens); // warm-up: JIT, keep-alive
    await measure('/bare', 200, 2, warmTokens);
    const tokens200 = await signTokens(key, aud, Math.ceil(200 * seconds));
    console.log(`pre-signed ${tokens200.length} ES384 client JWTs in ${((performance.now() - t0) / 1000).toFixed(1)} s (before the runs, not during)`);

    console.log(`\nload average before: ${load()} (1/5/15 min, ${cpus().length} CPUs shared with other work: it inflates every latency below)`);
    const main200 = await measure(path, 200, seconds, tokens200);
    console.log(line(`patient-view + JWT, ${seconds} s`, main200));
    console.log(`  ${await arrivalStats()}`);
    const floor = await measure('/bare', 200, seconds, tokens200);
    console.log(line(`bare express (floor) ${seconds} s`, floor));
    console.log(`  ${await arrivalStats()}`);
    console.log(`load average after: ${load()}`);
    const errs = (r: OpenLoopResult): number => r.errors + r.timeouts + r.non2xx;
    const pass200 = main200.r.latencyMs.p99 <= 20 && errs(main200.r) === 0;
    console.log(`target at 200 req/s (p99 <= 20 ms, no errors): ${pass200 ? 'MET' : 'NOT MET'}`);

    if (process.env.BENCH_AUTOCANNON === '1') {
      // The configuration this bench used before (see the top of the file), same server, same moment.
      const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
      const acSeconds = Math.min(seconds, 10);
      console.log(`\nfor comparison, autocannon 9 with overallRate 200 over 64 connections, ${acSeconds} s (load ${load()}):`);
      for (const route of [path, '/bare']) {
        const tokens = await signTokens(key, aud, 200 * acSeconds + 500);
        let next = 0;
        await arrivalStats(); // resets the server's arrival log
        const c0 = await serverCpuUs();
        const r = await autocannon({
          url: base,
          connections: 64,
          duration: acSeconds,
          overallRate: 200,
          timeout: 10,
          requests: [
            {
              method: 'POST',
              path: route,
              headers: { 'content-type': 'application/json' },
              body: bodyText,
              setupRequest: (req: { headers: Record<string, string> }) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]!}` } }),
            },
          ],
        });
        const c1 = await serverCpuUs();
        console.log(
          `  autocannon ${route.padEnd(32)} p50 ${ms(r.latency.p50)} p99 ${ms(r.latency.p99)} max ${ms(r.latency.max)} ms (integer ms, "corrected")  errors ${r.errors + r.timeouts} non-2xx ${r.non2xx}  server CPU ${((c1 - c0) / 1000 / r.requests.total).toFixed(2)} ms/req`,
        );
        console.log(`  ${await arrivalStats()}`);
      }
    }

    console.log(`\nstep test, ${stepSeconds} s per rate (load average now ${load()}):`);
    const sustained = (r: OpenLoopResult): boolean => r.latencyMs.p99 <= 100 && errs(r) === 0;
    let best = sustained(main200.r) ? 200 : 0;
    const rates = best === 200 ? [300, 400, 500, 600, 700, 800, 1000, 1200, 1500] : [150, 100, 50, 25];
    for (const rate of rates) {
      t0 = performance.now();
      const tokens = await signTokens(key, aud, Math.ceil(rate * stepSeconds));
      const signS = (performance.now() - t0) / 1000;
      const m = await measure(path, rate, stepSeconds, tokens);
      const r = m.r;
      console.log(line('patient-view + JWT', m) + `  (signing before: ${signS.toFixed(1)} s; load ${load()})`);
      const ok = sustained(r);
      if (best >= 200) {
        if (!ok) break;
        best = rate;
      } else if (ok) {
        best = rate; // stepping down: the first rate that holds
        break;
      }
    }
    console.log(`\nhighest sustained offered rate (of those tried) with p99 <= 100 ms and no errors: ${best > 0 ? `${best} req/s` : 'none of them'}`);
    console.log(`load average at the end: ${load()}`);
  } finally {
    child.kill('SIGTERM');
  }
}
