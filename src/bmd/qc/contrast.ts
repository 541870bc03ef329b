import type { SpineTrack } from '../spine/find-spine.js';
import type { WorkingGrid } from '../spine/working-grid.js';

/**
 * Iodinated contrast raises trabecular HU (by ~10-30 HU in portal-venous phase: Pompe et al., Eur Radiol
 * 2015), so contrast-enhanced scans read high. Evidence: the DICOM Contrast/Bolus Agent (0018,0010), or the
 * aorta: unenhanced blood is 35-55 HU, enhanced > 150 HU. The aorta lies just anterior (and to the left) of
 * the thoracolumbar bodies; we take a high order statistic of the tissue there, so a few voxels of
 * calcified plaque do not decide it.
 */
export const ENHANCED_BLOOD_HU = 150;

export function prevertebralVesselHu(g: WorkingGrid, t: SpineTrack): number | null {
  if (t.zFirst < 0) return null;
  const [nx, ny] = g.dims;
  const values: number[] = [];
  const zs: number[] = [];
  for (let z = t.zFirst; z <= t.zLast; z += Math.max(1, Math.round(6 / g.spacingMm[2]))) zs.push(z);
  for (const z of zs) {
    const cx = t.bodyX[z];
    const front = t.bodyY[z] - t.bodyDepthMm[z] / 2 / g.spacingMm[1];
    const slice: number[] = [];
    for (let y = Math.max(0, Math.round(front - 40 / g.spacingMm[1])); y <= Math.round(front - 4 / g.spacingMm[1]); y++) {
      for (let x = Math.max(0, Math.round(cx - 25 / g.spacingMm[0])); x <= Math.min(nx - 1, Math.round(cx + 40 / g.spacingMm[0])); x++) {
        if (y >= ny) continue;
        slice.push(g.hu[x + nx * (y + ny * z)]);
      }
    }
    if (slice.length < 20) continue;
    slice.sort((a, b) => b - a);
    // 12th highest: an aorta (~20 voxels of ~3 mm) must fill it; a plaque of 2-3 voxels cannot.
    values.push(slice[Math.min(slice.length - 1, 11)]);
  }
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  return values[values.length >> 1];
}
