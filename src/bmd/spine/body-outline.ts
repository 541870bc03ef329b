import type { StraightSpine } from './straighten.js';
import { median } from '../median.js';

/** Median of the finite values (a ray or a slab that found no edge gives NaN and is left out). */
const medianOfFinite = (v: number[]): number => median(v.filter(Number.isFinite));

/**
 * The cross-section of one vertebral body, measured on the straightened spine (perpendicular to the
 * column, so a tilted body is not elongated by the axial cut).
 *
 * From the provisional centre, rays run anterior, left and right through the body; its edge on each ray is
 * where the outer cortex gives way to what surrounds it (prevertebral soft tissue, psoas, lung, a vessel):
 * the steepest drop of a smoothed profile that starts on bone. The canal side is found the same way
 * posteriorly (the posterior wall against CSF). Several rays per side and the median keep one contrast-
 * filled aorta, osteophyte or rib head from moving an edge.
 */
export interface BodyOutline {
  /** Body centre offset from the centre line, mm (u posterior, v left). */
  uCenterMm: number;
  vCenterMm: number;
  depthMm: number;
  widthMm: number;
  /** Fraction of the body's box that lies outside the scanned volume (a field of view cutting the body). */
  outsideFraction: number;
}

/** Plausible vertebral body depth and width, C7 to L5 (Panjabi et al., Spine 1991/1992: ~15-35 and ~20-55 mm). */
const DEPTH_RANGE_MM: [number, number] = [12, 45];
const WIDTH_RANGE_MM: [number, number] = [16, 65];

/** Mean cross-section image over s in [sFrom, sTo] (samples): nu x nv, NaN where any sample is outside. */
export function meanCrossSection(st: StraightSpine, sFrom: number, sTo: number): Float32Array {
  const plane = st.nu * st.nv;
  const out = new Float32Array(plane);
  const count = new Uint16Array(plane);
  const a = Math.max(0, Math.round(sFrom));
  const b = Math.min(st.ns - 1, Math.round(sTo));
  for (let s = a; s <= b; s++) {
    const base = s * plane;
    for (let i = 0; i < plane; i++) {
      const h = st.hu[base + i];
      if (Number.isNaN(h)) continue;
      out[i] += h;
      count[i]++;
    }
  }
  const slices = b - a + 1;
  for (let i = 0; i < plane; i++) out[i] = count[i] === slices && slices > 0 ? out[i] / slices : NaN;
  return out;
}

/** Value of the cross-section at (uMm, vMm), bilinear; NaN outside. */
function sampleAt(st: StraightSpine, img: Float32Array, uMm: number, vMm: number): number {
  const u = (uMm - st.uMinMm) / st.stepMm;
  const v = (vMm - st.vMinMm) / st.stepMm;
  if (u < 0 || v < 0 || u > st.nu - 1 || v > st.nv - 1) return NaN;
  const u0 = Math.min(st.nu - 2, Math.floor(u));
  const v0 = Math.min(st.nv - 2, Math.floor(v));
  const fu = u - u0;
  const fv = v - v0;
  const at = (uu: number, vv: number): number => img[vv + st.nv * uu];
  const a = at(u0, v0) + fv * (at(u0, v0 + 1) - at(u0, v0));
  const b = at(u0 + 1, v0) + fv * (at(u0 + 1, v0 + 1) - at(u0 + 1, v0));
  return a + fu * (b - a);
}

/**
 * Distance (mm) from (u0, v0) along direction (du, dv) to the body's edge, or NaN when no edge is found
 * within maxMm. The profile is averaged over +-1 mm across the ray and smoothed over 3 mm along it.
 */
export function edgeAlongRay(st: StraightSpine, img: Float32Array, u0: number, v0: number, du: number, dv: number, maxMm: number): number {
  const n = Math.floor(maxMm) + 1;
  const raw = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    let c = 0;
    for (const off of [-1, 0, 1]) {
      const h = sampleAt(st, img, u0 + du * r - dv * off, v0 + dv * r + du * off);
      if (Number.isNaN(h)) continue;
      s += h;
      c++;
    }
    raw[r] = c > 0 ? s / c : NaN;
  }
  const p = new Float32Array(n).fill(NaN);
  for (let r = 1; r + 1 < n; r++) p[r] = (raw[r - 1] + raw[r] + raw[r + 1]) / 3;
  // The first place, going outward, where bone gives way to at least 3 mm of something clearly darker: soft
  // tissue, lung, fat or CSF. The first, not the largest: beyond the body lie rib heads, laminae and enhanced
  // vessels, each with an edge of its own.
  for (let r = 4; r + 5 < n; r++) {
    const inside = p[r];
    if (Number.isNaN(inside) || inside < 50) continue;
    let out = 0;
    let c = 0;
    for (let k = r + 2; k <= r + 5; k++) if (!Number.isNaN(p[k])) {
      out += p[k];
      c++;
    }
    if (c < 3) return NaN;
    out /= c;
    // Bone against soft tissue needs the cortex (> 110 HU); bone of any density against fat, CSF or lung
    // (< 30 HU) is an edge too: osteoporotic bone with a thin posterior wall reads ~90 HU next to the
    // epidural fat and the canal, and without this the ray ran on to the lamina.
    const cortexEdge = inside >= 110 && out <= 90 && out <= inside - 70;
    const fatEdge = out <= 30 && out <= inside - 50;
    if (!cortexEdge && !fatEdge) continue;
    // The edge itself: the steepest descent between here and the dark run.
    let edge = r + 1;
    let steepest = -Infinity;
    for (let k = r; k <= r + 3; k++) {
      const d = p[k] - p[k + 1];
      if (d > steepest) {
        steepest = d;
        edge = k + 0.5;
      }
    }
    return edge;
  }
  return NaN;
}

/**
 * Outline of the body in the mean cross-section of its middle half (endplates and the rib heads at the
 * body's cranial end left out). (u0, v0): provisional centre, mm.
 */
export function measureBodyOutline(st: StraightSpine, sFrom: number, sTo: number, u0 = 0, v0 = 0): BodyOutline {
  const len = sTo - sFrom;
  const img = meanCrossSection(st, sFrom + 0.25 * len, sTo - 0.25 * len);
  const deg = Math.PI / 180;
  const ray = (angleDeg: number): number => {
    // angle 0 = anterior (-u), 90 = left (+v), -90 = right, 180 = posterior.
    const du = -Math.cos(angleDeg * deg);
    const dv = Math.sin(angleDeg * deg);
    return edgeAlongRay(st, img, u0, v0, du, dv, 40);
  };
  const anterior = medianOfFinite([-25, -12, 0, 12, 25].map(ray));
  const left = medianOfFinite([70, 80, 90, 100].map(ray));
  const right = medianOfFinite([-70, -80, -90, -100].map(ray));
  const posterior = medianOfFinite([165, 180, -165].map(ray));
  let depth = anterior + posterior;
  let width = left + right;
  let uC = u0 + (posterior - anterior) / 2;
  let vC = v0 + (left - right) / 2;
  if (!(depth >= DEPTH_RANGE_MM[0] && depth <= DEPTH_RANGE_MM[1])) {
    depth = NaN;
    uC = u0;
  }
  if (!(width >= WIDTH_RANGE_MM[0] && width <= WIDTH_RANGE_MM[1])) {
    width = NaN;
    vC = v0;
  }
  // Outside fraction over the box the body occupies (or a nominal 30 x 40 mm box when unknown).
  const hd = (Number.isFinite(depth) ? depth : 30) / 2;
  const hw = (Number.isFinite(width) ? width : 40) / 2;
  let outside = 0;
  let total = 0;
  for (let u = -hd; u <= hd; u += 2) {
    for (let v = -hw; v <= hw; v += 2) {
      total++;
      if (Number.isNaN(sampleAt(st, img, uC + u, vC + v))) outside++;
    }
  }
  return { uCenterMm: uC, vCenterMm: vC, depthMm: depth, widthMm: width, outsideFraction: total > 0 ? outside / total : 1 };
}

export interface BodySizeAlongSpine {
  /** Per s sample, mm; interpolated between measurements, NaN only when nothing could be measured. */
  depthMm: Float32Array;
  widthMm: Float32Array;
  uCenterMm: Float32Array;
  vCenterMm: Float32Array;
}

/**
 * Body size along the whole column before the discs are known: outlines of short slabs every 8 mm, then a
 * running median over +-24 mm (a slab that falls on a disc or an endplate measures nonsense; its neighbours
 * outvote it), interpolated to every sample. Body size changes slowly along the column (Panjabi et al.).
 */
export function bodySizeAlongSpine(st: StraightSpine): BodySizeAlongSpine {
  const stepS = Math.max(1, Math.round(8 / st.stepMm));
  const halfSlab = Math.max(1, Math.round(4 / st.stepMm));
  const at: number[] = [];
  const meas: BodyOutline[] = [];
  for (let s = halfSlab; s + halfSlab < st.ns; s += stepS) {
    at.push(s);
    meas.push(measureBodyOutline(st, s - 2 * halfSlab, s + 2 * halfSlab));
  }
  const win = Math.max(1, Math.round(24 / (stepS * st.stepMm)));
  const smooth = (get: (o: BodyOutline) => number): number[] =>
    meas.map((_, i) => medianOfFinite(meas.slice(Math.max(0, i - win), i + win + 1).map(get)));
  const depth = smooth((o) => o.depthMm);
  const width = smooth((o) => o.widthMm);
  const uC = smooth((o) => (Number.isFinite(o.depthMm) ? o.uCenterMm : NaN));
  const vC = smooth((o) => (Number.isFinite(o.widthMm) ? o.vCenterMm : NaN));
  return {
    depthMm: interpolateSamples(at, depth, st.ns),
    widthMm: interpolateSamples(at, width, st.ns),
    uCenterMm: interpolateSamples(at, uC, st.ns, 0),
    vCenterMm: interpolateSamples(at, vC, st.ns, 0),
  };
}

/** Linear interpolation of finite values given at sample positions `at`; ends held; `fallback` when none. */
function interpolateSamples(at: number[], values: number[], n: number, fallback = NaN): Float32Array {
  const out = new Float32Array(n).fill(fallback);
  const xs: number[] = [];
  const ys: number[] = [];
  at.forEach((x, i) => {
    if (Number.isFinite(values[i])) {
      xs.push(x);
      ys.push(values[i]);
    }
  });
  if (xs.length === 0) return out;
  let k = 0;
  for (let s = 0; s < n; s++) {
    while (k + 1 < xs.length && xs[k + 1] <= s) k++;
    if (s <= xs[0]) out[s] = ys[0];
    else if (k + 1 >= xs.length) out[s] = ys[ys.length - 1];
    else out[s] = ys[k] + ((ys[k + 1] - ys[k]) * (s - xs[k])) / (xs[k + 1] - xs[k]);
  }
  return out;
}

/** Depth of a level's own outline against the column's running median there (body depth changes a few % a level). */
const OUTLINE_DEPTH_RATIO: [number, number] = [0.7, 1.4];
/**
 * No vertebral body is much deeper than it is wide: depth over width runs ~0.6 at C7-T1, up to ~1.0 mid-thorax and
 * ~0.7 in the lumbar spine (Panjabi et al., Spine 1991 and 1992, endplate dimensions). An outline deeper than this
 * share of its own width has taken in something else too, where the column's running median near the column's end
 * is no check (hard phantoms 20050 and 22034: T1 read 32 mm deep and 26 wide, where the body is 16 deep, and its
 * centre fell 7 mm behind the body).
 */
const DEPTH_OVER_WIDTH_MAX = 1.15;

/**
 * A level's own outline, or the column's running median size and centre at its middle where the outline is far
 * deeper or shallower than the column there: it has taken in something else (the contrast-filled great vessels
 * or the oesophagus in front of an upper thoracic body: hard phantoms 20019 and 20046 read a T2 34-43 mm deep
 * where the column is 14-20 mm, and put its centre 7-10 mm off the body), or far deeper than its own width.
 */
export function outlineOrColumn(o: BodyOutline, size: BodySizeAlongSpine, ms: number): BodyOutline {
  const column = size.depthMm[ms];
  const off = Number.isFinite(o.depthMm) && Number.isFinite(column) && !(o.depthMm >= OUTLINE_DEPTH_RATIO[0] * column && o.depthMm <= OUTLINE_DEPTH_RATIO[1] * column);
  const deeperThanWide = o.depthMm > DEPTH_OVER_WIDTH_MAX * o.widthMm;
  if (!off && !deeperThanWide) return o;
  return { ...o, uCenterMm: size.uCenterMm[ms], vCenterMm: size.vCenterMm[ms], depthMm: column, widthMm: size.widthMm[ms] };
}
