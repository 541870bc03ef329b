import type { Vec3 } from '../../imaging/volume.js';

/**
 * Signed distances (mm, negative inside) of the analytic shapes the phantom is built from. Exact where it
 * is cheap (capsules), first-order elsewhere (ellipses: (r-1)/|grad r|, exact on the boundary, which is
 * where partial volume and cortical shells need it).
 */
export function ellipseSdf(x: number, y: number, a: number, b: number): number {
  const nx = x / a;
  const ny = y / b;
  const r = Math.sqrt(nx * nx + ny * ny);
  const g = Math.sqrt((nx * nx) / (a * a) + (ny * ny) / (b * b));
  if (g < 1e-9) return -Math.min(a, b);
  return ((r - 1) * r) / g;
}

/** Distance from p to the segment a-b minus radius r. */
export function capsuleSdf(px: number, py: number, pz: number, a: Vec3, b: Vec3, r: number): number {
  const bax = b[0] - a[0];
  const bay = b[1] - a[1];
  const baz = b[2] - a[2];
  const pax = px - a[0];
  const pay = py - a[1];
  const paz = pz - a[2];
  const bb = bax * bax + bay * bay + baz * baz;
  let h = bb > 0 ? (pax * bax + pay * bay + paz * baz) / bb : 0;
  h = h < 0 ? 0 : h > 1 ? 1 : h;
  const dx = pax - bax * h;
  const dy = pay - bay * h;
  const dz = paz - baz * h;
  return Math.sqrt(dx * dx + dy * dy + dz * dz) - r;
}

/** Fraction of a voxel of size `px` inside a shape whose boundary is `d` mm away (linear partial-volume ramp). */
export function coverage(d: number, px: number): number {
  const c = 0.5 - d / px;
  return c <= 0 ? 0 : c >= 1 ? 1 : c;
}
