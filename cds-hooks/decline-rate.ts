/**
 * Rate of change of summary vBMD, defined exactly as the SMART app shows it (smart-app/src/trend.ts
 * `rateOfChange`): least squares over the results of the last 3 years up to the newest one, at least two
 * results spanning >= 0.5 years (closer results are mostly CT measurement noise of a few mg/cm3), expressed
 * as % per year of the fitted value at the window's first result. The card and the app must agree.
 */
export const MS_PER_YEAR = 365.25 * 24 * 3600 * 1000;
export const RATE_WINDOW_YEARS = 3;
export const MIN_RATE_SPAN_YEARS = 0.5;

export interface DeclinePoint {
  effectiveMs: number;
  vbmdMgCm3: number;
}

export interface DeclineRate {
  mgCm3PerYear: number;
  percentPerYear: number;
  results: number;
  fromMs: number;
  toMs: number;
}

export function declineRate(points: readonly DeclinePoint[]): DeclineRate | null {
  if (points.length < 2) return null;
  const latest = Math.max(...points.map((p) => p.effectiveMs));
  const inWindow = points.filter((p) => p.effectiveMs >= latest - RATE_WINDOW_YEARS * MS_PER_YEAR);
  if (inWindow.length < 2) return null;
  const fromMs = Math.min(...inWindow.map((p) => p.effectiveMs));
  if ((latest - fromMs) / MS_PER_YEAR < MIN_RATE_SPAN_YEARS) return null;
  const n = inWindow.length;
  const xs = inWindow.map((p) => (p.effectiveMs - fromMs) / MS_PER_YEAR);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = inWindow.reduce((a, p) => a + p.vbmdMgCm3, 0) / n;
  let sxx = 0;
  let sxy = 0;
  inWindow.forEach((p, i) => {
    const dx = xs[i]! - mx;
    sxx += dx * dx;
    sxy += dx * (p.vbmdMgCm3 - my);
  });
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  const baseline = my - slope * mx;
  if (baseline <= 0) return null;
  return { mgCm3PerYear: slope, percentPerYear: (slope / baseline) * 100, results: n, fromMs, toMs: latest };
}
