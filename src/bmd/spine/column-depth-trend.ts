import { theilSen } from './disc-chain.js';

/**
 * Vertebral bodies grow deeper from the head down: about 16 mm (AP) at T1 to 33 mm at L3, and level in the
 * lumbar spine (Panjabi et al., Spine 1991 and 1992). A column whose bodies grow shallower caudally is not that
 * shape: the track has followed something else. On AMOS 0336 cropped to a field on the heart whose edge cuts
 * the canal away (10-15 mm behind the deepest body centre), the track followed the aorta in front of the spine
 * and its "bodies" ran from 37 mm deep at the top to 12 mm at the bottom (+0.04 mm per mm cranially), with the
 * upper names at 0.9. Measured slopes of the column's depth per mm along it (cranial positive): the three real
 * scans -0.07 (chest), -0.04 (chest to pelvis), 0.00 (lumbar); hard phantoms 20000-20029 -0.06 to -0.01.
 */
export const MAX_DEPTH_GAIN_PER_MM_CRANIALLY = 0.02;
/**
 * Over a shorter column the trend is lost in the level-to-level scatter of the measured depths: longer than a
 * lumbar spine (L1-L5 spans ~170 mm), whose bodies are level in depth, so scatter alone cannot tip it there.
 */
export const MIN_TREND_SPAN_MM = 200;

/** One level found: its middle along the column (mm, cranial positive) and its body's AP depth (mm). */
export interface LevelDepth {
  sMm: number;
  depthMm: number;
}

/** The column's depth trend (mm of depth per mm along it, cranial positive), or null when too short to tell. */
export function depthTrendPerMm(levels: readonly LevelDepth[]): number | null {
  const known = levels.filter((l) => Number.isFinite(l.depthMm));
  if (known.length < 4) return null;
  const s = known.map((l) => l.sMm);
  if (Math.max(...s) - Math.min(...s) < MIN_TREND_SPAN_MM) return null;
  return theilSen(s, known.map((l) => l.depthMm))?.slope ?? null;
}

/** Whether the bodies found grow shallower caudally, unlike a spine's. */
export function shallowerCaudally(levels: readonly LevelDepth[]): boolean {
  const trend = depthTrendPerMm(levels);
  return trend !== null && trend > MAX_DEPTH_GAIN_PER_MM_CRANIALLY;
}
