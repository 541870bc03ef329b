import type { VertebraLevel } from '../../../bmd/report.js';
import { Rng, subSeed } from '../random.js';
import { featureStream, type FovKind, type HardRequest, type RangeKind } from './spec.js';

/**
 * How a hard study was acquired and reconstructed: the clinical z-range (ends anywhere inside a body, so the
 * first and last bodies are cut), slice thickness and in-plane pixels of routine protocols, noise like real
 * chest/abdomen CT, a small or off-centre reconstruction field, and the export's clipping.
 */
export interface RangeEnd {
  level: VertebraLevel;
  /** -1 = the middle of the disc below the level, 0 = its centre, +1 = the middle of the disc above. */
  f: number;
}

export interface HardAcquisition {
  range: { kind: RangeKind | 'requested'; top: RangeEnd; bottom: RangeEnd };
  fov: { kind: FovKind; matrix: number; pixelMm: number; /** Off-centre shift of the field (mm, LPS x/y). */ shiftMm: [number, number] };
  /** Largest stored HU (3071 = the usual 12-bit range; 1023 where an export clips). */
  clipMaxHu: number;
  /** Noise SD in a uniform region at 2 mm slice thickness, HU; thinner slices are noisier (1/sqrt(thickness)). */
  noise2mmHu: number;
  noiseHu: number;
  sliceThicknessMm: number;
  sliceSpacingMm: number;
}

/** Reconstructed thicknesses of routine chest/abdomen protocols, mm. */
const SLICE_MM = [0.625, 1, 1.25, 1.5, 2, 2.5, 3, 5];
/** Slices per study at most, so a 512x512 study stays under ~250 MB as int16. */
const MAX_SLICES = 480;

function end(rng: Rng, levels: VertebraLevel[], lo: number, hi: number): RangeEnd {
  return { level: rng.pick(levels), f: Math.round(rng.range(lo, hi) * 1000) / 1000 };
}

/**
 * Chest CT runs from above the lung apices (C6/C7) to below the costophrenic recesses (T11-L1); abdomen CT
 * from the dome of the diaphragm (T9-T11) to the iliac crests or pelvis (L3-S1); chest-abdomen both; a
 * spine-focused thoracolumbar study T10-L5.
 */
function drawRange(rng: Rng): HardAcquisition['range'] {
  const u = rng.uniform();
  if (u < 0.45) return { kind: 'chest', top: end(rng, ['C6', 'C7'], -0.5, 0.9), bottom: end(rng, ['T11', 'T12', 'L1'], -0.9, 0.6) };
  if (u < 0.75) return { kind: 'abdomen', top: end(rng, ['T9', 'T10', 'T11'], -0.5, 0.9), bottom: end(rng, ['L3', 'L4', 'L5', 'S1'], -0.9, 0.5) };
  if (u < 0.9) return { kind: 'chest-abdomen', top: end(rng, ['C7', 'T1'], -0.5, 0.9), bottom: end(rng, ['L3', 'L4', 'L5'], -0.9, 0.5) };
  return { kind: 'thoracolumbar', top: end(rng, ['T9', 'T10'], -0.5, 0.9), bottom: end(rng, ['L5', 'S1'], -0.9, 0.5) };
}

export interface AcquisitionOverrides {
  sliceThicknessMm?: number;
  sliceSpacingMm?: number;
  size?: number;
  pixelSpacingMm?: number;
  noiseHu?: number;
}

/**
 * Draws the acquisition from streams 'hard/acq-*' and the 'fov' and 'clip' features; `approxRangeMm` (the
 * z-extent of the drawn range, from the person) caps the slice count by thickening slices.
 */
export function drawAcquisition(
  seed: number,
  req: HardRequest | undefined,
  given: AcquisitionOverrides,
  requested: VertebraLevel[] | null,
  rangeMmOf: (r: HardAcquisition['range']) => number,
): HardAcquisition {
  const drawn = drawRange(new Rng(subSeed(seed, 'hard/acq-range')));
  // Levels asked for explicitly replace the drawn clinical range (covered fully, as in the default preset).
  const range: HardAcquisition['range'] = requested
    ? { kind: 'requested', top: { level: requested[0], f: 1 }, bottom: { level: requested[requested.length - 1], f: -1 } }
    : drawn;
  const sl = new Rng(subSeed(seed, 'hard/acq-slices'));
  let thick = given.sliceThicknessMm ?? sl.pick(SLICE_MM);
  const overlap = sl.uniform() < 0.25 && thick >= 1.25;
  let spacing = given.sliceSpacingMm ?? (overlap ? Math.round(thick * sl.range(0.5, 0.8) * 1000) / 1000 : thick);
  const extent = rangeMmOf(range);
  if (given.sliceThicknessMm === undefined && given.sliceSpacingMm === undefined) {
    // Long ranges on thin slices exceed sane memory: thicken, as thin chest-abdomen-pelvis recons are rarely archived.
    while (extent / spacing > MAX_SLICES) {
      thick = SLICE_MM[Math.min(SLICE_MM.length - 1, SLICE_MM.indexOf(thick) + 1)];
      spacing = thick;
    }
  }
  const nz = new Rng(subSeed(seed, 'hard/acq-noise'));
  // Noise in subcutaneous fat of routine chest CT at 2 mm: ~15-40 HU SD (filtered back projection and iterative recons alike).
  const noise2mmHu = nz.range(15, 40);
  const noiseHu = given.noiseHu ?? Math.min(90, noise2mmHu * Math.sqrt(2 / thick));

  const fovS = featureStream(seed, 'fov', req);
  const px = new Rng(subSeed(seed, 'hard/acq-pixels'));
  // Full fields: 512 matrix over 340-480 mm displayed FOV (0.66-0.94 mm pixels).
  let fov: HardAcquisition['fov'] = { kind: 'full', matrix: 512, pixelMm: Math.round((px.range(340, 480) / 512) * 1e4) / 1e4, shiftMm: [px.range(-8, 8), px.range(-8, 8)] };
  if (fovS.on) {
    const u = fovS.rng.uniform();
    const sizeMm = fovS.rng.range(170, 200);
    const heartInRange = range.kind === 'chest' || range.kind === 'chest-abdomen';
    const kind: FovKind = u < 0.4 ? 'small-spine' : u < 0.7 ? (heartInRange ? 'small-heart' : 'small-spine') : 'off-centre';
    if (kind === 'off-centre') {
      // 25-32 cm, but never under 256 mm so a 512 matrix keeps pixels >= 0.5 mm.
      const size = Math.max(256, fovS.rng.range(250, 320));
      const ang = fovS.rng.range(0, 2 * Math.PI);
      const r = fovS.rng.range(40, 80);
      fov = { kind, matrix: 512, pixelMm: Math.round((size / 512) * 1e4) / 1e4, shiftMm: [r * Math.cos(ang), r * Math.sin(ang)] };
    } else {
      // Targeted recons of ~18 cm; 0.5 mm pixels (a 360 matrix) keep the 0.5-1 mm range and the memory sane.
      fov = { kind, matrix: Math.round(sizeMm / 0.5 / 8) * 8, pixelMm: 0.5, shiftMm: [fovS.rng.range(-10, 10), fovS.rng.range(-10, 10)] };
    }
  }
  if (given.size !== undefined) fov = { ...fov, matrix: given.size, pixelMm: given.pixelSpacingMm ?? (fov.pixelMm * fov.matrix) / given.size };
  else if (given.pixelSpacingMm !== undefined) fov = { ...fov, pixelMm: given.pixelSpacingMm };

  const clip = featureStream(seed, 'clip', req);
  return { range, fov, clipMaxHu: clip.on ? 1023 : 3071, noise2mmHu, noiseHu, sliceThicknessMm: thick, sliceSpacingMm: spacing };
}
