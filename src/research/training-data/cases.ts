import type { VertebraLevel } from '../../bmd/report.js';
import { parseLevelRange } from '../phantom/generate.js';
import type { PhantomOptions } from '../phantom/types.js';

/**
 * The synthetic cases the model is trained and held-out-tested on (models/MODEL_CARD.md "Training data"), one
 * deterministic phantom per seed. `vbmd evaluate --phantoms N --seed S` should call modelCaseOptions(seed) for
 * S..S+N-1 so its held-out set is the one models/MODEL_CARD.md describes.
 *
 * Seeds: training TRAIN_SEED_BASE.. (100000+), held-out HELDOUT_SEED_BASE.. (900000+); never overlap.
 */
export const TRAIN_SEED_BASE = 100_000;
export const HELDOUT_SEED_BASE = 900_000;

/** Chest, chest-abdomen and abdomen coverages (a study shows ~6-13 bodies). */
const LEVEL_RANGES = ['T1-L2', 'T4-L1', 'T6-L2', 'T8-L3', 'T10-L4', 'T11-L5', 'T12-S1', 'T9-L5'];
const SLICE_MM = [0.625, 1, 1.25, 1.5, 2, 2.5, 3];
const COARSE_FRACTION = 0.15;
const COARSE_DRAW = 1000;

/** Small stateless generator (splitmix-like hash of seed and draw index), independent of the phantom's own RNG. */
function draw(seed: number, k: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(k + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

export interface ModelCase {
  options: PhantomOptions;
  /** Use the scanner's true calibration (site phantom file) for the patches; otherwise the default chain. */
  knownCalibration: boolean;
}

/**
 * Case variety: in-plane 0.7-1.05 mm (clinical 0.6-1.0; 320 px rows with <= 0.95 mm cut the torso like a
 * spine-targeted field), slices 0.625-3 mm (sometimes overlapping); 15 % coarse volumes (2.5-3 mm voxels), noise from the generator's 12-30 HU or
 * 30-55 HU (low dose / large patient), contrast 25 %, lesions on 45 % of studies (1-2, blastic or lytic), a
 * fracture on 30 %, a low-density person on 30 % (enriches the < 80 class the AUC is about). kVp and scanner
 * make are the generator's own draws (80-140 kVp, six makes). Calibration: known on 70 % of training studies,
 * the default chain (phantomless internal) on the rest; held-out studies always record both.
 */
export function modelCaseOptions(seed: number): ModelCase {
  let k = 0;
  const u = (): number => draw(seed, k++);
  const levelsRange = LEVEL_RANGES[Math.floor(u() * LEVEL_RANGES.length)];
  const levels = parseLevelRange(levelsRange);
  const fovKind = u();
  let size: number;
  let pixelSpacingMm: number;
  if (fovKind < 0.45) {
    size = 384;
    pixelSpacingMm = 0.9 + 0.15 * u();
  } else if (fovKind < 0.65) {
    size = 448;
    pixelSpacingMm = 0.75 + 0.15 * u();
  } else {
    size = 320;
    pixelSpacingMm = 0.7 + 0.25 * u();
  }
  const sliceThicknessMm = SLICE_MM[Math.floor(u() * SLICE_MM.length)];
  const sliceSpacingMm = u() < 0.2 && sliceThicknessMm >= 1.25 ? sliceThicknessMm * 0.8 : sliceThicknessMm;
  const o: PhantomOptions = {
    seed,
    levels: levelsRange,
    size,
    pixelSpacingMm: Math.round(pixelSpacingMm * 1000) / 1000,
    sliceThicknessMm,
    sliceSpacingMm: Math.round(sliceSpacingMm * 1000) / 1000,
  };
  // Coarse volumes (COARSE_FRACTION of studies): research exports and downsampled NIfTI come at 2.5-3 mm voxels
  // (the TotalSegmentator example in ../shared is 3 mm isotropic), where a network that has only seen 0.6-1 mm
  // pixels found no trabecular region at all. Drawn from its own stream (k = COARSE_DRAW) so that every other
  // draw of a seed, and so the cases of earlier exports, stay as they were.
  if (draw(seed, COARSE_DRAW) < COARSE_FRACTION) {
    const coarseMm = 2.5 + 0.5 * draw(seed, COARSE_DRAW + 1);
    o.size = 128;
    o.pixelSpacingMm = Math.round(coarseMm * 1000) / 1000;
    o.sliceThicknessMm = coarseMm >= 2.75 ? 3 : 2.5;
    o.sliceSpacingMm = o.sliceThicknessMm;
  }
  if (u() < 0.3) o.noiseHu = 30 + 25 * u();
  if (u() < 0.25) o.contrast = true;
  // Lesions and fractures on inner levels of the range, so the level itself is fully covered.
  const inner: VertebraLevel[] = levels.slice(1, -1).filter((l) => l !== 'S1');
  const pick = (): VertebraLevel => inner[Math.floor(u() * inner.length)];
  if (inner.length > 0 && u() < 0.45) {
    const n = u() < 0.3 ? 2 : 1;
    const lv = new Set<VertebraLevel>();
    for (let i = 0; i < n; i++) lv.add(pick());
    o.lesions = [...lv].map((level) => ({ level, kind: u() < 0.5 ? ('blastic' as const) : ('lytic' as const) }));
  }
  if (inner.length > 0 && u() < 0.3) {
    const level = pick();
    o.fractures = [{ level, heightLossFraction: 0.15 + 0.35 * u() }];
  }
  if (u() < 0.3) o.vbmdMgCm3 = { L1: 30 + 80 * u() };
  const knownCalibration = u() < 0.7;
  return { options: o, knownCalibration };
}
