import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runCohort } from '../../src/population/query.js';
import { NdjsonDirectorySource } from '../../src/population/sources/ndjson-dir.js';
import { ensureCohortBenchData } from './cohort-data.js';

/**
 * Cohort over 1,000,000 summary vBMD Observations in NDJSON (100k patients x 10 scans, with per-level
 * components like the real ones) plus 0.3 MedicationRequests per patient (30k), generated once by
 * cohort-data.ts. Prints the time of the query and the peak RSS of this process (target <= 300 MB).
 * The DuckDB engine's bench is cohort-duckdb.bench.ts.
 */
const PATIENTS = Number(process.env.BENCH_COHORT_PATIENTS ?? 100_000);
const SCANS = 10;

async function main(): Promise<void> {
  const dir = ensureCohortBenchData({ patients: PATIENTS, scans: SCANS });
  const obsFile = join(dir, 'Observation.ndjson');
  const size = (await stat(obsFile)).size;
  console.log(`data: ${dir} (${(size / 2 ** 20).toFixed(0)} MiB of Observation NDJSON)`);

  let peakSampledMb = 0;
  const sampler = setInterval(() => {
    peakSampledMb = Math.max(peakSampledMb, process.memoryUsage.rss() / 2 ** 20);
  }, 200);
  const t0 = performance.now();
  const result = await runCohort(new NdjsonDirectorySource(dir), { category: 'osteoporosis', untreated: true });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  // Peak of the process so far: one query, as one `vbmd cohort` run would have.
  const firstMaxRssMb = process.resourceUsage().maxRSS / 1024;
  // The runner gives --expose-gc: collect the first run's leftovers so the second query is measured alone.
  (globalThis as { gc?: () => void }).gc?.();
  const t1 = performance.now();
  const declining = await runCohort(new NdjsonDirectorySource(dir), { decliningPctPerYear: 3 });
  const secondSeconds = (performance.now() - t1) / 1000;
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  const s = result.summary;
  console.log(`scans read: ${s.scansRead}; patients: ${s.patients}; by category: ${JSON.stringify(s.byCategory)}`);
  console.log(`osteoporosis + untreated: ${s.matched} patients; declining >= 3 %/year: ${declining.summary.matched}`);
  console.log(`cohort query: ${seconds.toFixed(1)} s (${Math.round(s.resourcesRead / seconds).toLocaleString('en')} resources/s); --declining query: ${secondSeconds.toFixed(1)} s`);
  console.log(`peak RSS after the first query: ${firstMaxRssMb.toFixed(0)} MB (sampled: ${peakSampledMb.toFixed(0)} MB); after both: ${maxRssMb.toFixed(0)} MB; target <= 300 MB: ${maxRssMb <= 300 ? 'met' : 'NOT MET'}`);
  if (s.scansRead + s.skipped['not-a-result'] < PATIENTS * SCANS * 0.99) throw new Error('the bench read fewer scans than it generated');
  if (maxRssMb > 300) process.exitCode = 1;
}

await main();
