import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadInputPath } from '../../analysis/load-input.js';
import { analyzeVolume } from '../../bmd/analyze.js';
import type { SiteCalibrationFile } from '../../bmd/calibration/types.js';
import type { VbmdReport, VertebraLevel } from '../../bmd/report.js';
import { generatePhantom } from '../phantom/generate.js';
import type { PhantomTruth } from '../phantom/types.js';
import { truthLevelNear } from '../phantom/match-truth.js';
import { modelCaseOptions } from '../training-data/cases.js';
import { readManifest, type ManifestRow } from '../training-data/export-patches.js';
import { applyInferences, enrichReportWithModel } from '../../model/enrich-report.js';
import { inferDensityPatches, type ClassProbabilities } from '../../model/infer-levels.js';
import { extractDensityPatch } from '../../model/patch.js';
import { PATCH_VOXELS } from '../../model/contract.js';
import type { ModelInference } from '../../model/model-runner.js';

/**
 * How the scan was calibrated for a run: `site` = the scanner's calibration line from a site file (a site with
 * phantom or asynchronous calibration; on phantoms the generator's true line), `phantomless` = the engine's
 * default chain without a site file (internal fat/muscle/blood fit, nominal if that fails).
 */
export type CalibrationMode = 'site' | 'phantomless';

/** One vertebra of the evaluation set, measured both ways on the same centre and calibration. */
export interface EvalRow {
  caseId: string;
  level: VertebraLevel;
  calibration: CalibrationMode;
  /** Method actually used by the engine (phantom, asynchronous, phantomless-internal, nominal). */
  calibrationMethod: string;
  /** Reference vBMD: phantom truth or the manifest's QCT value, mg/cm3. */
  reference: number;
  geometric: number | null;
  /** The level's vbmd as the pipeline reports it (src/model/enrich-report.ts VBMD_SOURCE_DECISION rule). */
  reported: number | null;
  /** Model: mean density over its predicted ROI. */
  model: number | null;
  /** Model: regression head. */
  regression: number | null;
  probabilities: ClassProbabilities | null;
  /** The engine's QC kept the level for the summary. */
  included: boolean;
  exclusionReason: string | null;
  lesion: 'blastic' | 'lytic' | null;
  fracture: boolean;
  contrast: boolean;
}

function rowsFromReport(
  report: VbmdReport,
  caseId: string,
  calibration: CalibrationMode,
  match: (level: VbmdReport['levels'][number]) => { level: VertebraLevel; reference: number; lesion: EvalRow['lesion']; fracture: boolean } | null,
  contrast: boolean,
): EvalRow[] {
  const out: EvalRow[] = [];
  for (const l of report.levels) {
    const t = match(l);
    if (!t) continue;
    out.push({
      caseId,
      level: t.level,
      calibration,
      calibrationMethod: report.calibration.method,
      reference: t.reference,
      geometric: l.geometricVbmd ?? l.vbmd,
      reported: l.vbmd,
      model: l.modelVbmd ?? null,
      regression: l.modelRegressionVbmd ?? null,
      probabilities: l.modelClassProbabilities ?? null,
      included: l.included,
      exclusionReason: l.exclusionReason,
      lesion: t.lesion,
      fracture: t.fracture,
      contrast,
    });
  }
  return out;
}

export interface PhantomSetOptions {
  count: number;
  /** First seed; the held-out set is HELDOUT_SEED_BASE (900000) onwards (src/research/training-data/cases.ts). */
  seed: number;
  runner: ModelInference;
  calibrations: CalibrationMode[];
  /**
   * Folder for the engine's side of each study (truth, geometric report, density patches at the engine's
   * centres): generating and analysing a phantom takes seconds, the network a fraction of that, so a new
   * model is evaluated on the same engine results in minutes. Entries record when and by which engine commit
   * they were made (`engine`), and the table says so.
   */
  cacheDir?: string;
  engine?: string;
  onCase?: (line: string) => void;
}

interface CachedStudy {
  schema: 'vbmd.eval-cache/1';
  seed: number;
  options: unknown;
  engine: string;
  createdAt: string;
  truth: PhantomTruth;
  modes: { mode: CalibrationMode; report: VbmdReport }[];
}

const V3 = PATCH_VOXELS ** 3;

/** Engine side of one held-out study: from the cache when it matches the case, else computed (and cached). */
async function engineSide(seed: number, o: PhantomSetOptions): Promise<{ study: CachedStudy; densities: Map<CalibrationMode, Float32Array[]>; cached: boolean }> {
  const mc = modelCaseOptions(seed);
  const file = o.cacheDir ? join(o.cacheDir, `seed-${seed}.json`) : null;
  const patchFile = (mode: CalibrationMode): string => join(o.cacheDir!, `seed-${seed}-${mode}.f32`);
  if (file && existsSync(file)) {
    const study = JSON.parse(await readFile(file, 'utf8')) as CachedStudy;
    const ok =
      study.schema === 'vbmd.eval-cache/1' &&
      JSON.stringify(study.options) === JSON.stringify(mc.options) &&
      o.calibrations.every((m) => study.modes.some((x) => x.mode === m) && existsSync(patchFile(m)));
    if (ok) {
      const densities = new Map<CalibrationMode, Float32Array[]>();
      for (const { mode, report } of study.modes) {
        const buf = await readFile(patchFile(mode));
        const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
        densities.set(mode, report.levels.map((_, i) => all.slice(i * V3, (i + 1) * V3)));
      }
      return { study, densities, cached: true };
    }
  }
  const phantom = generatePhantom(mc.options);
  const truth = phantom.truth;
  const study: CachedStudy = { schema: 'vbmd.eval-cache/1', seed, options: mc.options, engine: o.engine ?? 'unknown', createdAt: new Date().toISOString(), truth, modes: [] };
  const densities = new Map<CalibrationMode, Float32Array[]>();
  for (const mode of o.calibrations) {
    const site: SiteCalibrationFile | undefined =
      mode === 'site' ? { scanners: [], default: { slope: truth.calibration.slope, intercept: truth.calibration.intercept, method: 'phantom' } } : undefined;
    const report = analyzeVolume(phantom.loaded, { site });
    study.modes.push({ mode, report });
    densities.set(mode, report.levels.map((l) => extractDensityPatch(phantom.loaded.volume, l.centerMm, report.calibration)));
  }
  if (o.cacheDir && file) {
    await mkdir(o.cacheDir, { recursive: true });
    for (const [mode, d] of densities) {
      const all = new Float32Array(d.length * V3);
      d.forEach((x, i) => all.set(x, i * V3));
      await writeFile(patchFile(mode), new Uint8Array(all.buffer));
    }
    await writeFile(file, JSON.stringify(study));
  }
  return { study, densities, cached: false };
}

/**
 * The held-out phantom set: the training engineer's case generator (src/research/training-data/cases.ts modelCaseOptions, the
 * set models/MODEL_CARD.md describes: lesions, fractures, contrast, noise, kVp, scanner, slice thickness
 * varied), the engine's own level centres and calibration, and the model on those same centres (the same
 * patches the pipeline would feed it). Levels are matched to the truth by position; bodies not fully in the
 * scan and S1 are left out as in training.
 */
export async function collectPhantomRows(o: PhantomSetOptions): Promise<{ rows: EvalRow[]; engines: Set<string> }> {
  const rows: EvalRow[] = [];
  const engines = new Set<string>();
  for (let s = o.seed; s < o.seed + o.count; s++) {
    const t0 = performance.now();
    const { study, densities, cached } = await engineSide(s, o);
    engines.add(`${study.engine}, ${cached ? 'cached' : 'computed'} ${study.createdAt.slice(0, 10)}`);
    const truth = study.truth;
    const match = (l: VbmdReport['levels'][number]) => {
      const t = truthLevelNear(truth, l.centerMm);
      if (!t || !t.fullyCovered || t.level === 'S1') return null;
      return { level: t.level, reference: t.vbmdMgCm3, lesion: t.lesion?.kind ?? null, fracture: t.fracture !== null };
    };
    const before = rows.length;
    for (const mode of o.calibrations) {
      const geometric = study.modes.find((m) => m.mode === mode)!.report;
      const inferred = await inferDensityPatches(o.runner, densities.get(mode)!);
      // Default options: the pipeline's own rule decides `vbmd` (reported); geometricVbmd keeps the engine's.
      const report = applyInferences(geometric, inferred, o.runner.model);
      rows.push(...rowsFromReport(report, `phantom:seed=${s}`, mode, match, truth.contrast.enabled));
    }
    const opt = study.options as { levels?: string };
    o.onCase?.(
      `seed ${s} ${opt.levels ?? ''}${truth.contrast.enabled ? ' contrast' : ''} lesions ${truth.levels.filter((l) => l.lesion).map((l) => `${l.level}:${l.lesion!.kind}`).join(',') || '-'} fractures ${truth.levels.filter((l) => l.fracture).map((l) => l.level).join(',') || '-'}: ${rows.length - before} rows, ${Math.round(performance.now() - t0)} ms${cached ? ' (engine side cached)' : ''}`,
    );
  }
  return { rows, engines };
}

/**
 * A site's labelled scans (CSV input,level,qct_vbmd; src/research/training-data/export-patches.ts readManifest, the format the
 * training command takes): each input is loaded once, analysed with the site calibration file when given
 * (else the phantomless chain), and its listed levels are matched by label.
 */
export async function collectManifestRows(o: {
  manifest: string;
  runner: ModelInference;
  site?: SiteCalibrationFile;
  onCase?: (line: string) => void;
}): Promise<EvalRow[]> {
  const all = readManifest(o.manifest);
  const byInput = new Map<string, ManifestRow[]>();
  for (const r of all) byInput.set(r.input, [...(byInput.get(r.input) ?? []), r]);
  const rows: EvalRow[] = [];
  const mode: CalibrationMode = o.site ? 'site' : 'phantomless';
  for (const [input, want] of byInput) {
    const loaded = await loadInputPath(input);
    const geometric = analyzeVolume(loaded, { site: o.site });
    const report = await enrichReportWithModel(geometric, loaded, o.runner);
    const got = rowsFromReport(
      report,
      input,
      mode,
      (l) => {
        const r = want.find((w) => w.level === l.level);
        return r ? { level: r.level, reference: r.qct_vbmd, lesion: null, fracture: l.exclusionReason === 'fracture' } : null;
      },
      report.input.contrast,
    );
    rows.push(...got);
    const missing = want.filter((w) => !got.some((g) => g.level === w.level)).map((w) => w.level);
    o.onCase?.(`${input}: ${got.length} of ${want.length} levels found${missing.length ? ` (not found: ${missing.join(', ')})` : ''}`);
  }
  return rows;
}
