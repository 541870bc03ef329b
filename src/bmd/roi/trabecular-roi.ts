import type { Vec3, Volume } from '../../imaging/volume.js';
import { patientMmToVoxel } from '../../imaging/volume.js';

/**
 * Trabecular ROI of one vertebral body, measured on the full-resolution volume.
 *
 * Choices and where they come from:
 * - Slab: the central third of the body height, at least +-3 mm (Comp2Comp's +-3 mm slab around the body
 *   centre), so the endplates (cortical, and sclerotic with degeneration) stay out.
 * - Cross-section: an ellipse of 50% of the body depth x 65% of its width (Comp2Comp "spine" ROI), shrunk
 *   further where needed so it stays >= 3 mm inside the cortex (TotalSegmentator erodes by 4 mm), and moved
 *   anteriorly by 5% of the depth so it keeps off the basivertebral venous plexus entering at the posterior
 *   midline (QCT practice: ROI "anterior to the basivertebral vein").
 * - Statistic: the median (robust to a stray cortical or vascular voxel), also mean and SD.
 */
export interface RoiGeometry {
  centerMm: Vec3;
  /** Semi-axes of the ellipse, mm: left-right, anterior-posterior; half-thickness of the slab along z, mm. */
  semiLrMm: number;
  semiApMm: number;
  halfSlabMm: number;
}

export interface RoiStats {
  medianHu: number | null;
  meanHu: number | null;
  sdHu: number | null;
  /** (P84 - P16) / 2: the SD of the ROI's bulk, insensitive to a rim of cortical or endplate voxels. */
  robustSdHu: number | null;
  voxels: number;
}

/** Cortex margin kept free on every side, mm (DESIGN: eroded >= 2-3 mm). */
export const CORTEX_MARGIN_MM = 3;

export function roiGeometry(bodyCenterMm: Vec3, bodyWidthMm: number, bodyDepthMm: number, bodyHeightMm: number): RoiGeometry {
  const semiLrMm = Math.max(0, Math.min(0.325 * bodyWidthMm, bodyWidthMm / 2 - CORTEX_MARGIN_MM));
  const semiApMm = Math.max(0, Math.min(0.25 * bodyDepthMm, bodyDepthMm / 2 - CORTEX_MARGIN_MM));
  const halfSlabMm = Math.max(3, Math.min(bodyHeightMm / 6, bodyHeightMm / 2 - CORTEX_MARGIN_MM));
  // LPS: anterior is -y.
  const centerMm: Vec3 = [bodyCenterMm[0], bodyCenterMm[1] - 0.05 * bodyDepthMm, bodyCenterMm[2]];
  return { centerMm, semiLrMm, semiApMm, halfSlabMm };
}

/** Voxels whose centre lies in the elliptic cylinder (axis along patient z), read in place. */
export function measureRoi(volume: Volume, roi: RoiGeometry): RoiStats {
  const c = patientMmToVoxel(volume, roi.centerMm);
  const [nx, ny, nz] = volume.dims;
  // Axis-aligned volumes only (checked by the working grid): each voxel axis maps to one patient axis.
  const reachVox: Vec3 = [0, 0, 0];
  for (let s = 0; s < 3; s++) {
    const d = volume.direction[s];
    const a = Math.abs(d[0]) > 0.9 ? 0 : Math.abs(d[1]) > 0.9 ? 1 : 2;
    const reachMm = a === 0 ? roi.semiLrMm : a === 1 ? roi.semiApMm : roi.halfSlabMm;
    reachVox[s] = Math.ceil(reachMm / volume.spacingMm[s]) + 1;
  }
  const values: number[] = [];
  let sum = 0;
  let sum2 = 0;
  const [di, dj, dk] = volume.direction;
  const [sx, sy, sz] = volume.spacingMm;
  for (let k = Math.max(0, Math.floor(c[2] - reachVox[2])); k <= Math.min(nz - 1, Math.ceil(c[2] + reachVox[2])); k++) {
    for (let j = Math.max(0, Math.floor(c[1] - reachVox[1])); j <= Math.min(ny - 1, Math.ceil(c[1] + reachVox[1])); j++) {
      for (let i = Math.max(0, Math.floor(c[0] - reachVox[0])); i <= Math.min(nx - 1, Math.ceil(c[0] + reachVox[0])); i++) {
        const oi = (i - c[0]) * sx;
        const oj = (j - c[1]) * sy;
        const ok = (k - c[2]) * sz;
        const dx = oi * di[0] + oj * dj[0] + ok * dk[0];
        const dy = oi * di[1] + oj * dj[1] + ok * dk[1];
        const dz = oi * di[2] + oj * dj[2] + ok * dk[2];
        if (Math.abs(dz) > roi.halfSlabMm + 1e-6) continue;
        if (roi.semiLrMm <= 0 || roi.semiApMm <= 0) continue;
        if ((dx / roi.semiLrMm) ** 2 + (dy / roi.semiApMm) ** 2 > 1) continue;
        const h = volume.hu[i + nx * (j + ny * k)];
        values.push(h);
        sum += h;
        sum2 += h * h;
      }
    }
  }
  const n = values.length;
  if (n === 0) return { medianHu: null, meanHu: null, sdHu: null, robustSdHu: null, voxels: 0 };
  const f = Float32Array.from(values).sort();
  const median = n % 2 ? f[n >> 1] : (f[(n >> 1) - 1] + f[n >> 1]) / 2;
  const mean = sum / n;
  const sd = Math.sqrt(Math.max(0, sum2 / n - mean * mean));
  const robust = (f[Math.floor(0.84 * (n - 1))] - f[Math.floor(0.16 * (n - 1))]) / 2;
  return { medianHu: round1(median), meanHu: round1(mean), sdHu: round1(sd), robustSdHu: round1(robust), voxels: n };
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
