import { IRREGULAR_LENGTH, lengthOverTrend, nearestScoreMax, type SpineSegment } from './segments.js';

/**
 * Two whole neighbouring levels, one far shorter than the column's own trend of level length and one far
 * longer, that together span two levels: the disc between them was read inside one of the two bodies (a
 * fracture line, an endplate lesion, hardware or cement across the disc), while the disc itself was missed.
 * Vertebral spacing changes by a few % per level (Panjabi et al.), so neither length is a body's: the two are
 * parted again where the disc score peaks nearest their middle, and that boundary is marked inferred.
 *
 * Counting is not changed by this (two pieces stay two), but each body's piece, and with it its centre and ROI,
 * is: hard phantom 20042 had T12 at 1.40 of the trend and T11 at 0.48, a false disc 1 mm under T11's transverse
 * processes; T11's piece then held none of T11's centre, and it was reported as skipped.
 */

/** The short one of the two is at most this share of the trend (a disc read 40% of a level from its place). */
const SHORT_OF_TREND = 0.6;
/** And the long one off the trend as irregularLevels counts it. */
const LONG_OF_TREND = 1 + IRREGULAR_LENGTH;
/**
 * Together they span two levels of the trend, give or take this: wider than the pairs irregularLevels clears
 * (0.15), for a disc read this far off moves the pair's sum too (hard phantom 20037: 0.51 and 1.29).
 */
const UNEVEN_PAIR_SUM_TOLERANCE = 0.3;

export function evenOutUnevenPairs(segments: readonly SpineSegment[], score: Float32Array, stepMm: number): SpineSegment[] {
  const ratio = lengthOverTrend(segments);
  const out = segments.map((sg) => ({ ...sg }));
  for (let k = 0; k + 1 < out.length; k++) {
    const [a, b] = [ratio[k], ratio[k + 1]];
    if (!(Number.isFinite(a) && Number.isFinite(b))) continue;
    if (Math.min(a, b) > SHORT_OF_TREND || Math.max(a, b) < LONG_OF_TREND || Math.abs(a + b - 2) > UNEVEN_PAIR_SUM_TOLERANCE) continue;
    const [lo, hi] = [out[k], out[k + 1]];
    const half = (hi.sTo - lo.sFrom) / 2;
    const at = nearestScoreMax(score, lo.sFrom + half, 0.25 * half, stepMm);
    lo.sTo = at;
    hi.sFrom = at;
    lo.cranialInferred = true;
    hi.caudalInferred = true;
    // Neither piece is paired again.
    k++;
  }
  return out;
}
