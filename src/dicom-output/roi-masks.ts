import type { LevelResult, VbmdReport, VertebraLevel } from '../bmd/report.js';
import { patientMmToVoxel, voxelToPatientMm, type Vec3, type Volume } from '../imaging/volume.js';
import { decodeRoiMask } from '../model/roi-mask-codec.js';

/**
 * The ROIs behind a report's numbers as voxels of the analysed volume, for the SEG and the key image.
 * - "geometric": the engine's elliptic cylinder (report level `geometricRoi`), found with the same voxel-centre
 *   test as src/bmd/roi/trabecular-roi.ts measureRoi, so its voxel count equals the level's roiVoxels.
 * - "model": the network's predicted ROI (`modelRoiMask`, a 1.5 mm patch grid), resampled nearest-neighbour
 *   onto the CT grid (each CT voxel takes the patch voxel its centre falls in).
 */
export type RoiKind = 'model' | 'geometric';

export interface LevelRoi {
  level: VertebraLevel;
  kind: RoiKind;
  /** Linear voxel indices (i + nx*(j + ny*k)), ascending. */
  voxels: Int32Array;
}

/** The geometric ROI's voxels, exactly as measureRoi counts them (axis-aligned volumes, as the engine requires). */
export function geometricRoiVoxels(volume: Volume, roi: NonNullable<LevelResult['geometricRoi']>): Int32Array {
  const c = patientMmToVoxel(volume, roi.centerMm);
  const [nx, ny, nz] = volume.dims;
  const reach: Vec3 = [0, 0, 0];
  for (let s = 0; s < 3; s++) {
    const d = volume.direction[s];
    const a = Math.abs(d[0]) > 0.9 ? 0 : Math.abs(d[1]) > 0.9 ? 1 : 2;
    const r = a === 0 ? roi.semiLrMm : a === 1 ? roi.semiApMm : roi.halfSlabMm;
    reach[s] = Math.ceil(r / volume.spacingMm[s]) + 1;
  }
  const out: number[] = [];
  if (roi.semiLrMm <= 0 || roi.semiApMm <= 0) return Int32Array.from(out);
  const [di, dj, dk] = volume.direction;
  const [sx, sy, sz] = volume.spacingMm;
  for (let k = Math.max(0, Math.floor(c[2] - reach[2])); k <= Math.min(nz - 1, Math.ceil(c[2] + reach[2])); k++) {
    for (let j = Math.max(0, Math.floor(c[1] - reach[1])); j <= Math.min(ny - 1, Math.ceil(c[1] + reach[1])); j++) {
      for (let i = Math.max(0, Math.floor(c[0] - reach[0])); i <= Math.min(nx - 1, Math.ceil(c[0] + reach[0])); i++) {
        const oi = (i - c[0]) * sx;
        const oj = (j - c[1]) * sy;
        const ok = (k - c[2]) * sz;
        const dx = oi * di[0] + oj * dj[0] + ok * dk[0];
        const dy = oi * di[1] + oj * dj[1] + ok * dk[1];
        const dz = oi * di[2] + oj * dj[2] + ok * dk[2];
        if (Math.abs(dz) > roi.halfSlabMm + 1e-6) continue;
        if ((dx / roi.semiLrMm) ** 2 + (dy / roi.semiApMm) ** 2 > 1) continue;
        out.push(i + nx * (j + ny * k));
      }
    }
  }
  return Int32Array.from(out);
}

/** The model's ROI on the CT grid: CT voxels whose centre lies in a marked patch voxel. */
export function modelRoiVoxels(volume: Volume, centerMm: Vec3, mask: NonNullable<LevelResult['modelRoiMask']>): Int32Array {
  const bits = decodeRoiMask(mask);
  const n = mask.voxels;
  const s = mask.spacingMm;
  const half = (n - 1) / 2;
  // Patch bounds in patient mm -> index bounds in the volume (any axis order).
  const lo: Vec3 = [0, 0, 0];
  const hi: Vec3 = [0, 0, 0];
  const [nx, ny, nz] = volume.dims;
  const dims = [nx, ny, nz];
  for (let a = 0; a < 3; a++) {
    lo[a] = Infinity;
    hi[a] = -Infinity;
  }
  for (let corner = 0; corner < 8; corner++) {
    const p: Vec3 = [0, 1, 2].map((a) => centerMm[a] + ((corner >> a) & 1 ? 1 : -1) * (n / 2) * s) as Vec3;
    const v = patientMmToVoxel(volume, p);
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.min(lo[a], v[a]);
      hi[a] = Math.max(hi[a], v[a]);
    }
  }
  const out: number[] = [];
  const from = lo.map((x, a) => Math.max(0, Math.floor(x))) as Vec3;
  const to = hi.map((x, a) => Math.min(dims[a] - 1, Math.ceil(x))) as Vec3;
  for (let k = from[2]; k <= to[2]; k++) {
    for (let j = from[1]; j <= to[1]; j++) {
      for (let i = from[0]; i <= to[0]; i++) {
        const p = voxelToPatientMm(volume, i, j, k);
        const w = Math.round((p[0] - centerMm[0]) / s + half);
        const h = Math.round((p[1] - centerMm[1]) / s + half);
        const d = Math.round((p[2] - centerMm[2]) / s + half);
        if (w < 0 || h < 0 || d < 0 || w >= n || h >= n || d >= n) continue;
        if (bits[d * n * n + h * n + w]) out.push(i + nx * (j + ny * k));
      }
    }
  }
  return Int32Array.from(out);
}

/**
 * Every ROI a report's values come from, cranial level first: per level the one its vBMD was read on
 * (roiSource), and, when that is the model's, also the geometric ROI its HU median and mean were read on.
 * A level whose ROI the report does not carry (an older report, or no voxels) gets none.
 */
export function reportRois(report: VbmdReport, volume: Volume): LevelRoi[] {
  const out: LevelRoi[] = [];
  for (const l of report.levels) {
    if (l.roiSource === 'model' && l.modelRoiMask) {
      out.push({ level: l.level, kind: 'model', voxels: modelRoiVoxels(volume, l.centerMm, l.modelRoiMask) });
    }
    if (l.geometricRoi) out.push({ level: l.level, kind: 'geometric', voxels: geometricRoiVoxels(volume, l.geometricRoi) });
  }
  return out.filter((r) => r.voxels.length > 0);
}
