import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  DICOM_UID_SYSTEM,
  IMAGING_CATEGORY,
  INTERPRETATION_BY_CATEGORY,
  UCUM_MG_PER_CM3,
  VBMD_BASIS_CODES,
  VBMD_LEVEL_CODE,
  VBMD_SUMMARY_CODE,
} from '../../src/fhir/codes.js';
import { runCohort } from '../../src/population/query.js';
import { mulberry32 } from '../../src/util/prng.js';
import { NdjsonDirectorySource } from '../../src/population/sources/ndjson-dir.js';

/**
 * Cohort over 1,000,000 summary vBMD Observations in NDJSON (100k patients x 10 scans, with per-level
 * components like the real ones) plus 0.3 MedicationRequests per patient (30k). Generated once into os.tmpdir() (streamed to
 * disk, deterministic), reused by later runs. Prints the time of the query and the peak RSS of this process
 * (target <= 300 MB).
 */
const PATIENTS = Number(process.env.BENCH_COHORT_PATIENTS ?? 100_000);
const SCANS = 10;
const dir = join(tmpdir(), `vbmd-cohort-bench-${PATIENTS}x${SCANS}-v1`);

const rng = mulberry32;

async function writeLines(file: string, lines: () => Generator<string>): Promise<void> {
  const tmp = `${file}.part`;
  const out = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  let buf = '';
  for (const line of lines()) {
    buf += line;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.write(buf);
  out.end();
  await once(out, 'finish');
  await rename(tmp, file);
}

function* observations(): Generator<string> {
  const rand = rng(42);
  const start = Date.UTC(2015, 0, 1);
  for (let p = 0; p < PATIENTS; p++) {
    const baseline = 60 + rand() * 120;
    const lossPerYear = rand() < 0.2 ? rand() * 8 : rand() * 1.5 - 0.5;
    let t = start + rand() * 365 * 86_400_000;
    for (let k = 0; k < SCANS; k++) {
      t += (90 + rand() * 300) * 86_400_000;
      const years = (t - start) / (365.25 * 86_400_000);
      const indeterminate = rand() < 0.02;
      const v = Math.round((baseline * (1 - (lossPerYear / 100) * years) + (rand() - 0.5) * 6) * 10) / 10;
      const cat = v > 120 ? 'normal' : v >= 80 ? 'osteopenia' : 'osteoporosis';
      const uid = `1.2.826.0.1.3680043.10.${p}.${k}`;
      const obs = {
        resourceType: 'Observation',
        id: `o${p}-${k}`,
        status: 'final',
        category: [{ coding: [IMAGING_CATEGORY] }],
        code: { coding: [VBMD_SUMMARY_CODE], text: 'Vertebral trabecular vBMD (QCT from CT)' },
        subject: { reference: `Patient/p${p}` },
        effectiveDateTime: new Date(t).toISOString(),
        ...(indeterminate
          ? { dataAbsentReason: { text: 'Indeterminate' } }
          : { valueQuantity: { value: v, ...UCUM_MG_PER_CM3 }, interpretation: [{ coding: [INTERPRETATION_BY_CATEGORY[cat]], text: cat }] }),
        method: { coding: [VBMD_BASIS_CODES[indeterminate ? 'none' : 'lumbar']] },
        partOf: [{ type: 'ImagingStudy', identifier: { system: DICOM_UID_SYSTEM, value: `urn:oid:${uid}` } }],
        component: ['L1', 'L2'].map((level, i) => ({
          code: { coding: [VBMD_LEVEL_CODE, { system: 'http://snomed.info/sct', code: i ? '14293000' : '66794005' }], text: level },
          ...(indeterminate ? { dataAbsentReason: { text: 'Excluded: lesion' } } : { valueQuantity: { value: v + (i ? 2 : -2), ...UCUM_MG_PER_CM3 } }),
        })),
      };
      yield `${JSON.stringify(obs)}\n`;
    }
  }
}

function* medications(): Generator<string> {
  const rand = rng(7);
  const drugs = [
    { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '46041', display: 'alendronate' },
    { system: 'http://www.whocc.no/atc', code: 'M05BX04', display: 'denosumab' },
    { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6809', display: 'metformin' },
  ];
  for (let i = 0; i < Math.round(PATIENTS * 0.3); i++) {
    const p = Math.floor(rand() * PATIENTS);
    yield `${JSON.stringify({
      resourceType: 'MedicationRequest',
      id: `m${i}`,
      status: rand() < 0.7 ? 'active' : 'completed',
      intent: 'order',
      subject: { reference: `Patient/p${p}` },
      medicationCodeableConcept: { coding: [drugs[i % 3]] },
    })}\n`;
  }
}

async function generate(): Promise<void> {
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  await writeLines(join(dir, 'MedicationRequest.ndjson'), medications);
  await writeLines(join(dir, 'Observation.ndjson'), observations);
  console.log(`generated ${PATIENTS * SCANS} Observations in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function main(): Promise<void> {
  const obsFile = join(dir, 'Observation.ndjson');
  if (!existsSync(obsFile)) {
    // In a child process, so this process's peak RSS is the query's alone.
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--generate-only'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('generating the bench data failed');
  }
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

if (process.argv.includes('--generate-only')) await generate();
else await main();
