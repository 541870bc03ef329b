import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeCtSeries } from '../../src/dicom/write-series.js';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { chooseSeries } from '../../src/dicom/series-choice.js';
import type { Vec3 } from '../../src/imaging/volume.js';

/**
 * Series-to-volume speed (target in README.md "Performance": ours within 1.5x of dcm2niix). A 512x512x300, 1 mm
 * synthetic CT series is written once and cached in the OS temp dir; then `loadInputPath` (scan, choose, read,
 * decode, assemble) and Debian's dcm2niix (-z n, uncompressed NIfTI) load the same files, warm cache, interleaved,
 * best of 5; CPU time is printed too because wall time on a shared machine swings with other load.
 */
const DIMS: Vec3 = [512, 512, 300];
const CACHE = join(tmpdir(), 'vbmd-bench-series-512x512x300-v1');
const ROUNDS = 5;

async function ensureSeries(): Promise<void> {
  if (existsSync(join(CACHE, 'complete'))) return;
  await rm(CACHE, { recursive: true, force: true });
  const [nx, ny, nz] = DIMS;
  const hu = new Float32Array(nx * ny * nz);
  // Air outside a body ellipse, soft tissue inside, a bony column: enough structure to be realistic in size.
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const x = (i - 256) / 220;
        const y = (j - 256) / 160;
        const r = x * x + y * y;
        const spine = (i - 256) ** 2 + (j - 330) ** 2 < 900;
        hu[i + nx * (j + ny * k)] = r > 1 ? -1000 : spine ? 250 + ((i * 7 + j * 3 + k) % 60) : 40 + ((i + j + k) % 30) - 15;
      }
  const t = performance.now();
  await writeCtSeries(join(CACHE, 'series'), { hu, dims: DIMS, spacingMm: [0.7, 0.7, 1], originMm: [-179, -179, -300], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }, {
    patientId: 'BENCH',
    kvp: 120,
    seriesDescription: 'bench 1mm',
  });
  console.log(`wrote the cached series in ${(performance.now() - t).toFixed(0)} ms (writeCtSeries, ${nz} files)`);
  await writeFile(join(CACHE, 'complete'), '');
}

function rssMb(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/** One load, its wall time and the process's peak RSS while it ran (sampled every 5 ms). */
let huType = '';

async function timedLoad(dir: string): Promise<{ ms: number; cpuMs: number; peakMb: number }> {
  let peakMb = rssMb();
  const timer = setInterval(() => (peakMb = Math.max(peakMb, rssMb())), 5);
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const loaded = await loadInputPath(dir);
  const ms = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  peakMb = Math.max(peakMb, rssMb());
  clearInterval(timer);
  if (loaded.volume.dims.join('x') !== DIMS.join('x')) throw new Error(`bad dims ${loaded.volume.dims.join('x')}`);
  huType = loaded.volume.hu.constructor.name;
  return { ms, cpuMs, peakMb };
}

/** Where the time goes: header scan + series choice, then streaming decode into the volume (best of 3). */
async function stageBreakdown(dir: string): Promise<void> {
  const scans: number[] = [];
  const loads: number[] = [];
  for (let run = 0; run < 3; run++) {
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = performance.now();
    const src = new FolderDicomSource(dir);
    const { chosen } = chooseSeries(await src.findSeries({}), dir);
    const t1 = performance.now();
    await src.loadVolume(chosen);
    scans.push(t1 - t0);
    loads.push(performance.now() - t1);
  }
  console.log(`stages (best of 3): header scan + choice ${Math.min(...scans).toFixed(0)} ms, read + decode + HU into volume ${Math.min(...loads).toFixed(0)} ms`);
}

/**
 * Compressed series as a PACS may send them: the first 60 slices recompressed by gdcmconv (cached), loaded
 * by loadInputPath (decoded on the worker-thread pool), reported per slice.
 */
async function compressedSeries(nativeDir: string): Promise<void> {
  const names = (await readdir(nativeDir)).sort().slice(0, 60);
  for (const [flag, label] of [
    ['--j2k', 'JPEG 2000 lossless'],
    ['--jpegls', 'JPEG-LS lossless'],
    ['--rle', 'RLE lossless'],
  ] as const) {
    const dir = join(CACHE, `first60${flag.replace(/-/g, '_')}`);
    if (!existsSync(join(dir, 'complete'))) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      for (const n of names) {
        const r = spawnSync('/usr/bin/gdcmconv', [flag, join(nativeDir, n), join(dir, n)]);
        if (r.status !== 0) throw new Error(`gdcmconv ${flag} failed on ${n}`);
      }
      await writeFile(join(dir, 'complete'), '');
    }
    await rm(join(dir, 'complete'));
    try {
      const t = performance.now();
      const v = await loadInputPath(dir);
      const ms = performance.now() - t;
      if (v.volume.dims[2] !== names.length) throw new Error('wrong slice count');
      console.log(`${label.padEnd(20)} 60 x 512x512: ${ms.toFixed(0)} ms (${(ms / names.length).toFixed(1)} ms/slice, ${availableParallelism()} decode workers)`);
    } finally {
      await writeFile(join(dir, 'complete'), '');
    }
  }
}

async function main(): Promise<void> {
  await ensureSeries();
  const dir = join(CACHE, 'series');
  const files = (await readdir(dir)).length;
  const ours: number[] = [];
  const oursCpu: number[] = [];
  const peaks: number[] = [];
  const theirs: number[] = [];
  const theirsCpu: number[] = [];
  const baseRss = rssMb();
  const out = await mkdtemp(join(tmpdir(), 'vbmd-bench-dcm2niix-'));
  const runDcm2niix = async (): Promise<{ ms: number; cpuMs?: number }> => {
    await rm(out, { recursive: true, force: true });
    await mkdir(out);
    const t = performance.now();
    // bash's `times` prints the children's user and system CPU time on its second line.
    const r = spawnSync('/bin/bash', ['-c', `/usr/bin/dcm2niix -z n -o "$1" "$2" >/dev/null || exit 1; times`, 'bench', out, dir], { encoding: 'utf8' });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`dcm2niix failed: ${r.stderr || r.stdout}`);
    const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stdout.trim());
    return { ms, cpuMs: m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : undefined };
  };
  try {
    // Untimed warm-up of both: page cache, our modules and JIT, dcm2niix's binary.
    await runDcm2niix();
    await timedLoad(dir);
    // Interleaved rounds, so both see the same background load (this machine is shared).
    for (let run = 0; run < ROUNDS; run++) {
      (globalThis as { gc?: () => void }).gc?.();
      const o = await timedLoad(dir);
      ours.push(o.ms);
      oursCpu.push(o.cpuMs);
      peaks.push(o.peakMb);
      const d = await runDcm2niix();
      theirs.push(d.ms);
      if (d.cpuMs !== undefined) theirsCpu.push(d.cpuMs);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  const best = (xs: number[]): number => Math.min(...xs);
  const ratio = best(ours) / best(theirs);
  console.log(`series: ${DIMS.join('x')} int16, ${files} files (${CACHE})`);
  console.log(`loadInputPath (series -> HU volume): best ${best(ours).toFixed(0)} ms  (runs ${ours.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`dcm2niix -z n (series -> NIfTI):      best ${best(theirs).toFixed(0)} ms  (runs ${theirs.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`ratio ours/dcm2niix (wall, best of ${ROUNDS}): ${ratio.toFixed(2)}  (target <= 1.5)  ${ratio <= 1.5 ? 'OK' : 'SLOWER THAN TARGET'}`);
  if (theirsCpu.length > 0) {
    // On a shared machine wall time swings with other load; CPU time (user+system, all threads) does not.
    const cpuRatio = best(oursCpu) / best(theirsCpu);
    console.log(`CPU time best of ${ROUNDS}: ours ${best(oursCpu).toFixed(0)} ms, dcm2niix ${best(theirsCpu).toFixed(0)} ms, ratio ${cpuRatio.toFixed(2)}`);
  }
  console.log(`machine load average: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores`);
  await stageBreakdown(dir);
  await compressedSeries(dir);
  console.log(`peak RSS per load: ${peaks.map((p) => p.toFixed(0)).join(', ')} MB (process before the first load ${baseRss.toFixed(0)} MB; the volume is ${huType}: ${((DIMS[0] * DIMS[1] * DIMS[2] * (huType === 'Int16Array' ? 2 : 4)) / 2 ** 20).toFixed(0)} MB)`);
}

await main();
