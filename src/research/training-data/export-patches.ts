import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { analyzeVolume } from '../../bmd/analyze.js';
import type { Calibrate, SiteCalibrationFile } from '../../bmd/calibration/types.js';
import { vertebraLevel, type CalibrationResult, type VbmdReport, type VertebraLevel } from '../../bmd/report.js';
import type { LoadedVolume, Vec3 } from '../../imaging/volume.js';
import { generatePhantom } from '../phantom/generate.js';
import type { Phantom } from '../phantom/types.js';
import { truthLevelNear } from '../phantom/match-truth.js';
import { VbmdError } from '../../util/errors.js';
import { modelCaseOptions } from './cases.js';
import { CLASS_ORDER, INPUT_CLIP_MG_CM3, INPUT_SCALE_MG_CM3, PATCH_SPACING_MM, PATCH_VOXELS } from '../../model/contract.js';
import { extractDensityPatch, maskedMeanDensity } from '../../model/patch.js';
import { classIndexForVbmd, trabecularTruthMask } from './truth-mask.js';

/**
 * Training data for the vBMD network, written for models/train (Python reads, never re-implements):
 *   DIR/density.f32  N x V^3 float32 little-endian, unclipped calibrated density (contract order d,h,w)
 *   DIR/mask.u8      N x V^3 uint8, 1 = trabecular bone to measure (all 0 where hasMask is false: site data)
 *   DIR/index.jsonl  one JSON object per sample (ExportedSample), same order
 *   DIR/meta.json    contract constants the files were written with
 * A sample is one located vertebral body. Files are appended study by study, the index last, so an interrupted
 * export resumes: on start the binaries are truncated to the index's length and finished seeds are skipped.
 */
export const EXPORT_SCHEMA = 'vbmd.model-patches/1';

export interface ExportedSample {
  source: 'phantom' | 'site';
  /** An extra training patch off the engine's centre (JITTER_MM); false for the centre the pipeline uses. */
  jittered?: boolean;
  /** Phantom seed (site data: null). */
  seed: number | null;
  /** Input path (site data) or "phantom:seed=N". */
  input: string;
  /** Truth level (phantom: the body matched by position; site: the manifest's level). */
  level: VertebraLevel;
  /** Level the engine labelled this body. */
  locatedLevel: VertebraLevel;
  labelConfidence: number;
  centerMm: Vec3;
  truthVbmdMgCm3: number;
  /** Index in CLASS_ORDER. */
  classIndex: 0 | 1 | 2;
  hasMask: boolean;
  maskVoxels: number;
  /** Mean density over the truth mask: the ceiling of the mask readout with this calibration. */
  truthMaskMeanMgCm3: number | null;
  lesion: 'blastic' | 'lytic' | null;
  fracture: boolean;
  contrast: boolean;
  kvp: number | null;
  noiseHu: number | null;
  sliceThicknessMm: number | null;
  pixelSpacingMm: number;
  /** The calibration the patch was made with (HU = intercept + slope * vBMD) and its method. */
  calibration: { method: string; slope: number; intercept: number };
  /** The scanner's true calibration (phantom) and the default chain's (phantom; site when computed). */
  trueCalibration: { slope: number; intercept: number } | null;
  defaultCalibration: { method: string; slope: number; intercept: number } | null;
  /** The engine's geometric ROI on the same study with the same calibration (baseline for the model). */
  geometricVbmdMgCm3: number | null;
  geometricIncluded: boolean;
  exclusionReason: string | null;
  partialCoverage: boolean;
}

export interface PatchWriter {
  readonly dir: string;
  readonly count: number;
  readonly seedsDone: ReadonlySet<number>;
  readonly inputsDone: ReadonlySet<string>;
  append(samples: { sample: ExportedSample; density: Float32Array; mask: Uint8Array }[]): void;
  close(): void;
}

const VOX = PATCH_VOXELS ** 3;

export function openPatchWriter(dir: string): PatchWriter {
  mkdirSync(dir, { recursive: true });
  const indexPath = join(dir, 'index.jsonl');
  const lines = existsSync(indexPath) ? readFileSync(indexPath, 'utf8').split('\n').filter((l) => l.trim() !== '') : [];
  const seedsDone = new Set<number>();
  const inputsDone = new Set<string>();
  for (const l of lines) {
    const s = JSON.parse(l) as ExportedSample;
    if (s.seed !== null) seedsDone.add(s.seed);
    inputsDone.add(s.input);
  }
  writeFileSync(
    join(dir, 'meta.json'),
    `${JSON.stringify({ schema: EXPORT_SCHEMA, patchVoxels: PATCH_VOXELS, patchSpacingMm: PATCH_SPACING_MM, inputClipMgCm3: INPUT_CLIP_MG_CM3, inputScaleMgCm3: INPUT_SCALE_MG_CM3, classOrder: CLASS_ORDER }, null, 2)}\n`,
  );
  const fd = openSync(join(dir, 'density.f32'), existsSync(join(dir, 'density.f32')) ? 'r+' : 'w+');
  const fm = openSync(join(dir, 'mask.u8'), existsSync(join(dir, 'mask.u8')) ? 'r+' : 'w+');
  const fi = openSync(indexPath, 'a');
  // Drop anything written after the last complete index line (an interrupted study).
  ftruncateSync(fd, lines.length * VOX * 4);
  ftruncateSync(fm, lines.length * VOX);
  let count = lines.length;
  return {
    dir,
    get count() {
      return count;
    },
    seedsDone,
    inputsDone,
    append(samples) {
      for (const s of samples) {
        writeSync(fd, new Uint8Array(s.density.buffer, s.density.byteOffset, s.density.byteLength), 0, s.density.byteLength, count * VOX * 4);
        writeSync(fm, s.mask, 0, s.mask.length, count * VOX);
        count++;
      }
      writeSync(fi, samples.map((s) => JSON.stringify(s.sample) + '\n').join(''));
      for (const s of samples) {
        if (s.sample.seed !== null) seedsDone.add(s.sample.seed);
        inputsDone.add(s.sample.input);
      }
    },
    close() {
      closeSync(fd);
      closeSync(fm);
      closeSync(fi);
    },
  };
}

const calOf = (c: CalibrationResult): { method: string; slope: number; intercept: number } => ({ method: c.method, slope: c.slope, intercept: c.intercept });

export interface PhantomStudyResult {
  samples: { sample: ExportedSample; density: Float32Array; mask: Uint8Array }[];
  located: number;
  unmatched: number;
  skippedPartial: number;
}

/**
 * One phantom study -> samples. Centres from the engine (analyzeVolume -> locateVertebrae, the centres the
 * pipeline feeds the model), calibration as the pipeline would have it (site file with the scanner's true line,
 * or the default chain). S1 and bodies not fully in the scan are skipped (the pipeline excludes them).
 */
export function phantomStudySamples(seed: number, calibrate: Calibrate | undefined, forceKnown?: boolean, jitter = 0): PhantomStudyResult {
  const mc = modelCaseOptions(seed);
  const phantom: Phantom = generatePhantom(mc.options);
  const truth = phantom.truth;
  const site: SiteCalibrationFile = { scanners: [], default: { slope: truth.calibration.slope, intercept: truth.calibration.intercept, method: 'phantom' } };
  const rKnown = analyzeVolume(phantom.loaded, { site, calibrate });
  const rDefault = analyzeVolume(phantom.loaded, { calibrate });
  const known = forceKnown ?? mc.knownCalibration;
  const report: VbmdReport = known ? rKnown : rDefault;
  const cal = report.calibration;
  const out: PhantomStudyResult = { samples: [], located: report.levels.length, unmatched: 0, skippedPartial: 0 };
  for (const l of report.levels) {
    const t = truthLevelNear(truth, l.centerMm);
    if (!t) {
      out.unmatched++;
      continue;
    }
    if (!t.fullyCovered || t.level === 'S1') {
      out.skippedPartial++;
      continue;
    }
    // Extra training patches around the located centre (+-JITTER_MM): the engine's centre moves a few mm between
    // scans of one spine, and the patch costs ~1 % of the phantom that produced it.
    const centres: { c: Vec3; jittered: boolean }[] = [{ c: l.centerMm, jittered: false }];
    for (let j = 0; j < jitter; j++) {
      const r = (k: number): number => 2 * jitterDraw(seed, `${t.level}/${j}/${k}`) - 1;
      centres.push({ c: [l.centerMm[0] + JITTER_MM[0] * r(0), l.centerMm[1] + JITTER_MM[1] * r(1), l.centerMm[2] + JITTER_MM[2] * r(2)], jittered: true });
    }
    for (const { c: centre, jittered } of centres) {
      const density = extractDensityPatch(phantom.loaded.volume, centre, cal);
      const mask = trabecularTruthMask(phantom, t.level, centre);
      const mm = maskedMeanDensity(density, mask);
      const o = truth.options;
      out.samples.push({
        density,
        mask,
        sample: {
          jittered,
          source: 'phantom',
          seed,
          input: `phantom:seed=${seed}`,
          level: t.level,
          locatedLevel: l.level,
          labelConfidence: l.labelConfidence,
          centerMm: centre,
          truthVbmdMgCm3: t.vbmdMgCm3,
          classIndex: classIndexForVbmd(t.vbmdMgCm3),
          hasMask: true,
          maskVoxels: mm?.voxels ?? 0,
          truthMaskMeanMgCm3: mm ? Math.round(mm.meanMgCm3 * 1000) / 1000 : null,
          lesion: t.lesion?.kind ?? null,
          fracture: t.fracture !== null,
          contrast: truth.contrast.enabled,
          kvp: truth.scanner.kvp,
          noiseHu: truth.noise.sdHu,
          sliceThicknessMm: truth.volume.sliceThicknessMm,
          pixelSpacingMm: typeof o.pixelSpacingMm === 'number' ? o.pixelSpacingMm : truth.volume.spacingMm[0],
          calibration: calOf(cal),
          trueCalibration: { slope: truth.calibration.slope, intercept: truth.calibration.intercept },
          defaultCalibration: calOf(rDefault.calibration),
          geometricVbmdMgCm3: l.vbmd,
          geometricIncluded: l.included,
          exclusionReason: l.exclusionReason,
          partialCoverage: l.exclusionReason === 'partial-coverage',
        },
      });
    }
  }
  return out;
}

/** Training-only centre jitter, mm along L, P, S (the engine's centre error on phantoms is of this order). */
export const JITTER_MM: Vec3 = [3, 3, 3];

function jitterDraw(seed: number, salt: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < salt.length; i++) h = Math.imul(h ^ salt.charCodeAt(i), 0x01000193) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995) >>> 0;
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}

/** Manifest of a site's QCT-labelled scans: input (DICOM folder or NIfTI), level, reference vBMD (mg/cm3). */
export const manifestRow = z.object({
  input: z.string().min(1),
  level: z.string().transform((s, ctx) => {
    const r = vertebraLevel.safeParse(s.trim().toUpperCase());
    if (!r.success) {
      ctx.addIssue({ code: 'custom', message: `"${s}" is not a vertebra level (e.g. L1)` });
      return z.NEVER;
    }
    return r.data;
  }),
  qct_vbmd: z.coerce.number().min(0).max(400),
});
export type ManifestRow = z.infer<typeof manifestRow>;

/** Minimal RFC 4180 CSV (quoted fields, doubled quotes); first line is the header. */
export function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.some((f) => f.trim() !== '')) rows.push(row);
      row = [];
    } else field += ch;
  }
  row.push(field);
  if (row.some((f) => f.trim() !== '')) rows.push(row);
  if (rows.length === 0) return [];
  const header = rows[0].map((h) => h.trim().toLowerCase());
  return rows.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, (r[i] ?? '').trim()])));
}

export function readManifest(path: string): ManifestRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new VbmdError('not-found', `Manifest ${path} cannot be read; give a CSV with columns input,level,qct_vbmd.`);
  }
  return parseCsv(text).map((r, i) => {
    const p = manifestRow.safeParse(r);
    if (!p.success) throw new VbmdError('bad-input', `Manifest ${path} row ${i + 2} is not valid (${p.error.issues.map((q) => q.message).join('; ')}); columns are input,level,qct_vbmd.`);
    return p.data;
  });
}

/**
 * Site samples from one loaded scan and its manifest rows: the engine locates and labels the levels and
 * calibrates (site file or default chain); no mask truth exists, so hasMask is false and these samples train
 * only the regression and class heads.
 */
export function siteStudySamples(
  input: string,
  loaded: LoadedVolume,
  rows: ManifestRow[],
  site: SiteCalibrationFile | undefined,
  calibrate: Calibrate | undefined,
): { samples: PhantomStudyResult['samples']; missing: VertebraLevel[] } {
  const report = analyzeVolume(loaded, { site, calibrate });
  const samples: PhantomStudyResult['samples'] = [];
  const missing: VertebraLevel[] = [];
  for (const row of rows) {
    const l = report.levels.find((x) => x.level === row.level);
    if (!l) {
      missing.push(row.level);
      continue;
    }
    const density = extractDensityPatch(loaded.volume, l.centerMm, report.calibration);
    samples.push({
      density,
      mask: new Uint8Array(VOX),
      sample: {
        source: 'site',
        seed: null,
        input,
        level: row.level,
        locatedLevel: l.level,
        labelConfidence: l.labelConfidence,
        centerMm: l.centerMm,
        truthVbmdMgCm3: row.qct_vbmd,
        classIndex: classIndexForVbmd(row.qct_vbmd),
        hasMask: false,
        maskVoxels: 0,
        truthMaskMeanMgCm3: null,
        lesion: null,
        fracture: false,
        contrast: report.input.contrast,
        kvp: loaded.meta.kvp ?? null,
        noiseHu: null,
        sliceThicknessMm: null,
        pixelSpacingMm: loaded.volume.spacingMm[0],
        calibration: calOf(report.calibration),
        trueCalibration: null,
        defaultCalibration: null,
        geometricVbmdMgCm3: l.vbmd,
        geometricIncluded: l.included,
        exclusionReason: l.exclusionReason,
        partialCoverage: l.exclusionReason === 'partial-coverage',
      },
    });
  }
  return { samples, missing };
}
