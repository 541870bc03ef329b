/**
 * Streaming least-squares trend of one patient's vBMD series: O(1) memory whatever the number of scans and in
 * any arrival order (Welford's online mean/co-moment updates, numerically stable where naive sums of t^2 on
 * epoch years would cancel). Same definition as the SMART app's rateOfChange (smart-app/src/trend.ts): slope
 * in mg/cm3 per year, and the percentage relative to the fitted value at the first scan, a baseline less
 * noisy than that single measurement. The app and the CDS card fit a 3-year window before the latest scan; the cohort fits
 * the whole series inside --since/--until (a rolling window would need every point in memory).
 */
import { MIN_RATE_SPAN_YEARS, MS_PER_YEAR } from '../trend/rate-of-change.js';

export { MS_PER_YEAR };
/** At least two scans spanning at least half a year (src/trend/rate-of-change.ts says why). */
export const MIN_TREND_SPAN_YEARS = MIN_RATE_SPAN_YEARS;
export const MIN_TREND_SCANS = 2;

export interface TrendState {
  n: number;
  meanT: number;
  meanV: number;
  m2T: number;
  cTV: number;
  minT: number;
  maxT: number;
}

export function newTrendState(): TrendState {
  return { n: 0, meanT: 0, meanV: 0, m2T: 0, cTV: 0, minT: Infinity, maxT: -Infinity };
}

export function addTrendPoint(s: TrendState, tMs: number, vMgCm3: number): void {
  const t = tMs / MS_PER_YEAR;
  s.n++;
  const dt = t - s.meanT;
  s.meanT += dt / s.n;
  const dv = vMgCm3 - s.meanV;
  s.meanV += dv / s.n;
  s.m2T += dt * (t - s.meanT);
  s.cTV += dt * (vMgCm3 - s.meanV);
  if (t < s.minT) s.minT = t;
  if (t > s.maxT) s.maxT = t;
}

export interface Trend {
  /** mg/cm3 per year (negative = loss). */
  mgCm3PerYear: number;
  /** Percent per year of the fitted value at the first scan. */
  pctPerYear: number;
  spanYears: number;
  scans: number;
}

/** Null with fewer than MIN_TREND_SCANS measured scans, a span under MIN_TREND_SPAN_YEARS, or a fitted
 * baseline <= 0 (a percentage of it means nothing). */
export function trendOf(s: TrendState): Trend | null {
  if (s.n < MIN_TREND_SCANS) return null;
  const spanYears = s.maxT - s.minT;
  if (!(spanYears >= MIN_TREND_SPAN_YEARS) || s.m2T <= 0) return null;
  const slope = s.cTV / s.m2T;
  const fittedAtFirst = s.meanV + slope * (s.minT - s.meanT);
  if (!(fittedAtFirst > 0)) return null;
  return { mgCm3PerYear: slope, pctPerYear: (100 * slope) / fittedAtFirst, spanYears, scans: s.n };
}
