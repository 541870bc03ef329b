import { spearman } from './metrics.js';
import { generatePhantom } from '../phantom/generate.js';
import type { PhantomOptions, PhantomPreset, PhantomTruth } from '../phantom/types.js';
import { truthLevelNear } from '../phantom/match-truth.js';
import { bodyContainsPoint } from '../phantom/body-mask.js';
import type { ModelInference } from '../../model/model-runner.js';
import { runAnalysis } from '../../analysis/run-analysis.js';
import type { Calibrate } from '../../bmd/calibration/types.js';
import type { BmdCategory, VbmdReport, VertebraLevel } from '../../bmd/report.js';
import { categoryForVbmd } from '../../bmd/report.js';

/**
 * Accuracy of the whole analysis on generated phantoms against their truth (the targets of README.md "Accuracy"; the
 * hard preset for real-CT anatomy): label accuracy over found levels, how often a confident label (>= 0.8) is wrong,
 * fully covered bodies no reported level lies in (skipped), vBMD MAE and Spearman over included levels (known site
 * calibration and the default calibration chain), summary category agreement. Each phantom goes through runAnalysis,
 * the path of `vbmd analyze`, so with a model the numbers are those of the reported (model) values; the geometric
 * ROI's MAE is kept beside them. One case is one serialisable record, so worker processes (eval-phantoms-pool.ts)
 * can share the seeds.
 */
export interface EvalOptions {
  count: number;
  seed: number;
  preset?: PhantomPreset;
  /** Rows/columns of each phantom (default preset: 192; hard: its own draw, 360-512). */
  size?: number;
  calibrate?: Calibrate;
  /** The vBMD network, or null for the engine's geometric ROI alone (as VBMD_MODEL=false). */
  model: ModelInference | null;
  onCase?: (line: string) => void;
}

export const CONFIDENT_LABEL = 0.8;

/** One reported level matched to the truth body nearest its centre. */
export interface LevelRecord {
  reported: VertebraLevel;
  truth: VertebraLevel | null;
  confidence: number;
  included: boolean;
  vbmd: number | null;
  geometric: number | null;
  defaultCalVbmd: number | null;
  truthVbmd: number | null;
}

export interface CaseRecord {
  seed: number;
  levelsText: string;
  contrast: boolean;
  contrastFlagged: boolean;
  /** Hard features in view (empty for the default preset). */
  features: string[];
  /** Acquisition and anatomy labels for the breakdown (range kind, field of view, arms, slice thickness). */
  tags: string[];
  levels: LevelRecord[];
  /** Fully covered truth bodies (C7-L5) and those with no reported centre inside them. */
  truthBodies: VertebraLevel[];
  skipped: VertebraLevel[];
  calibrationMethod: string;
  summary: { vbmd: number | null; levels: VertebraLevel[]; category: BmdCategory };
  truthSummary: number | null;
  analyzeMs: number;
}

const LEVEL_RANGES = ['T1-L2', 'T4-L1', 'T6-L2', 'T8-L3', 'T10-L4', 'T11-L5', 'T12-S1', 'T10-S1'];

export function caseOptions(seed: number, size: number): PhantomOptions {
  // Deterministic variety from the seed: level range, contrast, lesions and fractures on some cases.
  const r = (k: number): number => ((seed * 2654435761 + k * 40503) >>> 0) / 4294967296;
  const levels = LEVEL_RANGES[Math.floor(r(1) * LEVEL_RANGES.length)];
  const o: PhantomOptions = { seed, levels, size, pixelSpacingMm: 380 / size, sliceThicknessMm: 1.5 };
  if (r(2) < 0.15) o.contrast = true;
  return o;
}

/** Hard cases draw everything from the seed; `size` (optional) shrinks the matrix and widens pixels alike. */
export function hardCaseOptions(seed: number, size?: number): PhantomOptions {
  return size === undefined ? { seed, preset: 'hard' } : { seed, preset: 'hard', size };
}

function truthSummary(truth: PhantomTruth, levels: VertebraLevel[]): number | null {
  const v = levels.map((l) => truth.levels.find((t) => t.level === l)?.vbmdMgCm3);
  if (v.some((x) => x === undefined) || v.length === 0) return null;
  return (v as number[]).reduce((s, x) => s + x, 0) / v.length;
}

/** Truth bodies a spine engine must find: fully covered, C7 to L5 (C6 and the sacrum are not counted). */
const COUNTED = new Set<string>(['C7', 'T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7', 'T8', 'T9', 'T10', 'T11', 'T12', 'L1', 'L2', 'L3', 'L4', 'L5']);

export async function evaluateCase(seed: number, preset: PhantomPreset, size: number | undefined, model: ModelInference | null, calibrate?: Calibrate): Promise<CaseRecord> {
  const opts = preset === 'hard' ? hardCaseOptions(seed, size) : caseOptions(seed, size ?? 192);
  const p = generatePhantom(opts);
  const truth = p.truth;
  const site = { scanners: [], default: { slope: truth.calibration.slope, intercept: truth.calibration.intercept, method: 'phantom' as const } };
  const t0 = performance.now();
  const rKnown: VbmdReport = await runAnalysis({ loaded: p.loaded }, { site, calibrate, model });
  const analyzeMs = performance.now() - t0;
  const rDefault: VbmdReport = await runAnalysis({ loaded: p.loaded }, { calibrate, model });
  const levels: LevelRecord[] = rKnown.levels.map((l) => {
    const t = truthLevelNear(truth, l.centerMm);
    const d = rDefault.levels.find((x) => x.level === l.level && x.included);
    // With a model, the engine's own value is kept in geometricVbmd (null: it had none); without one it is vbmd.
    const geometric = l.geometricVbmd === undefined ? l.vbmd : l.geometricVbmd;
    return {
      reported: l.level,
      truth: t?.level ?? null,
      confidence: l.labelConfidence,
      included: l.included,
      vbmd: l.vbmd,
      geometric,
      defaultCalVbmd: d?.vbmd ?? null,
      truthVbmd: t?.vbmdMgCm3 ?? null,
    };
  });
  const truthBodies = truth.levels.filter((t) => t.fullyCovered && COUNTED.has(t.level)).map((t) => t.level);
  const skipped = truthBodies.filter((lv) => !rKnown.levels.some((l) => bodyContainsPoint(p, lv, l.centerMm)));
  const h = truth.hard;
  const tags = h ? [`range:${h.range.kind}`, `fov:${h.fov.kind}`, `arms:${h.arms}`, `slice:${truth.volume.sliceThicknessMm >= 3 ? '>=3mm' : truth.volume.sliceThicknessMm >= 1.25 ? '1.25-2.5mm' : '<1.25mm'}`] : [];
  return {
    seed,
    levelsText: String(truth.options.levels),
    contrast: truth.contrast.enabled,
    contrastFlagged: rDefault.input.contrast,
    features: h ? [...h.featuresInView] : [],
    tags,
    levels,
    truthBodies,
    skipped,
    calibrationMethod: rDefault.calibration.method,
    summary: { vbmd: rDefault.summary.vbmd, levels: rDefault.summary.levels, category: rDefault.summary.category },
    truthSummary: truthSummary(truth, rDefault.summary.levels),
    analyzeMs,
  };
}

export function caseLine(c: CaseRecord): string {
  const right = c.levels.filter((l) => l.truth === l.reported).length;
  const wrongConfident = c.levels.filter((l) => l.truth !== l.reported && l.confidence >= CONFIDENT_LABEL).length;
  return (
    `seed ${c.seed} ${c.levelsText}${c.contrast ? ' contrast' : ''}: ${c.levels.length} levels, ${right} labels right` +
    (wrongConfident ? `, ${wrongConfident} wrong at confidence >= ${CONFIDENT_LABEL}` : '') +
    (c.skipped.length ? `, skipped ${c.skipped.join(' ')}` : '') +
    `; summary ${c.summary.vbmd ?? '-'} (${c.summary.levels.join('-')}) truth ${c.truthSummary === null ? '-' : c.truthSummary.toFixed(1)}` +
    (c.features.length ? ` [${[...c.features, ...c.tags].join(' ')}]` : '')
  );
}

export async function evaluatePhantoms(o: EvalOptions): Promise<EvalSummary> {
  const records: CaseRecord[] = [];
  for (let c = 0; c < o.count; c++) {
    const r = await evaluateCase(o.seed + c, o.preset ?? 'default', o.size, o.model, o.calibrate);
    records.push(r);
    o.onCase?.(caseLine(r));
  }
  return summarize(records);
}

export interface LabelStats {
  cases: number;
  levelsFound: number;
  correct: number;
  labelAccuracy: number;
  confident: number;
  confidentWrong: number;
  /** Share of levels given with confidence >= 0.8 whose label is wrong. */
  confidentWrongFraction: number;
  truthBodies: number;
  skippedBodies: number;
}

export interface EvalSummary extends LabelStats {
  levelsTruth: number;
  /** Non-contrast cases (contrast raises trabecular HU by design; those are flagged and counted apart). */
  knownCal: { n: number; maeMgCm3: number; spearman: number };
  /** The engine's geometric ROI on the same levels and known calibration (equal to knownCal without a model). */
  knownCalGeometric: { n: number; maeMgCm3: number; spearman: number };
  defaultCal: { n: number; maeMgCm3: number; spearman: number; method: string };
  contrastCases: { cases: number; knownCalMaeMgCm3: number; defaultCalMaeMgCm3: number; flagged: number };
  categoryAgreement: number;
  noSpineFalsePositives: number;
  meanAnalyzeMs: number;
  /** Hard preset: the same label numbers over the cases showing each feature or acquisition tag. */
  byFeature: Record<string, LabelStats>;
}

export function labelStats(records: CaseRecord[]): LabelStats {
  const lv = records.flatMap((r) => r.levels);
  const correct = lv.filter((l) => l.truth === l.reported).length;
  const conf = lv.filter((l) => l.confidence >= CONFIDENT_LABEL);
  const confWrong = conf.filter((l) => l.truth !== l.reported).length;
  return {
    cases: records.length,
    levelsFound: lv.length,
    correct,
    labelAccuracy: lv.length ? correct / lv.length : 0,
    confident: conf.length,
    confidentWrong: confWrong,
    confidentWrongFraction: conf.length ? confWrong / conf.length : 0,
    truthBodies: records.reduce((s, r) => s + r.truthBodies.length, 0),
    skippedBodies: records.reduce((s, r) => s + r.skipped.length, 0),
  };
}

export function summarize(records: CaseRecord[]): EvalSummary {
  type Pair = { t: number; m: number };
  const known: Pair[] = [];
  const knownGeo: Pair[] = [];
  const dflt: Pair[] = [];
  const knownC: Pair[] = [];
  const dfltC: Pair[] = [];
  const methods = new Map<string, number>();
  let catAgree = 0;
  let catN = 0;
  for (const r of records) {
    methods.set(r.calibrationMethod, (methods.get(r.calibrationMethod) ?? 0) + 1);
    for (const l of r.levels) {
      if (l.truthVbmd === null || !l.included || l.vbmd === null) continue;
      (r.contrast ? knownC : known).push({ t: l.truthVbmd, m: l.vbmd });
      if (!r.contrast && l.geometric !== null) knownGeo.push({ t: l.truthVbmd, m: l.geometric });
      if (l.defaultCalVbmd !== null) (r.contrast ? dfltC : dflt).push({ t: l.truthVbmd, m: l.defaultCalVbmd });
    }
    if (r.truthSummary !== null && !r.contrast) {
      catN++;
      if (categoryForVbmd(r.truthSummary) === r.summary.category) catAgree++;
    }
  }
  const mae = (v: Pair[]): number => v.reduce((s, x) => s + Math.abs(x.m - x.t), 0) / Math.max(1, v.length);
  const rho = (v: Pair[]): number => spearman(v.map((x) => x.t), v.map((x) => x.m));
  const byFeature: Record<string, LabelStats> = {};
  for (const key of new Set(records.flatMap((r) => [...r.features, ...r.tags]))) {
    byFeature[key] = labelStats(records.filter((r) => r.features.includes(key) || r.tags.includes(key)));
  }
  const contrast = records.filter((r) => r.contrast);
  return {
    ...labelStats(records),
    levelsTruth: records.reduce((s, r) => s + r.truthBodies.length, 0),
    knownCal: { n: known.length, maeMgCm3: mae(known), spearman: rho(known) },
    knownCalGeometric: { n: knownGeo.length, maeMgCm3: mae(knownGeo), spearman: rho(knownGeo) },
    defaultCal: { n: dflt.length, maeMgCm3: mae(dflt), spearman: rho(dflt), method: [...methods].map(([m, n]) => `${m} x${n}`).join(', ') },
    contrastCases: { cases: contrast.length, knownCalMaeMgCm3: mae(knownC), defaultCalMaeMgCm3: mae(dfltC), flagged: contrast.filter((r) => r.contrastFlagged).length },
    categoryAgreement: catN ? catAgree / catN : 0,
    noSpineFalsePositives: 0,
    meanAnalyzeMs: records.reduce((s, r) => s + r.analyzeMs, 0) / Math.max(1, records.length),
    byFeature,
  };
}
