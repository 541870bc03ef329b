import type { Vec3 } from '../../../imaging/volume.js';
import type { Capsule, Vertebra } from '../anatomy.js';
import { toBody, type Placement, type SliceGrid } from '../frame.js';
import type { Rng } from '../random.js';
import type { HardSpec } from './spec.js';

/**
 * Posterior instrumentation: two pedicle screws per level (entry at the base of the transverse process, through
 * the pedicle into the body, converging medially) with their tulip heads, and a rod on each side. Titanium
 * attenuates several times more than cortical bone: it is painted at METAL_HU and so always reaches the top of
 * the stored range (3071 or the export's clip), with photon-starvation streaks between metal parts and fine
 * radial streaks around them, as on real post-operative CT.
 */
export const METAL_HU = 8000;

export interface Hardware {
  metal: Capsule[];
  /** Levels carrying screws. */
  levels: string[];
}

const DEG = Math.PI / 180;

export function buildHardware(spine: Vertebra[], spec: HardSpec): Hardware {
  const s = spec.screws;
  if (!s) return { metal: [], levels: [] };
  const metal: Capsule[] = [];
  const heads: Map<number, Vec3[]> = new Map([
    [-1, []],
    [1, []],
  ]);
  for (const level of s.levels) {
    const v = spine.find((q) => q.level === level);
    if (!v) continue;
    const conv = s.convergenceDeg * DEG;
    for (const side of [-1, 1]) {
      const x0 = side * (v.canal.halfWidth + v.arch.thick / 2 + 1.5);
      const entry: Vec3 = [x0, v.canal.v + v.canal.halfDepth * 0.6, v.arch.w + 1];
      // Keep the tip inside the body, short of the anterior cortex and of the midline.
      const maxLen = (entry[1] + 0.7 * v.halfDepth) / Math.cos(conv);
      const len = Math.min(s.lengthMm, maxLen);
      let tip: Vec3 = [x0 - side * len * Math.sin(conv), entry[1] - len * Math.cos(conv), entry[2]];
      if (side * tip[0] < 2) tip = [side * 2, tip[1], tip[2]];
      metal.push({ a: toBody(v, entry), b: toBody(v, tip), r: s.diameterMm / 2 });
      const head: Vec3 = [x0 + side * 1.5, entry[1] + 11, entry[2]];
      metal.push({ a: toBody(v, entry), b: toBody(v, head), r: 5.5 });
      heads.get(side)!.push(toBody(v, head));
    }
  }
  for (const pts of heads.values()) {
    for (let i = 0; i + 1 < pts.length; i++) metal.push({ a: pts[i], b: pts[i + 1], r: 2.9 });
  }
  return { metal, levels: s.levels };
}

interface Streak {
  /** World x, y of the line's anchor and its unit direction. */
  x: number;
  y: number;
  dx: number;
  dy: number;
  amp: number;
  width: number;
  decayMm: number;
}

/**
 * Adds metal streaks to one averaged slice (world grid) where metal crosses the plane z (body frame). Dark bands
 * join pairs of metal cross-sections (photon starvation along the rays through both); thin alternating bright
 * and dark rays leave each one. Deterministic in (z, rng seed) so a phantom stays reproducible.
 */
export function metalStreaks(metal: readonly Capsule[], grid: SliceGrid, place: Placement, seed: number, rngAt: (seed: number) => Rng): (z: number, acc: Float32Array) => void {
  const cos = Math.cos(place.rotationRad);
  const sin = Math.sin(place.rotationRad);
  return (z, acc) => {
    const centres: [number, number][] = [];
    for (const c of metal) {
      const z0 = Math.min(c.a[2], c.b[2]) - c.r;
      const z1 = Math.max(c.a[2], c.b[2]) + c.r;
      if (z < z0 || z > z1) continue;
      const dz = c.b[2] - c.a[2];
      const t = Math.abs(dz) < 1e-6 ? 0.5 : Math.min(1, Math.max(0, (z - c.a[2]) / dz));
      const bx = c.a[0] + (c.b[0] - c.a[0]) * t;
      const by = c.a[1] + (c.b[1] - c.a[1]) * t;
      const wx = cos * bx - sin * by + place.tx;
      const wy = sin * bx + cos * by + place.ty;
      // Parts closer than 6 mm (a screw and its head) streak as one.
      if (!centres.some(([x, y]) => Math.hypot(x - wx, y - wy) < 6)) centres.push([wx, wy]);
    }
    if (centres.length === 0) return;
    const rng = rngAt((seed ^ Math.round(z * 8)) >>> 0);
    const streaks: Streak[] = [];
    for (let i = 0; i < centres.length; i++) {
      for (let j = i + 1; j < centres.length; j++) {
        const [ax, ay] = centres[i];
        const [bx, by] = centres[j];
        const d = Math.hypot(bx - ax, by - ay);
        if (d < 8 || d > 120) continue;
        streaks.push({ x: (ax + bx) / 2, y: (ay + by) / 2, dx: (bx - ax) / d, dy: (by - ay) / d, amp: -rng.range(150, 350), width: rng.range(2.5, 5), decayMm: 90 });
      }
      for (let q = 0; q < 6; q++) {
        const a = rng.range(0, Math.PI);
        streaks.push({ x: centres[i][0], y: centres[i][1], dx: Math.cos(a), dy: Math.sin(a), amp: (q % 2 ? 1 : -1) * rng.range(60, 180), width: rng.range(0.8, 1.6), decayMm: 55 });
      }
    }
    const { cols, rows, pixelMm: px, ox, oy } = grid;
    const reach = 160;
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (const [x, y] of centres) {
      x0 = Math.min(x0, x - reach);
      x1 = Math.max(x1, x + reach);
      y0 = Math.min(y0, y - reach);
      y1 = Math.max(y1, y + reach);
    }
    const i0 = Math.max(0, Math.floor((x0 - ox) / px));
    const i1 = Math.min(cols - 1, Math.ceil((x1 - ox) / px));
    const j0 = Math.max(0, Math.floor((y0 - oy) / px));
    const j1 = Math.min(rows - 1, Math.ceil((y1 - oy) / px));
    for (let j = j0; j <= j1; j++) {
      const wy = oy + j * px;
      for (let i = i0; i <= i1; i++) {
        const wx = ox + i * px;
        let add = 0;
        for (const s of streaks) {
          const rx = wx - s.x;
          const ry = wy - s.y;
          const along = rx * s.dx + ry * s.dy;
          const across = rx * s.dy - ry * s.dx;
          const w = across / s.width;
          if (w > 4 || w < -4) continue;
          add += s.amp * Math.exp(-w * w) * Math.exp(-Math.abs(along) / s.decayMm);
        }
        acc[j * cols + i] += add;
      }
    }
  };
}
