/**
 * Rate of change of a patient's summary vBMD: the one definition the CDS card (cds-hooks/), the SMART app
 * (smart-app/) and the cohort queries (src/population/trend.ts, and its SQL twin src/population/sql/cohort-query.ts)
 * share, so an alert, the chart and a population list never disagree about how fast someone is losing bone.
 *
 * Least squares over the results of the last RATE_WINDOW_YEARS up to the newest one (recent slope, not a
 * lifetime average), at least two results spanning MIN_RATE_SPAN_YEARS, expressed as % per year of the
 * fitted value at the window's first result (a baseline less noisy than that single measurement).
 */
import type { Change } from './significant-change.js';
import { changeBetween } from './significant-change.js';

export const MS_PER_YEAR = 365.25 * 86_400_000;
/** Closer results are mostly CT measurement noise: vBMD precision is a few mg/cm3, and 1 mg/cm3 over one
 * month reads as 12 mg/cm3/year. */
export const MIN_RATE_SPAN_YEARS = 0.5;
export const RATE_WINDOW_YEARS = 3;

export interface TimedVbmd {
  tMs: number;
  vbmdMgCm3: number;
}

export interface LinearFit {
  slopePerYear: number;
  /** Fitted value at t0Ms. */
  interceptAtT0: number;
  t0Ms: number;
}

/** Ordinary least squares of value on time (years from the earliest point). Needs >= 2 distinct times. */
export function linearFit(points: readonly TimedVbmd[]): LinearFit | null {
  if (points.length < 2) return null;
  const t0Ms = Math.min(...points.map((p) => p.tMs));
  const n = points.length;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += (p.tMs - t0Ms) / MS_PER_YEAR;
    sy += p.vbmdMgCm3;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    const dx = (p.tMs - t0Ms) / MS_PER_YEAR - mx;
    sxx += dx * dx;
    sxy += dx * (p.vbmdMgCm3 - my);
  }
  if (sxx === 0) return null;
  const slopePerYear = sxy / sxx;
  return { slopePerYear, interceptAtT0: my - slopePerYear * mx, t0Ms };
}

export interface RateOfChange {
  /** mg/cm3 per year (negative = loss). */
  mgCm3PerYear: number;
  /** Percent per year of the fitted value at the window's first result. */
  percentPerYear: number;
  /** Results in the window. */
  count: number;
  fromMs: number;
  toMs: number;
  /** The first result of the window against the latest: whether the loss exceeds the least significant
   * change (significant-change.ts). A fitted slope can look fast on noise alone. */
  change: Change | null;
}

/** A decline at least `thresholdPctPerYear` fast AND larger than the least significant change: the one
 * definition of "falling fast" for the card, the app and the cohort. */
export function isFastDecline(rate: Pick<RateOfChange, 'percentPerYear' | 'change'> | null, thresholdPctPerYear: number): boolean {
  return rate !== null && rate.percentPerYear <= -thresholdPctPerYear && rate.change?.verdict === 'decline';
}

/** The results a rate is fitted to: those of the last `windowYears` up to the newest (empty for none). */
export function rateWindow(points: readonly TimedVbmd[], windowYears: number = RATE_WINDOW_YEARS): TimedVbmd[] {
  if (points.length === 0) return [];
  const latest = Math.max(...points.map((p) => p.tMs));
  return points.filter((p) => p.tMs >= latest - windowYears * MS_PER_YEAR);
}

/** The first result of a window against the latest (significant-change.ts), or null with fewer than two. Equal
 * times keep the lower value, as everywhere else (the cautious reading). */
export function windowChange(inWindow: readonly TimedVbmd[]): Change | null {
  if (inWindow.length < 2) return null;
  const fromMs = Math.min(...inWindow.map((p) => p.tMs));
  const toMs = Math.max(...inWindow.map((p) => p.tMs));
  const pick = (t: number): TimedVbmd => inWindow.filter((p) => p.tMs === t).reduce((a, b) => (b.vbmdMgCm3 < a.vbmdMgCm3 ? b : a));
  return changeBetween(pick(fromMs), pick(toMs));
}

/** Null with fewer than two results in the window, a span under the minimum, or a fitted baseline <= 0. */
export function rateOfChange(
  points: readonly TimedVbmd[],
  opts: { windowYears?: number; minSpanYears?: number } = {},
): RateOfChange | null {
  const minSpanYears = opts.minSpanYears ?? MIN_RATE_SPAN_YEARS;
  const inWindow = rateWindow(points, opts.windowYears);
  if (inWindow.length < 2) return null;
  const fromMs = Math.min(...inWindow.map((p) => p.tMs));
  const latest = Math.max(...inWindow.map((p) => p.tMs));
  if ((latest - fromMs) / MS_PER_YEAR < minSpanYears) return null;
  const fit = linearFit(inWindow);
  if (!fit || fit.interceptAtT0 <= 0) return null;
  return {
    mgCm3PerYear: fit.slopePerYear,
    percentPerYear: (fit.slopePerYear / fit.interceptAtT0) * 100,
    count: inWindow.length,
    fromMs,
    toMs: latest,
    change: windowChange(inWindow),
  };
}
