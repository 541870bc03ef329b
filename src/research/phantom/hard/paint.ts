import type { Vec3 } from '../../../imaging/volume.js';
import type { Capsule } from '../anatomy.js';
import { forBox, type Placement, type SliceGrid } from '../frame.js';
import type { Palette } from '../palette.js';
import { capsuleSdf, coverage } from '../sdf.js';

/** A bone's HUs: a compact shell of `shellMm` over marrow. */
export interface BoneHu {
  cortical: number;
  marrow: number;
  shellMm: number;
}

/** Grid, placement and palette the hard painters share, with the compositing helpers they all use. */
export class PaintContext {
  readonly cos: number;
  readonly sin: number;
  readonly px: number;
  /** Scratch: nearest-capsule distance per voxel (Infinity when untouched) and the voxels touched. */
  private readonly dist: Float32Array;
  private readonly touched: Int32Array;
  constructor(
    readonly grid: SliceGrid,
    readonly place: Placement,
    readonly pal: Palette,
  ) {
    this.cos = Math.cos(place.rotationRad);
    this.sin = Math.sin(place.rotationRad);
    this.px = grid.pixelMm;
    this.dist = new Float32Array(grid.cols * grid.rows).fill(Infinity);
    this.touched = new Int32Array(grid.cols * grid.rows);
  }

  box(x0: number, x1: number, y0: number, y1: number, fn: (idx: number, bx: number, by: number) => void): void {
    forBox(this.grid, this.place, this.cos, this.sin, x0, x1, y0, y1, fn);
  }

  /** Composites HU `hu(d)` with partial-volume coverage where the signed distance `sdf` (mm) is <= ~half a voxel. */
  fill(buf: Float32Array, x0: number, x1: number, y0: number, y1: number, sdf: (bx: number, by: number) => number, hu: (d: number) => number): void {
    const px = this.px;
    this.box(x0, x1, y0, y1, (idx, bx, by) => {
      const d = sdf(bx, by);
      const c = coverage(d, px);
      if (c > 0) buf[idx] += c * (hu(d) - buf[idx]);
    });
  }

  /** HU of bone at signed distance d: compact shell near the surface, marrow inside. */
  boneAt(d: number, b: BoneHu): number {
    const tin = coverage(d + b.shellMm, this.px);
    return b.cortical + tin * (b.marrow - b.cortical);
  }

  /** Paints the union of capsules cut by the plane z, as bone or with one HU. */
  capsules(z: number, buf: Float32Array, caps: readonly Capsule[], hu: number | BoneHu): void {
    const px = this.px;
    const dist = this.dist;
    const touched = this.touched;
    let n = 0;
    // Nearest capsule per voxel over each capsule's own box (not one box around all: cartilage spans the chest).
    for (const c of caps) {
      if (z < Math.min(c.a[2], c.b[2]) - c.r - px || z > Math.max(c.a[2], c.b[2]) + c.r + px) continue;
      // A voxel the capsule covers (distance < px/2) is within r + px of an axis point within r + px of z.
      const dz = c.b[2] - c.a[2];
      const reach = c.r + px;
      let ta = 0;
      let tb = 1;
      if (Math.abs(dz) > 1e-6) {
        const t0 = (z - reach - c.a[2]) / dz;
        const t1 = (z + reach - c.a[2]) / dz;
        ta = Math.max(0, Math.min(t0, t1));
        tb = Math.min(1, Math.max(t0, t1));
      }
      const xa = c.a[0] + (c.b[0] - c.a[0]) * ta;
      const xb = c.a[0] + (c.b[0] - c.a[0]) * tb;
      const ya = c.a[1] + (c.b[1] - c.a[1]) * ta;
      const yb = c.a[1] + (c.b[1] - c.a[1]) * tb;
      this.box(Math.min(xa, xb) - reach, Math.max(xa, xb) + reach, Math.min(ya, yb) - reach, Math.max(ya, yb) + reach, (idx, bx, by) => {
        const d = capsuleSdf(bx, by, z, c.a, c.b, c.r);
        if (d < dist[idx]) {
          if (dist[idx] === Infinity) touched[n++] = idx;
          dist[idx] = d;
        }
      });
    }
    for (let q = 0; q < n; q++) {
      const idx = touched[q];
      const d = dist[idx];
      dist[idx] = Infinity;
      const cv = coverage(d, px);
      if (cv <= 0) continue;
      const val = typeof hu === 'number' ? hu : this.boneAt(d, hu);
      buf[idx] += cv * (val - buf[idx]);
    }
  }

  /** Paints the cross-section of an ellipsoid (axis-aligned radii r) at z. */
  ellipsoid(z: number, buf: Float32Array, c: Vec3, r: Vec3, hu: number): void {
    const f = 1 - ((z - c[2]) / r[2]) ** 2;
    if (f <= 0) return;
    const s = Math.sqrt(f);
    const a = r[0] * s;
    const b = r[1] * s;
    const px = this.px;
    this.fill(
      buf,
      c[0] - a - px,
      c[0] + a + px,
      c[1] - b - px,
      c[1] + b + px,
      (bx, by) => {
        const nx = (bx - c[0]) / a;
        const ny = (by - c[1]) / b;
        return (Math.sqrt(nx * nx + ny * ny) - 1) * Math.min(a, b);
      },
      () => hu,
    );
  }
}

/** Capsules along a polyline with one radius. */
export function chain(points: readonly Vec3[], r: number): Capsule[] {
  const out: Capsule[] = [];
  for (let i = 0; i + 1 < points.length; i++) out.push({ a: points[i], b: points[i + 1], r });
  return out;
}
