/**
 * Whether the change between two vBMD results is real or measurement noise: the one rule the CDS card, the
 * SMART app and the cohort share. A change is a decline (or a gain) only when it exceeds the least
 * significant change (LSC); otherwise it is "within measurement error".
 *
 * LSC at 95% confidence = 2.77 x the precision error (ISCD practice for densitometry; 2.77 = 1.96 x sqrt 2).
 * Precision: helical multidetector QCT of the spine, Bligh M et al., "Helical multidetector row quantitative
 * computed tomography (QCT) precision", Acad Radiol 2009;16(2):150-159: coefficient of variation 1.4% in the
 * best case (no change to the BMD protocol), 1.8% routinely with the reference phantom in place, and 3.6%
 * in the worst case, with no constraints on the clinical CT examination. Opportunistic CT is that last case
 * (different scanners, kVp, tube current, reconstruction, contrast, phantomless calibration), so vbmd uses
 * 3.6%: LSC = 2.77 x 3.6% = 9.97% of the earlier value. It is a floor, not a ceiling: phantomless
 * calibration can add more (see models/MODEL_CARD.md).
 */
export const QCT_PRECISION_CV_PCT = 3.6;
export const LSC_FACTOR = 2.77;
export const LSC_PCT = LSC_FACTOR * QCT_PRECISION_CV_PCT;
export const WITHIN_MEASUREMENT_ERROR = 'within measurement error';

export interface TimedValue {
  tMs: number;
  vbmdMgCm3: number;
}

export type ChangeVerdict = 'decline' | 'gain' | 'within-measurement-error';

export interface Change {
  fromMs: number;
  toMs: number;
  deltaMgCm3: number;
  /** Percent of the earlier value. */
  deltaPct: number;
  /** The least significant change in mg/cm3 for this earlier value. */
  lscMgCm3: number;
  lscPct: number;
  verdict: ChangeVerdict;
}

/** Null when the earlier value is not positive (no percentage can be taken of it). */
export function changeBetween(earlier: TimedValue, later: TimedValue): Change | null {
  if (!(earlier.vbmdMgCm3 > 0) || !Number.isFinite(later.vbmdMgCm3)) return null;
  const deltaMgCm3 = later.vbmdMgCm3 - earlier.vbmdMgCm3;
  const deltaPct = (deltaMgCm3 / earlier.vbmdMgCm3) * 100;
  const verdict: ChangeVerdict = deltaPct < -LSC_PCT ? 'decline' : deltaPct > LSC_PCT ? 'gain' : 'within-measurement-error';
  return {
    fromMs: earlier.tMs,
    toMs: later.tMs,
    deltaMgCm3,
    deltaPct,
    lscMgCm3: (earlier.vbmdMgCm3 * LSC_PCT) / 100,
    lscPct: LSC_PCT,
    verdict,
  };
}

/** The latest result against the one before it (by time), or null with fewer than two. */
export function changeSincePrevious(points: readonly TimedValue[]): Change | null {
  if (points.length < 2) return null;
  const sorted = [...points].sort((a, b) => a.tMs - b.tMs);
  return changeBetween(sorted[sorted.length - 2]!, sorted[sorted.length - 1]!);
}

const signed = (v: number, digits: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}`;

/** "−12.3 mg/cm3 (−10.5%): a decline beyond the least significant change (10.0%)" and the like. */
export function describeChange(c: Change): string {
  const amount = `${signed(c.deltaMgCm3, 1)} mg/cm3 (${signed(c.deltaPct, 1)}%)`;
  const lsc = `least significant change ${c.lscPct.toFixed(1)}%`;
  if (c.verdict === 'decline') return `${amount}: a decline beyond the ${lsc}`;
  if (c.verdict === 'gain') return `${amount}: a gain beyond the ${lsc}`;
  return `${amount}: ${WITHIN_MEASUREMENT_ERROR} (${lsc})`;
}
