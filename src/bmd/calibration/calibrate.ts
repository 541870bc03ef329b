import type { CalibrationResult } from '../report.js';
import { DEFAULT_KVP, FIT_BOUNDS, TISSUE_SD_HU, equivalentDensityMgCm3, referenceForKvp, type KvpReference, type ReferenceTissue } from './references.js';
import { matchSiteCalibration } from './site-file.js';
import { sampleReferenceTissues, type TissueSamples } from './tissue-sampling.js';
import type { CalibrationInput } from './types.js';

/** Weighted least squares y = intercept + slope * x (weights default 1), with the weighted R^2. */
export function fitLine(xs: number[], ys: number[], ws: number[] = xs.map(() => 1)): { slope: number; intercept: number; r2: number } {
  const n = xs.length;
  const sw = ws.reduce((a, b) => a + b, 0);
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += (ws[i] * xs[i]) / sw;
    my += (ws[i] * ys[i]) / sw;
  }
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += ws[i] * (xs[i] - mx) ** 2;
    sxy += ws[i] * (xs[i] - mx) * (ys[i] - my);
    syy += ws[i] * (ys[i] - my) ** 2;
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1;
  return { slope, intercept, r2 };
}

function round(x: number, d = 4): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function nominal(ref: KvpReference, kvpAssumed: boolean, reasons: string[], extra: Record<string, unknown> = {}): CalibrationResult {
  return {
    method: 'nominal',
    slope: ref.nominalSlope,
    intercept: ref.nominalIntercept,
    uncalibrated: true,
    references: {
      kvp: ref.kvp,
      ...(kvpAssumed ? { kvpAssumed: true } : {}),
      reason: reasons.join('; '),
      note: 'Nominal K2HPO4 line for this tube voltage; scanner-specific error of ~10-15 mg/cm3 is possible.',
      ...extra,
    },
  };
}

/**
 * HU -> vBMD calibration for one series, in order of preference:
 * 1. the site calibration file's first matching scanner entry (or its `default`): method phantom/asynchronous;
 * 2. phantomless internal calibration: least squares of the measured HU of air, subcutaneous fat,
 *    paraspinal muscle and (unenhanced) aortic blood against their K2HPO4-equivalent densities;
 * 3. the nominal line for the kVp, flagged `uncalibrated`.
 * `references` always says what was used and why the preferred options were not.
 */
export function calibrate(input: CalibrationInput): CalibrationResult {
  const meta = input.loaded.meta;
  if (input.site) {
    const m = matchSiteCalibration(input.site, meta);
    if (m) {
      return {
        method: m.entry.method ?? 'asynchronous',
        slope: m.entry.slope,
        intercept: m.entry.intercept,
        references: {
          source: 'site calibration file',
          matched: m.kind === 'entry' ? { entry: m.index, ...m.entry } : { entry: 'default', ...m.entry },
          series: { manufacturer: meta.manufacturer ?? null, model: meta.manufacturerModelName ?? null, kvp: meta.kvp ?? null },
        },
      };
    }
  }
  const kvpAssumed = meta.kvp === undefined || !Number.isFinite(meta.kvp);
  const ref = referenceForKvp(kvpAssumed ? DEFAULT_KVP : (meta.kvp as number));
  const siteNote = input.site ? 'site calibration file has no entry for this scanner/kVp and no default' : undefined;
  if (input.vertebralBodyCentersMm.length === 0) {
    return nominal(ref, kvpAssumed, [...(siteNote ? [siteNote] : []), 'no vertebral bodies to sample reference tissues near']);
  }
  const samples = sampleReferenceTissues(input.loaded.volume, input.vertebralBodyCentersMm);
  return internalCalibration(samples, ref, kvpAssumed, Boolean(meta.contrastAgent), siteNote);
}

/** The phantomless fit from sampled tissues (exported for tests and evaluation). */
export function internalCalibration(samples: TissueSamples, ref: KvpReference, kvpAssumed: boolean, contrastAgent: boolean, siteNote?: string): CalibrationResult {
  const skipped: Record<string, string> = {};
  const used: { tissue: ReferenceTissue; hu: number; slices: number }[] = [];
  if (samples.air) used.push({ tissue: 'air', hu: samples.air.medianHu, slices: samples.air.slices });
  else skipped.air = 'not found outside the body near the sampled levels';
  if (samples.fat) used.push({ tissue: 'fat', hu: samples.fat.medianHu, slices: samples.fat.slices });
  else skipped.fat = 'no subcutaneous fat layer found';
  if (samples.muscle) used.push({ tissue: 'muscle', hu: samples.muscle.medianHu, slices: samples.muscle.slices });
  else skipped.muscle = 'no paraspinal muscle found';
  const contrast = contrastAgent || samples.enhancedAorta !== undefined;
  if (contrast) {
    skipped.blood = samples.enhancedAorta
      ? `aorta is contrast-enhanced (${samples.enhancedAorta.medianHu} HU): not a blood reference`
      : 'series records a contrast agent: aortic blood is not a reference';
  } else if (samples.blood) {
    used.push({ tissue: 'blood', hu: samples.blood.medianHu, slices: samples.blood.slices });
  } else {
    skipped.blood = 'aorta not found near the sampled levels';
  }
  const tissues: Record<string, unknown> = {};
  for (const u of used) {
    tissues[u.tissue] = {
      measuredHu: u.hu,
      referenceHu: u.tissue === 'air' ? ref.airHu : u.tissue === 'fat' ? ref.fatHu : u.tissue === 'muscle' ? ref.muscleHu : ref.bloodHu,
      equivalentMgCm3: round(equivalentDensityMgCm3(ref, u.tissue), 2),
      slices: u.slices,
    };
  }
  const common = {
    kvp: ref.kvp,
    ...(kvpAssumed ? { kvpAssumed: true } : {}),
    tissues,
    skipped,
    ...(contrast ? { contrast: true } : {}),
    ...(siteNote ? { site: siteNote } : {}),
    nominal: { slope: ref.nominalSlope, intercept: ref.nominalIntercept },
    referenceSource: 'equivalent densities from typical tissue HU through the nominal K2HPO4 line (src/bmd/calibration/references.ts)',
  };
  const soft = used.filter((u) => u.tissue !== 'air');
  if (soft.length === 0) {
    return nominal(ref, kvpAssumed, [...(siteNote ? [siteNote] : []), 'no soft-tissue reference (fat, muscle, blood) could be sampled'], { tissues, skipped });
  }
  const xs = used.map((u) => equivalentDensityMgCm3(ref, u.tissue));
  const ys = used.map((u) => u.hu);
  let slope: number;
  let intercept: number;
  let r2: number | null;
  let fit: string;
  if (used.length >= 2 && used.some((u) => u.tissue === 'air')) {
    ({ slope, intercept, r2 } = fitLine(xs, ys, used.map((u) => 1 / TISSUE_SD_HU[u.tissue] ** 2)));
    fit = 'weighted least squares of measured HU on equivalent density (weights 1/SD^2 of each tissue across people)';
  } else {
    // Without air the soft tissues span too little density to fix a slope: keep the nominal slope, fit the offset.
    slope = ref.nominalSlope;
    const ws = used.map((u) => 1 / TISSUE_SD_HU[u.tissue] ** 2);
    intercept = ys.reduce((a, y, i) => a + ws[i] * (y - slope * xs[i]), 0) / ws.reduce((a, w) => a + w, 0);
    r2 = null;
    fit = 'offset only (nominal slope): no air reference';
  }
  const qc: string[] = [];
  const rel = slope / ref.nominalSlope;
  if (!(rel >= FIT_BOUNDS.slopeRelMin && rel <= FIT_BOUNDS.slopeRelMax)) qc.push(`fitted slope ${round(slope, 3)} is implausible for ${ref.kvp} kVp (nominal ${ref.nominalSlope})`);
  if (!(intercept >= FIT_BOUNDS.interceptMinHu && intercept <= FIT_BOUNDS.interceptMaxHu)) qc.push(`fitted intercept ${round(intercept, 1)} HU is outside ${FIT_BOUNDS.interceptMinHu}..${FIT_BOUNDS.interceptMaxHu}`);
  if (r2 !== null && r2 < FIT_BOUNDS.minR2) qc.push(`fit R^2 ${round(r2, 4)} is below ${FIT_BOUNDS.minR2}`);
  if (qc.length > 0) {
    return nominal(ref, kvpAssumed, [...(siteNote ? [siteNote] : []), `internal calibration rejected: ${qc.join('; ')}`], {
      rejectedFit: { slope: round(slope), intercept: round(intercept, 2), r2: r2 === null ? null : round(r2, 5) },
      tissues,
      skipped,
    });
  }
  return {
    method: 'phantomless-internal',
    slope: round(slope),
    intercept: round(intercept, 2),
    references: { ...common, fit, r2: r2 === null ? null : round(r2, 5) },
  };
}
