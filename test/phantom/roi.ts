import type { Vec3, Volume } from '../../src/imaging/volume.js';
import { patientMmToVoxel } from '../../src/imaging/volume.js';

/** HU values of voxels within `radiusMm` in-plane and `halfSlabMm` along z of an LPS point (test helper). */
export function sampleCylinder(v: Volume, centerMm: Vec3, radiusMm: number, halfSlabMm: number): number[] {
  const [ci, cj, ck] = patientMmToVoxel(v, centerMm);
  const [sx, sy, sz] = v.spacingMm;
  const [nx, ny, nz] = v.dims;
  const out: number[] = [];
  const ri = Math.ceil(radiusMm / sx);
  const rk = Math.floor(halfSlabMm / sz);
  for (let k = Math.round(ck) - rk; k <= Math.round(ck) + rk; k++) {
    if (k < 0 || k >= nz) continue;
    for (let j = Math.round(cj) - ri; j <= Math.round(cj) + ri; j++) {
      for (let i = Math.round(ci) - ri; i <= Math.round(ci) + ri; i++) {
        if (i < 0 || j < 0 || i >= nx || j >= ny) continue;
        if (((i - ci) * sx) ** 2 + ((j - cj) * sy) ** 2 > radiusMm * radiusMm) continue;
        out.push(v.hu[i + nx * (j + ny * k)]);
      }
    }
  }
  return out;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** HU of the voxel nearest to an LPS point, or NaN outside the volume. */
export function nearestHu(v: Volume, p: Vec3): number {
  const [ci, cj, ck] = patientMmToVoxel(v, p).map(Math.round);
  const [nx, ny, nz] = v.dims;
  if (ci < 0 || cj < 0 || ck < 0 || ci >= nx || cj >= ny || ck >= nz) return Number.NaN;
  return v.hu[ci + nx * (cj + ny * ck)];
}
