import type { Vec3 } from '../imaging/volume.js';
import { loadInputPath } from '../imaging/load-input.js';
import { analyzeVolume } from '../bmd/analyze.js';
import type { SiteCalibrationFile } from '../bmd/calibration/types.js';
import type { VbmdReport, VertebraLevel } from '../bmd/report.js';
import { generatePhantom } from '../phantom/generate.js';
import type { PhantomTruth } from '../phantom/types.js';
import { modelCaseOptions } from '../model/cases.js';
import { readManifest, type ManifestRow } from '../model/export-patches.js';
import { enrichReportWithModel } from '../model/enrich-report.js';
import type { ClassProbabilities } from '../model/infer-levels.js';
import type { ModelInference } from '../model/model-runner.js';

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

/** Truth body whose centre is nearest the engine's (within 15 mm, half a body height): by position, not by label. */
function nearestTruth(truth: PhantomTruth, c: Vec3): PhantomTruth['levels'][number] | null {
  let best: PhantomTruth['levels'][number] | null = null;
  let bd = 15;
  for (const t of truth.levels) {
    const d = Math.hypot(t.centerMm[0] - c[0], t.centerMm[1] - c[1], t.centerMm[2] - c[2]);
    if (d < bd) {
      bd = d;
      best = t;
    }
  }
  return best;
}

export interface PhantomSetOptions {
  count: number;
  /** First seed; the held-out set is HELDOUT_SEED_BASE (900000) onwards (src/model/cases.ts). */
  seed: number;
  runner: ModelInference;
  calibrations: CalibrationMode[];
  onCase?: (line: string) => void;
}

/**
 * The held-out phantom set: the training engineer's case generator (src/model/cases.ts modelCaseOptions, the
 * set models/MODEL_CARD.md describes: lesions, fractures, contrast, noise, kVp, scanner, slice thickness
 * varied), the engine's own level centres and calibration, and the model on those same centres. Levels are
 * matched to the truth by position; bodies not fully in the scan and S1 are left out as in training.
 */
export async function collectPhantomRows(o: PhantomSetOptions): Promise<EvalRow[]> {
  const rows: EvalRow[] = [];
  for (let s = o.seed; s < o.seed + o.count; s++) {
    const t0 = performance.now();
    const mc = modelCaseOptions(s);
    const phantom = generatePhantom(mc.options);
    const truth = phantom.truth;
    const match = (l: VbmdReport['levels'][number]) => {
      const t = nearestTruth(truth, l.centerMm as Vec3);
      if (!t || !t.fullyCovered || t.level === 'S1') return null;
      return { level: t.level, reference: t.vbmdMgCm3, lesion: t.lesion?.kind ?? null, fracture: t.fracture !== null };
    };
    const before = rows.length;
    for (const mode of o.calibrations) {
      const site: SiteCalibrationFile | undefined =
        mode === 'site' ? { scanners: [], default: { slope: truth.calibration.slope, intercept: truth.calibration.intercept, method: 'phantom' } } : undefined;
      const geometric = analyzeVolume(phantom.loaded, { site });
      const report = await enrichReportWithModel(geometric, phantom.loaded, o.runner, { source: 'geometric' });
      rows.push(...rowsFromReport(report, `phantom:seed=${s}`, mode, match, truth.contrast.enabled));
    }
    o.onCase?.(
      `seed ${s} ${mc.options.levels}${truth.contrast.enabled ? ' contrast' : ''}${mc.options.lesions ? ` lesions ${mc.options.lesions.map((l) => `${l.level}:${l.kind}`).join(',')}` : ''}${mc.options.fractures ? ` fracture ${mc.options.fractures[0].level}` : ''}: ${rows.length - before} rows, ${Math.round(performance.now() - t0)} ms`,
    );
  }
  return rows;
}

/**
 * A site's labelled scans (CSV input,level,qct_vbmd; src/model/export-patches.ts readManifest, the format the
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
    const report = await enrichReportWithModel(geometric, loaded, o.runner, { source: 'geometric' });
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
