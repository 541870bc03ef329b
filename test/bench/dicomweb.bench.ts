import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { DicomWebSource } from '../../src/dicom/dicomweb/source.js';
import { wadoAccept } from '../../src/dicom/dicomweb/client.js';
import { rawGet } from '../../src/net/raw-http.js';
import { OutboundClient } from '../../src/net/outbound.js';
import { assembleVolume } from '../../src/dicom/assemble-volume.js';
import { loadStudyVolume } from '../../src/dicom/load-study.js';
import type { Vec3 } from '../../src/imaging/volume.js';

/**
 * DICOMweb retrieve speed and memory (targets in README.md "Performance": <= 2x curl time and peak RSS <= 2x the
 * series): a 512x512x300 synthetic CT series (cached in the OS temp dir) is stored in a real Orthanc on loopback.
 * Each of our runs is paired with a `curl` of the same WADO-RS series request (same Accept) to /dev/null right
 * before it, so both see the same machine load (2 cores shared with other work: the load average is printed with
 * every pair). Modes, RUNS pairs each:
 * - node:http drain: node:http reading the response, nothing kept (what the client used before raw-http);
 * - raw-http drain: the hand-made plain-http reader (src/dicom/dicomweb/raw-http.ts), nothing kept;
 * - undici drain: the outbound layer (src/net/outbound.ts, undici) reading it, nothing kept;
 * - DicomWebSource.loadSlices (stream, multipart, parse: slices in memory);
 * - loadSlices + assembleVolume (first request to HU volume, slice-list path);
 * - loadSeriesVolume (instances converted into the volume as they arrive);
 * - loadStudyVolume by accession (QIDO + series choice + the streamed path): what the pipeline runs;
 * - the same as a second load in one process (warm JIT, as in the long-running worker; time only).
 * Each runs in a fresh child process so its peak RSS (getrusage maxrss) is its own; "baseline" is the
 * child's RSS after its imports, before the load (Node + tsx + the modules a retrieve needs; the series
 * writer and Orthanc helper are imported by the parent only).
 * Targets: time <= 2x curl (median of the paired ratios); peak RSS <= 2x the series size (DICOM bytes).
 * `--tls`: every client (curl included) goes through a loopback TLS proxy (test/support/tls.ts, in its own
 * process) with a self-signed certificate made by openssl, trusted as an extra CA; raw-http cannot speak
 * TLS: its mode is skipped. The proxy's CPU is its own, not the client's.
 */
const DIMS: Vec3 = [512, 512, 300];
const CACHE = join(tmpdir(), 'vbmd-bench-dicomweb-512x512x300-v1');
const ACCESSION = 'BENCH-DW-1';
// `node --import tsx test/bench/dicomweb.bench.ts --modes streamed,study [--runs N]` runs a subset.
const argAfter = (flag: string): string | undefined => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const RUNS = Number(argAfter('--runs') ?? 5);
const TLS = process.argv.includes('--tls');
/** The CA (the self-signed certificate itself) of a --tls run, passed to the children by path. */
const caPem = (): Buffer | undefined => (process.env.BENCH_CA_FILE ? readFileSync(process.env.BENCH_CA_FILE) : undefined);

/** The TLS proxy (test/support/tls.ts) as a separate process in front of Orthanc; resolves with its port. */
function startProxyProcess(targetPort: number, certDir: string): Promise<{ port: number; child: ChildProcess }> {
  const script = fileURLToPath(new URL('../support/tls.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(targetPort), certDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ port: Number(m[1]), child });
    });
    child.once('exit', (code) => reject(new Error(`TLS proxy exited (${code})`)));
  });
}

async function ensureSeries(): Promise<string> {
  const dir = join(CACHE, 'series');
  if (existsSync(join(CACHE, 'complete'))) return dir;
  // Imported here, not at the top: the child processes that are measured load only what a retrieve needs.
  const { writeCtSeries } = await import('../../src/dicom/write-series.js');
  await rm(CACHE, { recursive: true, force: true });
  const [nx, ny, nz] = DIMS;
  const hu = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const x = (i - 256) / 220;
        const y = (j - 256) / 160;
        const spine = (i - 256) ** 2 + (j - 330) ** 2 < 900;
        hu[i + nx * (j + ny * k)] = x * x + y * y > 1 ? -1000 : spine ? 250 + ((i * 7 + j * 3 + k) % 60) : 40 + ((i + j + k) % 30) - 15;
      }
  await writeCtSeries(dir, { hu, dims: DIMS, spacingMm: [0.7, 0.7, 1], originMm: [-179, -179, -300], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }, {
    patientId: 'BENCH',
    accessionNumber: ACCESSION,
    kvp: 120,
    seriesDescription: 'bench 1mm',
    sliceThicknessMm: 1,
  });
  await writeFile(join(CACHE, 'complete'), '');
  return dir;
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

type Mode = 'node-raw' | 'raw-drain' | 'undici-drain' | 'slices' | 'volume' | 'streamed' | 'study' | 'study-warm';
const ALL_MODES: Mode[] = ['node-raw', 'raw-drain', 'undici-drain', 'slices', 'volume', 'streamed', 'study', 'study-warm'];
const DEFAULT_MODES = ALL_MODES.filter((m) => m !== 'study-warm'); // --modes study,study-warm for the warm one
const MODES: Mode[] = (argAfter('--modes')?.split(',').filter((m): m is Mode => (ALL_MODES as string[]).includes(m)) ?? DEFAULT_MODES).filter((m) => !(TLS && m === 'raw-drain'));

interface ChildResult {
  ms: number;
  cpuMs: number;
  baseRssBytes: number;
  peakRssBytes: number;
  voxels: number;
  huType: string;
}

/** Child mode: one load in a fresh process; prints its result as JSON on the last line. */
async function child(mode: Mode, baseUrl: string, study: string, series: string, count: number): Promise<void> {
  const ca = caPem();
  const src = new DicomWebSource({ baseUrl, ...(ca ? { caPem: ca } : {}) });
  if (mode === 'study-warm') {
    // A long-running worker has loaded studies before: JIT-compiled code, connections, codecs. One untimed
    // load first; the timed one below is the same as 'study'. (Peak RSS then includes the first volume.)
    await loadStudyVolume(src, { accessionNumber: ACCESSION }, { kind: 'dicomweb' });
  }
  (globalThis as { gc?: () => void }).gc?.();
  const baseRssBytes = process.memoryUsage().rss;
  const t = performance.now();
  const c0 = process.cpuUsage();
  let voxels = 0;
  let huType = '-';
  if (mode === 'node-raw') {
    // The floor for any Node client: node:http draining the same response, no parsing, nothing kept.
    const url = `${baseUrl}/studies/${study}/series/${series}`;
    const get = url.startsWith('https:') ? (u: string, o: https.RequestOptions, cb: (res: http.IncomingMessage) => void) => https.get(u, { ...o, ca }, cb) : http.get;
    voxels = await new Promise<number>((resolve, reject) => {
      get(url, { headers: { accept: wadoAccept('*') } }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n / 2));
        res.on('error', reject);
      }).on('error', reject);
    });
  } else if (mode === 'raw-drain') {
    const res = await rawGet(new URL(`${baseUrl}/studies/${study}/series/${series}`), { headers: { accept: wadoAccept('*') }, timeoutMs: 30_000, idleTimeoutMs: 30_000 });
    voxels = await new Promise<number>((resolve, reject) => {
      let n = 0;
      res.body.on('data', (c: Buffer) => (n += c.length));
      res.body.on('end', () => resolve(n / 2));
      res.body.on('error', reject);
    });
  } else if (mode === 'undici-drain') {
    const net = new OutboundClient({ ...(ca ? { caPem: ca } : {}) });
    voxels = await net.exchange({ url: `${baseUrl}/studies/${study}/series/${series}`, headers: { accept: wadoAccept('*') } }, (res) =>
      new Promise<number>((resolve, reject) => {
        let n = 0;
        res.body.on('data', (c: Buffer) => (n += c.length));
        res.body.on('end', () => resolve(n / 2));
        res.body.on('error', reject);
      }));
    await net.close();
  } else if (mode === 'streamed') {
    const loaded = await src.loadSeriesVolume({ studyInstanceUid: study, seriesInstanceUid: series, instanceCount: count });
    voxels = loaded.volume.hu.length;
    huType = loaded.volume.hu.constructor.name;
  } else if (mode === 'study' || mode === 'study-warm') {
    const loaded = await loadStudyVolume(src, { accessionNumber: ACCESSION }, { kind: 'dicomweb' });
    voxels = loaded.volume.hu.length;
    huType = loaded.volume.hu.constructor.name;
  } else {
    const slices = await src.loadSlices({ studyInstanceUid: study, seriesInstanceUid: series, instanceCount: count });
    if (mode === 'volume') voxels = assembleVolume(slices, src.description, { kind: 'dicomweb' }).volume.hu.length;
    else voxels = slices.reduce((n, s) => n + s.pixels.length, 0);
  }
  const ms = performance.now() - t;
  const c1 = process.cpuUsage(c0);
  src.close();
  const r: ChildResult = { ms, cpuMs: (c1.user + c1.system) / 1000, baseRssBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024, voxels, huType };
  console.log(JSON.stringify(r));
}

function runChild(mode: string, args: string[]): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', self, '--child', mode, ...args], { encoding: 'utf8', env: process.env });
  if (r.status !== 0) throw new Error(`bench child (${mode}) failed: ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as ChildResult;
}

/** curl to /dev/null; wall time from curl itself, CPU time (user+sys) from the shell's `times`. */
function curl(url: string, accept: string): { ms: number; cpuMs: number; bytes: number } {
  const q = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
  const ca = process.env.BENCH_CA_FILE ? `--cacert ${q(process.env.BENCH_CA_FILE)} ` : '';
  const cmd = `curl -s -o /dev/null ${ca}-H ${q(`Accept: ${accept}`)} -w '%{time_total} %{size_download} %{http_code}\\n' ${q(url)}; times`;
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n');
  const [secs, bytes, code] = lines[0].split(' ');
  if (r.status !== 0 || code !== '200') throw new Error(`curl failed (${r.status}, HTTP ${code}): ${r.stderr}`);
  const toMs = (t: string): number => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return m ? (Number(m[1]) * 60 + Number(m[2])) * 1000 : NaN;
  };
  const [cu, cs] = (lines[2] ?? '').split(' ');
  return { ms: Number(secs) * 1000, cpuMs: toMs(cu) + toMs(cs), bytes: Number(bytes) };
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); NaN elsewhere. */
function processCpuMs(pid: number): number {
  try {
    // Fields 14 and 15 (utime, stime) in clock ticks, counted after the ")" that ends the command name.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const dir = await ensureSeries();
  const files = (await readdir(dir)).map((f) => join(dir, f));
  let seriesBytes = 0;
  for (const f of files) seriesBytes += (await stat(f)).size;
  console.log(`series: ${DIMS.join('x')}, ${files.length} files, ${mb(seriesBytes)} MiB (ready in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  const { startOrthanc } = await import('../support/orthanc.js');
  const pacs = await startOrthanc();
  const certDir = TLS ? mkdtempSync(join(tmpdir(), 'vbmd-bench-tls-')) : undefined;
  const proxy = certDir ? await startProxyProcess(pacs.port, certDir) : undefined;
  if (certDir) process.env.BENCH_CA_FILE = join(certDir, 'cert.pem');
  const dicomWebUrl = proxy ? `https://127.0.0.1:${proxy.port}/dicom-web` : pacs.dicomWebUrl;
  try {
    const tu = performance.now();
    const up = await pacs.upload(files);
    console.log(`uploaded to Orthanc ${pacs.baseUrl} in ${((performance.now() - tu) / 1000).toFixed(1)} s (POST /instances)`);
    const seriesInfo = await pacs.rest<{ MainDicomTags: { SeriesInstanceUID: string } }>('GET', `/series/${up[0].ParentSeries}`);
    const studyInfo = await pacs.rest<{ MainDicomTags: { StudyInstanceUID: string } }>('GET', `/studies/${up[0].ParentStudy}`);
    const study = studyInfo.MainDicomTags.StudyInstanceUID;
    const series = seriesInfo.MainDicomTags.SeriesInstanceUID;
    const url = `${dicomWebUrl}/studies/${study}/series/${series}`;
    const accept = wadoAccept('*');
    const args = [dicomWebUrl, study, series, String(files.length)];
    if (proxy) console.log(`over TLS: ${dicomWebUrl} (loopback TLS proxy in its own process, pid ${proxy.child.pid})`);

    curl(url, accept); // warm Orthanc and the page cache for everyone
    const bare = spawnSync(process.execPath, ['-e', 'console.log(process.resourceUsage().maxRSS * 1024)'], { encoding: 'utf8' });
    const bareNodeRss = Number(bare.stdout.trim());
    const loads: number[] = [];
    const curls: { ms: number; cpuMs: number }[] = [];
    const orthancCpu: number[] = [];
    const res: Record<Mode, (ChildResult & { curlMs: number; load1: number })[]> = { 'node-raw': [], 'raw-drain': [], 'undici-drain': [], slices: [], volume: [], streamed: [], study: [], 'study-warm': [] };
    let wadoBytes = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const mode of MODES) {
        // curl right before each of ours, so both see the same machine load.
        const load1 = loadavg()[0];
        loads.push(load1);
        const o0 = processCpuMs(pacs.pid);
        const c = curl(url, accept);
        orthancCpu.push(processCpuMs(pacs.pid) - o0);
        curls.push(c);
        wadoBytes = c.bytes;
        res[mode].push({ ...runChild(mode, args), curlMs: c.ms, load1 });
      }
    }
    const curlMs = median(curls.map((c) => c.ms));
    const curlCpu = median(curls.map((c) => c.cpuMs));
    console.log(`load average (1 min) during the runs: median ${median(loads).toFixed(1)}, min ${Math.min(...loads).toFixed(1)}, max ${Math.max(...loads).toFixed(1)} on ${cpus().length} cores shared with other work: wall times are noisy, paired ratios less so`);
    console.log(`series: ${mb(seriesBytes)} MiB of DICOM files (${seriesBytes} bytes); WADO-RS response ${mb(wadoBytes)} MiB`);
    console.log(`Node baseline RSS: bare node ${mb(bareNodeRss)} MiB; bench child after imports (node + tsx + vbmd modules) median ${mb(median(MODES.flatMap((m) => res[m].map((r) => r.baseRssBytes))))} MiB`);
    const serverCpu = median(orthancCpu);
    console.log(`curl to /dev/null: median ${curlMs.toFixed(0)} ms, CPU ${curlCpu.toFixed(0)} ms (${curls.length} runs); Orthanc's CPU to serve it: median ${serverCpu.toFixed(0)} ms`);
    const label: Record<Mode, string> = {
      'node-raw': `node:${TLS ? 'https' : 'http'} drain only:`,
      'raw-drain': 'raw-http drain only:',
      'undici-drain': 'undici (outbound layer) drain only:',
      slices: 'loadSlices (slices in memory):',
      volume: 'loadSlices + assembleVolume:',
      streamed: 'loadSeriesVolume (streamed HU):',
      study: 'loadStudyVolume by accession:',
      'study-warm': 'same, second load in the process:',
    };
    const verdict = (x: number): string => (x <= 2 ? 'holds' : 'FAILS');
    for (const mode of MODES) {
      const rs = res[mode];
      const ms = median(rs.map((r) => r.ms));
      const ratio = median(rs.map((r) => r.ms / r.curlMs));
      const cpu = median(rs.map((r) => r.cpuMs));
      const peak = median(rs.map((r) => r.peakRssBytes));
      const peakMax = Math.max(...rs.map((r) => r.peakRssBytes));
      const base = median(rs.map((r) => r.baseRssBytes));
      console.log(
        `${label[mode].padEnd(34)} wall median ${ms.toFixed(0)} ms, paired ratio to curl median ${ratio.toFixed(2)}x (runs: ${rs.map((r) => (r.ms / r.curlMs).toFixed(2)).join(' ')}), CPU ${cpu.toFixed(0)} ms` +
          ` | peak RSS median ${mb(peak)} MiB = ${(peak / seriesBytes).toFixed(2)}x series (max ${(peakMax / seriesBytes).toFixed(2)}x); baseline ${mb(base)} MiB, above it ${((peak - base) / seriesBytes).toFixed(2)}x`,
      );
    }
    for (const mode of (['study', 'streamed'] as const).filter((m) => MODES.includes(m))) {
      const rs = res[mode];
      const ratio = median(rs.map((r) => r.ms / r.curlMs));
      const peak = Math.max(...rs.map((r) => r.peakRssBytes)) / seriesBytes;
      console.log(`TARGETS ${label[mode]} time ${ratio.toFixed(2)}x curl (<= 2x: ${verdict(ratio)}), peak RSS ${peak.toFixed(2)}x series, worst run (<= 2x: ${verdict(peak)})`);
    }
    // Load-independent hint (not the target): unloaded, curl's wall is about the server's CPU to produce the
    // response, and ours about our CPU when that is larger, so their ratio estimates an unloaded run.
    for (const mode of (['study', 'streamed'] as const).filter((m) => MODES.includes(m))) {
      const cpu = median(res[mode].map((r) => r.cpuMs));
      console.log(`estimate if the machine were idle, ${label[mode]} our CPU / max(Orthanc CPU, curl CPU) = ${cpu.toFixed(0)} / ${Math.max(serverCpu, curlCpu).toFixed(0)} = ${(cpu / Math.max(serverCpu, curlCpu)).toFixed(2)}x (an estimate, not a measurement of the target)`);
    }
    if (MODES.includes('study-warm')) {
      const ratio = median(res['study-warm'].map((r) => r.ms / r.curlMs));
      console.log(`TARGETS ${label['study-warm']} time ${ratio.toFixed(2)}x curl (<= 2x: ${verdict(ratio)}) (peak RSS not separable: two volumes in one process)`);
    }
    console.log(`(volume HU: ${MODES.flatMap((m) => res[m].map((r) => r.huType)).find((t) => t !== '-') ?? '-'}; a float32 volume of ${DIMS.join('x')} would itself be ${mb(DIMS[0] * DIMS[1] * DIMS[2] * 4)} MiB = ${((DIMS[0] * DIMS[1] * DIMS[2] * 4) / seriesBytes).toFixed(2)}x the series)`);
  } finally {
    proxy?.child.kill('SIGTERM');
    await pacs.stop();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  const [, , , mode, baseUrl, study, series, count] = process.argv;
  await child(mode as Mode, baseUrl, study, series, Number(count));
} else {
  await main();
}
