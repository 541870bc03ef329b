import type { PhantomLevelTruth, PhantomTruth } from './types.js';

/** Half a vertebral body height: a centre farther than this from every truth body is on no body. */
export const TRUTH_MATCH_MM = 15;

/**
 * The truth level whose body centre is nearest a measured centre (LPS mm), within TRUTH_MATCH_MM: matched by
 * position, never by name, so a wrong label is scored as wrong rather than compared with the wrong body.
 */
export function truthLevelNear(truth: PhantomTruth, centerMm: readonly number[]): PhantomLevelTruth | null {
  let best: PhantomLevelTruth | null = null;
  let bestMm = TRUTH_MATCH_MM;
  for (const t of truth.levels) {
    const d = Math.hypot(t.centerMm[0] - centerMm[0]!, t.centerMm[1] - centerMm[1]!, t.centerMm[2] - centerMm[2]!);
    if (d < bestMm) {
      bestMm = d;
      best = t;
    }
  }
  return best;
}
