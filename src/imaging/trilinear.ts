import type { HuArray } from './volume.js';

/**
 * Trilinear blend of the 8 voxels of a cell: `b` the index of its lowest corner, `sx`, `sy`, `sz` the index
 * steps to the next voxel along each axis (0 on an axis one voxel thick), `fx`, `fy`, `fz` the fractions
 * (0..1) along each. Interpolates along x, then y, then z; every resampler of the project (the straightened
 * spine, the model's patches, the real-scan variants) shares it, so they agree to the last bit.
 */
export function blendCell(h: HuArray, b: number, sx: number, sy: number, sz: number, fx: number, fy: number, fz: number): number {
  const c00 = h[b] + fx * (h[b + sx] - h[b]);
  const c10 = h[b + sy] + fx * (h[b + sy + sx] - h[b + sy]);
  const c01 = h[b + sz] + fx * (h[b + sz + sx] - h[b + sz]);
  const c11 = h[b + sz + sy] + fx * (h[b + sz + sy + sx] - h[b + sz + sy]);
  const c0 = c00 + fy * (c10 - c00);
  const c1 = c01 + fy * (c11 - c01);
  return c0 + fz * (c1 - c0);
}
