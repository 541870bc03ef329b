import { VERTEBRA_LEVELS } from '../../src/bmd/report.js';
import type { VbmdStudy } from './model.js';
import { isFastDecline, rateOfChange as sharedRateOfChange, type RateOfChange as SharedRateOfChange } from '../../src/trend/rate-of-change.js';
import { changeSincePrevious, type Change } from '../../src/trend/significant-change.js';
import { contrastMix, type ContrastMix } from '../../src/trend/contrast-mix.js';
import { linearFit, type LinearFit } from '../../src/trend/rate-of-change.js';

/**
 * Data shaping for the trend view: pure functions over parsed studies (no DOM, no FHIR), unit-tested with
 * known answers in test/smart-app/trend.test.ts.
 */

export { MS_PER_YEAR, MIN_RATE_SPAN_YEARS, RATE_WINDOW_YEARS, linearFit } from '../../src/trend/rate-of-change.js';

/** Same default as the CDS patient-view alert (config CDS_DECLINE_PCT_PER_YEAR = 5): a loss faster than
 * this is flagged. Trabecular vertebral QCT loss in untreated early postmenopause is ~2-3 %/yr, and
 * aromatase-inhibitor or androgen-deprivation therapy roughly doubles it; 5 %/yr is clearly beyond age. */
export const FAST_DECLINE_PCT_PER_YEAR = 5;

export interface TrendPoint {
  tMs: number;
  vbmdMgCm3: number;
  observationId: string;
  /** Result with a nominal (uncalibrated) calibration: drawn hollow. */
  uncalibrated?: boolean;
  /** Contrast-enhanced CT (reads higher): drawn as a triangle. */
  contrast?: boolean;
  /** Category extrapolated from thoracic (or a single) level: labelled "T". */
  thoracic?: boolean;
}

export interface Trend {
  /** Summary vBMD per study with a value, oldest first. */
  summary: TrendPoint[];
  /** Per vertebral level (included levels with a value only), anatomical order. */
  levels: { level: string; points: TrendPoint[] }[];
  /** Studies without a summary value (shown in the table, not on the chart). */
  withoutValue: number;
}

const levelIndex = (level: string): number => {
  const i = (VERTEBRA_LEVELS as readonly string[]).indexOf(level);
  return i < 0 ? VERTEBRA_LEVELS.length : i;
};

/** Oldest first; at the same instant the lower value last, so it is the latest (the cautious reading, as
 * in src/fhir/result-reader.ts). */
export function sortByDate(studies: readonly VbmdStudy[]): VbmdStudy[] {
  return [...studies].sort((a, b) => a.effectiveMs - b.effectiveMs || (b.vbmdMgCm3 ?? -Infinity) - (a.vbmdMgCm3 ?? -Infinity));
}

export function buildTrend(studies: readonly VbmdStudy[]): Trend {
  const sorted = sortByDate(studies);
  const summary: TrendPoint[] = [];
  const byLevel = new Map<string, TrendPoint[]>();
  let withoutValue = 0;
  for (const s of sorted) {
    if (s.vbmdMgCm3 === null) withoutValue++;
    else {
      summary.push({
        tMs: s.effectiveMs,
        vbmdMgCm3: s.vbmdMgCm3,
        observationId: s.observationId,
        ...(s.uncalibrated ? { uncalibrated: true } : {}),
        ...(s.contrastEnhanced ? { contrast: true } : {}),
        ...(s.basis === 'thoracic-extrapolated' || s.basis === 'single-level' ? { thoracic: true } : {}),
      });
    }
    for (const l of s.levels) {
      if (!l.included || l.vbmdMgCm3 === null) continue;
      const list = byLevel.get(l.level) ?? [];
      list.push({ tMs: s.effectiveMs, vbmdMgCm3: l.vbmdMgCm3, observationId: s.observationId });
      byLevel.set(l.level, list);
    }
  }
  const levels = [...byLevel.entries()]
    .sort(([a], [b]) => levelIndex(a) - levelIndex(b))
    .map(([level, points]) => ({ level, points }));
  return { summary, levels, withoutValue };
}

export interface RateOfChange extends SharedRateOfChange {
  /** Studies in the window (= count). */
  studies: number;
  fastDecline: boolean;
  /** The least-squares line over the window (drawn on the chart). */
  fit: LinearFit;
  /** Contrast-enhanced and other CTs in the window. */
  contrast: ContrastMix;
}

/**
 * Rate of change of summary vBMD (src/trend/rate-of-change.ts: the same definition as the CDS card and the
 * cohort queries), flagged as a fast decline when beyond the threshold and beyond the least significant
 * change (isFastDecline, the card's and the cohort's rule).
 */
export function rateOfChange(
  points: readonly TrendPoint[],
  opts: { windowYears?: number; minSpanYears?: number; fastDeclinePctPerYear?: number } = {},
): RateOfChange | null {
  const r = sharedRateOfChange(points, opts);
  if (!r) return null;
  const threshold = opts.fastDeclinePctPerYear ?? FAST_DECLINE_PCT_PER_YEAR;
  const inWindow = pointsInRate(points, r);
  // Same points as the shared definition, so the line drawn is the slope stated.
  const fit = linearFit(inWindow) as LinearFit;
  const contrast = contrastMix(points.map((p) => ({ tMs: p.tMs, contrastEnhanced: p.contrast === true })), r.fromMs, r.toMs);
  return { ...r, studies: r.count, fastDecline: isFastDecline(r, threshold), fit, contrast };
}

/** The points the rate of change is fitted to (its window, oldest first). */
export function pointsInRate<P extends { tMs: number }>(points: readonly P[], rate: { fromMs: number; toMs: number }): P[] {
  return points.filter((p) => p.tMs >= rate.fromMs && p.tMs <= rate.toMs);
}

/** The latest result against the previous one: a decline or gain only beyond the least significant change
 * (src/trend/significant-change.ts), else within measurement error. */
export function changeSincePreviousStudy(points: readonly TrendPoint[]): Change | null {
  return changeSincePrevious(points);
}

export interface LatestLevel {
  level: string;
  vbmdMgCm3: number;
  effectiveMs: number;
  observationId: string;
}

/** For each vertebral level, its most recent included measurement (levels can come from different studies
 * when a later scan covered less of the spine). Anatomical order. */
export function latestByLevel(studies: readonly VbmdStudy[]): LatestLevel[] {
  const best = new Map<string, LatestLevel>();
  for (const s of studies) {
    for (const l of s.levels) {
      if (!l.included || l.vbmdMgCm3 === null) continue;
      const prev = best.get(l.level);
      if (!prev || s.effectiveMs > prev.effectiveMs) {
        best.set(l.level, { level: l.level, vbmdMgCm3: l.vbmdMgCm3, effectiveMs: s.effectiveMs, observationId: s.observationId });
      }
    }
  }
  return [...best.values()].sort((a, b) => levelIndex(a.level) - levelIndex(b.level));
}

/** The newest study (with or without a value); null for none. */
export function latestStudy(studies: readonly VbmdStudy[]): VbmdStudy | null {
  let best: VbmdStudy | null = null;
  for (const s of studies) if (!best || s.effectiveMs > best.effectiveMs) best = s;
  return best;
}

/** The study a launch context points at: `ImagingStudy/ID` (matched by the Observation's derivedFrom
 * reference, or by the study's DICOM UID when `uids` knows it: results found by polling name the study by UID
 * only), `urn:dicom:uid:<uid>` (a context given by identifier), or `Observation/ID` (the result itself, as a
 * CDS card's appContext names it). First reference that matches. */
export function studyForContext(
  studies: readonly VbmdStudy[],
  refs: string | readonly string[] | undefined,
  uids: ReadonlyMap<string, string> = new Map(),
): VbmdStudy | null {
  const list = typeof refs === 'string' ? [refs] : (refs ?? []);
  for (const ref of list) {
    let hit: VbmdStudy | undefined;
    if (ref.startsWith('Observation/')) hit = studies.find((s) => `Observation/${s.observationId}` === ref);
    else {
      const uid = ref.startsWith(UID_REF) ? ref.slice(UID_REF.length) : uids.get(ref);
      hit = studies.find((s) => s.imagingStudy?.reference === ref) ?? (uid ? studies.find((s) => s.imagingStudy?.studyUid === uid) : undefined);
    }
    if (hit) return hit;
  }
  return null;
}

/** A context reference by DICOM Study Instance UID (fhirContext `{type: 'ImagingStudy', identifier}`). */
export const UID_REF = 'urn:dicom:uid:';

/** References the launch put in context: fhirContext entries and a CDS card's appContext
 * (`{"observation":"Observation/ID"}`, or any JSON with `observation`/`imagingStudy` strings). */
export function contextReferences(tokenResponse: unknown): string[] {
  const t = (tokenResponse ?? {}) as { fhirContext?: unknown; appContext?: unknown };
  const refs: string[] = [];
  if (Array.isArray(t.fhirContext)) {
    for (const c of t.fhirContext) {
      const r = (c as { reference?: unknown })?.reference;
      if (typeof r === 'string' && /^(ImagingStudy|Observation)\/[A-Za-z0-9\-.]{1,64}$/.test(r)) refs.push(r);
      // SMART 2.1 fhirContext may name a resource by identifier: an ImagingStudy by its DICOM UID.
      const id = (c as { type?: unknown; identifier?: { system?: unknown; value?: unknown } })?.identifier;
      if ((c as { type?: unknown }).type === 'ImagingStudy' && id?.system === 'urn:dicom:uid' && typeof id.value === 'string') {
        const uid = id.value.replace(/^urn:oid:/, '');
        if (/^[0-9.]{1,64}$/.test(uid)) refs.push(`${UID_REF}${uid}`);
      }
    }
  }
  if (typeof t.appContext === 'string') {
    try {
      const a = JSON.parse(t.appContext) as Record<string, unknown>;
      for (const k of ['observation', 'imagingStudy']) {
        const r = a?.[k];
        if (typeof r === 'string' && /^(ImagingStudy|Observation)\/[A-Za-z0-9\-.]{1,64}$/.test(r)) refs.push(r);
      }
    } catch {
      // appContext is opaque to the EHR; a value we cannot read just means no study in context.
    }
  }
  return refs;
}
