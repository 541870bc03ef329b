import { PADDING_HU, patientMmToVoxel, type Vec3, type Volume } from '../imaging/volume.js';
import { blendCell } from '../imaging/trilinear.js';
import { INPUT_CLIP_MG_CM3, INPUT_SCALE_MG_CM3, PATCH_SPACING_MM, PATCH_VOXELS } from './contract.js';

/**
 * The model's density patch (src/model/contract.ts): a PATCH_VOXELS^3 cube at PATCH_SPACING_MM, axis-aligned in
 * LPS whatever the scan's orientation, D = +S (inferior -> superior), H = +P, W = +L, trilinear in HU then
 * calibrated to mg/cm3. One implementation for the training exporter and the ONNX runner, so the network sees
 * in production exactly what it was trained on.
 */

/** HU = intercept + slope * vBMD (src/bmd/calibration/types.ts convention). */
export interface PatchCalibration {
  slope: number;
  intercept: number;
}

export interface PatchGeometry {
  voxels: number;
  spacingMm: number;
}

export const CONTRACT_GEOMETRY: PatchGeometry = { voxels: PATCH_VOXELS, spacingMm: PATCH_SPACING_MM };

/** LPS mm centre of patch voxel (d,h,w) for a patch centred on centreMm (contract formula). */
export function patchVoxelCentreMm(centreMm: Vec3, d: number, h: number, w: number, g: PatchGeometry = CONTRACT_GEOMETRY): Vec3 {
  const half = (g.voxels - 1) / 2;
  return [centreMm[0] + (w - half) * g.spacingMm, centreMm[1] + (h - half) * g.spacingMm, centreMm[2] + (d - half) * g.spacingMm];
}

/**
 * Unclipped calibrated density (mg/cm3) of the patch around `centreMm`, index d*V*V + h*V + w.
 * Trilinear in HU over voxel centres; a corner outside the volume counts as PADDING_HU (air), so a patch that
 * runs off the scanned range fades to air as the contract says. `out` may be passed to reuse a buffer.
 */
export function extractDensityPatch(
  volume: Volume,
  centreMm: Vec3,
  calibration: PatchCalibration,
  out?: Float32Array,
  g: PatchGeometry = CONTRACT_GEOMETRY,
): Float32Array {
  const n = g.voxels;
  if (!(calibration.slope > 0) || !Number.isFinite(calibration.intercept)) {
    throw new Error(`Patch calibration must have a positive slope and a finite intercept (got slope ${calibration.slope}, intercept ${calibration.intercept}).`);
  }
  const dst = out ?? new Float32Array(n * n * n);
  if (dst.length !== n * n * n) throw new Error(`Patch buffer has ${dst.length} values, ${n * n * n} needed.`);
  // Patch voxel -> continuous volume index is affine: start + w*stepW + h*stepH + d*stepD. Steps come from the
  // inverse geometry (patientMmToVoxel), so flipped or oblique direction matrices need no special case.
  const p0 = patchVoxelCentreMm(centreMm, 0, 0, 0, g);
  const start = patientMmToVoxel(volume, p0);
  const origin = patientMmToVoxel(volume, [0, 0, 0]);
  const axisStep = (axis: 0 | 1 | 2): Vec3 => {
    const e: Vec3 = [0, 0, 0];
    e[axis] = g.spacingMm;
    const q = patientMmToVoxel(volume, e);
    return [q[0] - origin[0], q[1] - origin[1], q[2] - origin[2]];
  };
  const stepW = axisStep(0);
  const stepH = axisStep(1);
  const stepD = axisStep(2);
  const [nx, ny, nz] = volume.dims;
  const hu = volume.hu;
  const plane = nx * ny;
  const inv = 1 / calibration.slope;
  const icpt = calibration.intercept;
  let q = 0;
  for (let d = 0; d < n; d++) {
    for (let h = 0; h < n; h++) {
      let x = start[0] + d * stepD[0] + h * stepH[0];
      let y = start[1] + d * stepD[1] + h * stepH[1];
      let z = start[2] + d * stepD[2] + h * stepH[2];
      for (let w = 0; w < n; w++, q++, x += stepW[0], y += stepW[1], z += stepW[2]) {
        const i0 = Math.floor(x);
        const j0 = Math.floor(y);
        const k0 = Math.floor(z);
        const fx = x - i0;
        const fy = y - j0;
        const fz = z - k0;
        let v: number;
        if (i0 >= 0 && j0 >= 0 && k0 >= 0 && i0 + 1 < nx && j0 + 1 < ny && k0 + 1 < nz) {
          // Fast path: all 8 corners inside.
          v = blendCell(hu, i0 + nx * j0 + plane * k0, 1, nx, plane, fx, fy, fz);
        } else {
          v = 0;
          for (let c = 0; c < 8; c++) {
            const i = i0 + (c & 1);
            const j = j0 + ((c >> 1) & 1);
            const k = k0 + ((c >> 2) & 1);
            const wgt = (c & 1 ? fx : 1 - fx) * ((c >> 1) & 1 ? fy : 1 - fy) * ((c >> 2) & 1 ? fz : 1 - fz);
            if (wgt === 0) continue;
            const inside = i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz;
            v += wgt * (inside ? hu[i + nx * j + plane * k] : PADDING_HU);
          }
        }
        dst[q] = (v - icpt) * inv;
      }
    }
  }
  return dst;
}

/** Network input from a density patch: clamp to INPUT_CLIP_MG_CM3, divide by INPUT_SCALE_MG_CM3 (contract). */
export function densityToNetworkInput(density: Float32Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(density.length);
  if (dst.length !== density.length) throw new Error(`Network input buffer has ${dst.length} values, ${density.length} needed.`);
  const [lo, hi] = INPUT_CLIP_MG_CM3;
  const s = 1 / INPUT_SCALE_MG_CM3;
  for (let i = 0; i < density.length; i++) {
    const v = density[i];
    dst[i] = (v < lo ? lo : v > hi ? hi : v) * s;
  }
  return dst;
}

/**
 * The auditable readout: mean unclipped density over the voxels the mask marks (probability >= threshold or
 * a 0/1 mask). Null when the mask is empty (the caller reports the level as not measurable, never 0).
 */
export function maskedMeanDensity(density: Float32Array, mask: ArrayLike<number>, threshold = 0.5): { meanMgCm3: number; voxels: number } | null {
  let s = 0;
  let n = 0;
  for (let i = 0; i < density.length; i++) {
    if (mask[i] >= threshold) {
      s += density[i];
      n++;
    }
  }
  return n === 0 ? null : { meanMgCm3: s / n, voxels: n };
}
