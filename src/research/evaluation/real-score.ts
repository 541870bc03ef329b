import type { ReportSummary, VbmdReport, VertebraLevel } from '../../bmd/report.js';
import type { Vec3 } from '../../imaging/volume.js';
import { levelIndex, type SpineReference } from './real-reference.js';
import type { Anchor, VariantView } from './real-variants.js';

/**
 * One engine report on one variant of a real CT, judged against the reference levels: which reported level lies
 * in which reference body, named right or wrong at what confidence, and which bodies were never reported.
 */

/** A label given with at least this confidence is one a reader may act on: the real-CT calibration target (none
 * wrong at >= 0.8, test/bmd/real-variants.test.ts). */
export const CONFIDENT = 0.8;

export interface LevelVerdict {
  reported: VertebraLevel;
  confidence: number;
  /** Reported centre, in the variant's coordinates. */
  centerMm: Vec3;
  /** The reference body holding the centre (mapped to the original frame), or null. */
  body: VertebraLevel | null;
  depthMm: number | null;
  verdict: 'right' | 'wrong' | 'outside';
}

export interface VariantScore {
  name: string;
  description: string;
  anchors: Anchor[];
  covered: VertebraLevel[];
  reported: number;
  /** Reported levels whose centre lies inside a reference body. */
  found: number;
  right: number;
  wrong: number;
  /** "T6 called T8 @0.85": a body named wrongly with confidence >= CONFIDENT. */
  wrongConfident: string[];
  /** Reported levels whose centre is in no reference body. */
  outside: number;
  /** Covered bodies with no reported centre inside. */
  skipped: VertebraLevel[];
  /** Bodies holding two or more reported centres (one body split into several levels). */
  split: VertebraLevel[];
  summary: ReportSummary;
  maxConfidence: number | null;
  minConfidence: number | null;
  levels: LevelVerdict[];
  /** Reference body centres carried into the variant's coordinates (levels with some part in view). */
  referenceMm: { level: VertebraLevel; centerMm: Vec3 }[];
  notes: string[];
  analyzeMs: number;
}

export function scoreReport(report: VbmdReport, ref: SpineReference, view: VariantView, analyzeMs: number): VariantScore {
  const levels: LevelVerdict[] = report.levels.map((l) => {
    const hit = ref.bodyAt(view.toOriginalMm(l.centerMm as Vec3));
    const verdict = hit === null ? 'outside' : hit.level === l.level ? 'right' : 'wrong';
    return { reported: l.level, confidence: l.labelConfidence, centerMm: l.centerMm as Vec3, body: hit?.level ?? null, depthMm: hit?.depthMm ?? null, verdict };
  });
  const inBody = (b: VertebraLevel): LevelVerdict[] => levels.filter((l) => l.body === b);
  const conf = levels.map((l) => l.confidence);
  return {
    name: view.variant.name,
    description: view.variant.description,
    anchors: view.anchors,
    covered: view.covered,
    reported: levels.length,
    found: levels.filter((l) => l.body !== null).length,
    right: levels.filter((l) => l.verdict === 'right').length,
    wrong: levels.filter((l) => l.verdict === 'wrong').length,
    wrongConfident: levels
      .filter((l) => l.verdict === 'wrong' && l.confidence >= CONFIDENT)
      .map((l) => `${l.body} called ${l.reported} @${l.confidence.toFixed(2)}`),
    outside: levels.filter((l) => l.verdict === 'outside').length,
    skipped: view.covered.filter((b) => inBody(b).length === 0),
    split: [...new Set(levels.map((l) => l.body))].filter((b): b is VertebraLevel => b !== null && inBody(b).length > 1).sort((a, b) => levelIndex(a) - levelIndex(b)),
    summary: report.summary,
    maxConfidence: conf.length ? Math.max(...conf) : null,
    minConfidence: conf.length ? Math.min(...conf) : null,
    levels,
    referenceMm: ref.levels.filter((l) => view.present.includes(l.level)).map((l) => ({ level: l.level, centerMm: view.fromOriginalMm(l.centerMm).map(round1) as Vec3 })),
    notes: view.notes,
    analyzeMs,
  };
}

/** What the full-quality original must meet beyond the variant rules (its acceptance, asserted by
 * test/bmd/real-variants.test.ts). */
export interface StrictExpectation {
  /** Every covered body named right with at least this confidence. */
  minConfidence: number;
  /** ... its centre at least this deep inside the reference body (mm). */
  minDepthMm?: number;
  /** Every reported level (covered or partial) inside its own reference body, named right, with minConfidence. */
  everyReportedRight?: boolean;
  summaryBasis: ReportSummary['basis'];
}

/**
 * The yardstick, one sentence per failed rule (empty = passes): never a confident wrong name, never a skipped or
 * split body; with a naming anchor in view every covered body named right; without one, no confident label at all
 * (counting from nothing is a guess). The original scan also meets its StrictExpectation.
 */
export function acceptanceFailures(s: VariantScore, strict?: StrictExpectation): string[] {
  const out: string[] = [];
  if (s.wrongConfident.length) out.push(`named wrongly with confidence >= ${CONFIDENT}: ${s.wrongConfident.join(', ')}`);
  if (s.skipped.length) out.push(`fully covered bodies not reported: ${s.skipped.join(', ')}`);
  if (s.split.length) out.push(`bodies reported more than once: ${s.split.join(', ')}`);
  const rightIn = (b: VertebraLevel): LevelVerdict | undefined => s.levels.find((l) => l.body === b && l.verdict === 'right');
  if (s.anchors.length > 0) {
    const unnamed = s.covered.filter((b) => !rightIn(b));
    if (unnamed.length) out.push(`with ${s.anchors.join(' and ')} in view, not named right: ${unnamed.join(', ')}`);
  } else if (s.maxConfidence !== null && s.maxConfidence >= CONFIDENT) {
    out.push(`no naming anchor in view, yet a label has confidence ${s.maxConfidence.toFixed(2)} (>= ${CONFIDENT})`);
  }
  if (strict) {
    const judged = strict.everyReportedRight ? s.levels : s.covered.map((b) => rightIn(b)).filter((l): l is LevelVerdict => l !== undefined);
    for (const l of judged) {
      if (l.verdict !== 'right') out.push(`${l.reported} at (${l.centerMm.join(', ')}) is ${l.body ? `in ${l.body}` : 'in no reference body'}`);
      else if (l.confidence < strict.minConfidence) out.push(`${l.reported} confidence ${l.confidence.toFixed(2)} < ${strict.minConfidence}`);
      else if (strict.minDepthMm !== undefined && (l.depthMm ?? -Infinity) < strict.minDepthMm) {
        out.push(`${l.reported} centre ${l.depthMm?.toFixed(1) ?? '-'} mm inside its body (< ${strict.minDepthMm})`);
      }
    }
    if (s.summary.basis !== strict.summaryBasis) out.push(`summary basis ${s.summary.basis}, expected ${strict.summaryBasis}`);
  }
  return out;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
