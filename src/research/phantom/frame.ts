import type { Vec3 } from '../../imaging/volume.js';
import type { Vertebra } from './anatomy.js';

/** Where the body frame sits in the scanner: rotation about z (patient not square on the table) and offset. */
export interface Placement {
  rotationRad: number;
  /** World (LPS) x, y of the body-frame origin. */
  tx: number;
  ty: number;
  /** World z = body z + tz. */
  tz: number;
}

export interface SliceGrid {
  cols: number;
  rows: number;
  pixelMm: number;
  /** World x, y of voxel (0,0). */
  ox: number;
  oy: number;
}

/** Calls fn for every voxel whose centre maps into the body-frame box [x0,x1]x[y0,y1]. */
export function forBox(
  grid: SliceGrid,
  place: Placement,
  cos: number,
  sin: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  fn: (idx: number, bx: number, by: number) => void,
): void {
  const { cols, rows, pixelMm, ox, oy } = grid;
  const { tx, ty } = place;
  let wx0 = Infinity;
  let wx1 = -Infinity;
  let wy0 = Infinity;
  let wy1 = -Infinity;
  for (const bx of [x0, x1]) {
    for (const by of [y0, y1]) {
      const wx = cos * bx - sin * by + tx;
      const wy = sin * bx + cos * by + ty;
      wx0 = Math.min(wx0, wx);
      wx1 = Math.max(wx1, wx);
      wy0 = Math.min(wy0, wy);
      wy1 = Math.max(wy1, wy);
    }
  }
  const i0 = Math.max(0, Math.floor((wx0 - ox) / pixelMm));
  const i1 = Math.min(cols - 1, Math.ceil((wx1 - ox) / pixelMm));
  const j0 = Math.max(0, Math.floor((wy0 - oy) / pixelMm));
  const j1 = Math.min(rows - 1, Math.ceil((wy1 - oy) / pixelMm));
  for (let j = j0; j <= j1; j++) {
    const dy = oy + j * pixelMm - ty;
    for (let i = i0; i <= i1; i++) {
      const dx = ox + i * pixelMm - tx;
      fn(j * cols + i, cos * dx + sin * dy, -sin * dx + cos * dy);
    }
  }
}

/** Scratch for per-voxel local coordinates (no allocation in the voxel loops). */
export const L = new Float64Array(3);

/** Body-frame point -> vertebra-local (u lateral, v posterior, w along the spine), written into `out`. */
export function toLocalInto(v: Vertebra, bx: number, by: number, bz: number, out: Float64Array): Float64Array {
  const dx = bx - v.c[0];
  const dy = by - v.c[1];
  const dz = bz - v.c[2];
  out[0] = dx * v.eu[0] + dy * v.eu[1] + dz * v.eu[2];
  out[1] = dx * v.ev[0] + dy * v.ev[1] + dz * v.ev[2];
  out[2] = dx * v.ew[0] + dy * v.ew[1] + dz * v.ew[2];
  return out;
}

/** Vertebra-local -> body frame. */
export function toBody(v: Vertebra, p: Vec3): Vec3 {
  return [
    v.c[0] + p[0] * v.eu[0] + p[1] * v.ev[0] + p[2] * v.ew[0],
    v.c[1] + p[0] * v.eu[1] + p[1] * v.ev[1] + p[2] * v.ew[1],
    v.c[2] + p[0] * v.eu[2] + p[1] * v.ev[2] + p[2] * v.ew[2],
  ];
}
