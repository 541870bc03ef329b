import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
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
import { mulberry32 } from '../../src/util/prng.js';

/**
 * Synthetic NDJSON for the cohort benches, in the product's own Observation shape (summary code, UCUM
 * mg/cm3, interpretation, basis, study UID, two per-level components; about 1.7 kB a line): PATIENTS x
 * SCANS summary Observations plus 0.3 MedicationRequests per patient. Deterministic, streamed to disk once
 * into os.tmpdir() (or BENCH_COHORT_DIR) by a child process, reused by later runs.
 */
export interface CohortBenchShape {
  patients: number;
  scans: number;
}

export function cohortBenchDir(shape: CohortBenchShape): string {
  return join(process.env.BENCH_COHORT_DIR ?? tmpdir(), `vbmd-cohort-bench-${shape.patients}x${shape.scans}-v1`);
}

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

function* observations({ patients, scans }: CohortBenchShape): Generator<string> {
  const rand = mulberry32(42);
  const start = Date.UTC(2015, 0, 1);
  for (let p = 0; p < patients; p++) {
    const baseline = 60 + rand() * 120;
    const lossPerYear = rand() < 0.2 ? rand() * 8 : rand() * 1.5 - 0.5;
    let t = start + rand() * 365 * 86_400_000;
    for (let k = 0; k < scans; k++) {
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

function* medications({ patients }: CohortBenchShape): Generator<string> {
  const rand = mulberry32(7);
  const drugs = [
    { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '46041', display: 'alendronate' },
    { system: 'http://www.whocc.no/atc', code: 'M05BX04', display: 'denosumab' },
    { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6809', display: 'metformin' },
  ];
  for (let i = 0; i < Math.round(patients * 0.3); i++) {
    const p = Math.floor(rand() * patients);
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

async function generate(shape: CohortBenchShape): Promise<void> {
  const dir = cohortBenchDir(shape);
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  await writeLines(join(dir, 'MedicationRequest.ndjson'), () => medications(shape));
  await writeLines(join(dir, 'Observation.ndjson'), () => observations(shape));
  console.log(`generated ${shape.patients * shape.scans} Observations in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** The data folder, generated first (in a child process, so the caller's peak RSS stays its own). */
export function ensureCohortBenchData(shape: CohortBenchShape): string {
  const dir = cohortBenchDir(shape);
  if (!existsSync(join(dir, 'Observation.ndjson'))) {
    const args = [...process.execArgv, fileURLToPath(import.meta.url), String(shape.patients), String(shape.scans)];
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('generating the bench data failed');
  }
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await generate({ patients: Number(process.argv[2]), scans: Number(process.argv[3]) });
}
