/**
 * A cohort row's rate of change and change: src/trend/rate-of-change.ts, the one definition the CDS card and the
 * SMART app use, over the patient's measured scans inside --since/--until. Least squares over the scans of the
 * RATE_WINDOW_YEARS up to the latest measured one (a recent slope, not a lifetime average), in mg/cm3 per year and
 * as % per year of the fitted value at the window's first scan; the change is that first scan against the latest,
 * judged against the least significant change (significant-change.ts). `--declining` is isFastDecline of the two,
 * the card's rule. The DuckDB engine computes the same in SQL (sql/cohort-query.ts PATIENT_SQL); the engines-agree
 * test holds them together.
 */
import type { TimedVbmd } from '../trend/rate-of-change.js';
import { MIN_RATE_SPAN_YEARS, MS_PER_YEAR, RATE_WINDOW_YEARS, rateOfChange, rateWindow, windowChange } from '../trend/rate-of-change.js';
import type { Change } from '../trend/significant-change.js';

export { MS_PER_YEAR, RATE_WINDOW_YEARS };
/** At least two scans spanning at least half a year (src/trend/rate-of-change.ts says why). */
export const MIN_TREND_SPAN_YEARS = MIN_RATE_SPAN_YEARS;
export const MIN_TREND_SCANS = 2;

export interface Trend {
  /** mg/cm3 per year (negative = loss). */
  mgCm3PerYear: number;
  /** Percent per year of the fitted value at the window's first scan. */
  pctPerYear: number;
  spanYears: number;
  /** Measured scans in the window. */
  scans: number;
}

/** The trend (null with fewer than MIN_TREND_SCANS measured scans in the window, a span under
 * MIN_TREND_SPAN_YEARS, or a fitted baseline <= 0: a percentage of it means nothing) and the change over the same
 * window (null with fewer than two measured scans in it). */
export function cohortTrend(measured: readonly TimedVbmd[]): { trend: Trend | null; change: Change | null } {
  const r = rateOfChange(measured);
  const trend = r && { mgCm3PerYear: r.mgCm3PerYear, pctPerYear: r.percentPerYear, spanYears: (r.toMs - r.fromMs) / MS_PER_YEAR, scans: r.count };
  return { trend, change: r ? r.change : windowChange(rateWindow(measured)) };
}
