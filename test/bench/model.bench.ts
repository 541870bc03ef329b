import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { config } from '../../src/config.js';
import { PATCH_VOXELS } from '../../src/model/contract.js';
import { DEFAULT_MODEL_FILE } from '../../src/model/model-file.js';
import { defaultModelThreads, ModelRunner } from '../../src/model/model-runner.js';
import { fixedNetworkInput, FIXED_VBMD_MG_CM3 } from '../model/fixed-input.js';

/**
 * The model in its worker thread: per-vertebra inference time at batch 1 and at a study's batch (12 levels,
 * a chest-abdomen CT), and the main thread's event-loop delay (perf_hooks monitorEventLoopDelay) while the
 * worker infers. `npm run bench -- model` (VBMD_MODEL_THREADS sets the threads; `npx tsx test/bench/model.bench.ts
 * [rounds] [threads]` for other settings). The machine is shared: the load average is
 * printed next to the numbers, which are noisy when it is high.
 */
const rounds = Number(process.argv[2] ?? 10);
const threads = process.argv[3] ? Number(process.argv[3]) : config().VBMD_MODEL_THREADS;
const STUDY = 12;
const V3 = PATCH_VOXELS ** 3;
const file = config().VBMD_MODEL_FILE ?? DEFAULT_MODEL_FILE;

const base = fixedNetworkInput();
/** Inputs are moved to the worker (detached after each run), so each run gets its own, built before timing. */
function batch(n: number): Float32Array {
  const out = new Float32Array(n * V3);
  for (let i = 0; i < n; i++) out.set(base.subarray((i % FIXED_VBMD_MG_CM3.length) * V3, ((i % FIXED_VBMD_MG_CM3.length) + 1) * V3), i * V3);
  return out;
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.round(p * (s.length - 1)))];
  return `median ${q(0.5).toFixed(1)} ms, min ${s[0].toFixed(1)}, max ${s[s.length - 1].toFixed(1)}`;
}

const load0 = loadavg();
const t0 = performance.now();
const runner = await ModelRunner.start({ file, threads });
const startMs = performance.now() - t0;
console.log(`model ${runner.model.name} ${runner.model.version}, onnxruntime threads ${threads ?? defaultModelThreads()}; start (sha256 + load + probe) ${startMs.toFixed(0)} ms`);

// Warm-up (first runs allocate arenas).
await runner.infer(batch(1), 1);
await runner.infer(batch(STUDY), STUDY);

const one: number[] = [];
const oneWall: number[] = [];
const study: number[] = [];
const studyWall: number[] = [];
const ones = Array.from({ length: rounds }, () => batch(1));
const studies = Array.from({ length: 2 * rounds }, () => batch(STUDY));
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  const a = await runner.infer(ones[r], 1);
  oneWall.push(performance.now() - t);
  one.push(a.runMs);
  t = performance.now();
  const b = await runner.infer(studies[r], STUDY);
  studyWall.push(performance.now() - t);
  study.push(b.runMs / STUDY);
}
console.log(`batch 1: session.run ${stats(one)}; round trip ${stats(oneWall)} per vertebra`);
console.log(`batch ${STUDY} (a study): session.run per vertebra ${stats(study)}; round trip per study ${stats(studyWall)}`);

// Event-loop delay on the main thread while the worker infers study batches back to back, next to an idle
// baseline of the same length. A 1 ms interval stands in for the service's request handling.
async function lagWhile(work: () => Promise<unknown>): Promise<{ p50: number; p99: number; max: number; ms: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const timer = setInterval(() => undefined, 1);
  h.enable();
  const t = performance.now();
  await work();
  const ms = performance.now() - t;
  h.disable();
  clearInterval(timer);
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, ms };
}
const busy = await lagWhile(async () => {
  for (let r = 0; r < rounds; r++) await runner.infer(studies[rounds + r], STUDY);
});
const idle = await lagWhile(() => new Promise((res) => setTimeout(res, busy.ms)));
const f = (x: { p50: number; p99: number; max: number; ms: number }): string => `p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, max ${x.max.toFixed(2)} ms over ${(x.ms / 1000).toFixed(1)} s`;
console.log(`event-loop delay while the worker infers ${rounds} studies: ${f(busy)}`);
console.log(`event-loop delay idle (same length):             ${f(idle)}`);
await runner.close();
const load1 = loadavg();
console.log(`load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')} (2 cores shared: numbers are noisy when load > 1)`);
