import { rateOfChange } from '../src/trend/rate-of-change.js';
import type { Change } from '../src/trend/significant-change.js';

/**
 * Rate of change of summary vBMD for the patient-view card: src/trend/rate-of-change.ts, the definition the
 * SMART app shows and the cohort queries use, so the card and the app always agree.
 */
export { MS_PER_YEAR } from '../src/trend/rate-of-change.js';

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
  /** First result of the window against the latest, judged against the least significant change. */
  change: Change | null;
}

export function declineRate(points: readonly DeclinePoint[]): DeclineRate | null {
  const r = rateOfChange(points.map((p) => ({ tMs: p.effectiveMs, vbmdMgCm3: p.vbmdMgCm3 })));
  return r && { mgCm3PerYear: r.mgCm3PerYear, percentPerYear: r.percentPerYear, results: r.count, fromMs: r.fromMs, toMs: r.toMs, change: r.change };
}
