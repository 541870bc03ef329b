import type { Vec3 } from '../../imaging/volume.js';
import type { SpineTrack } from './find-spine.js';
import { workingToPatientMm, type WorkingGrid } from './working-grid.js';

/**
 * The curve through the vertebral body centres, sampled every STEP_MM of arc length, caudal end first,
 * with a local frame per sample. The spine curves (thoracic kyphosis, lumbar lordosis: up to ~30 degrees
 * between the long axis and the scanner's z at T1-T3 and L5), so axial slices cut the upper thoracic and
 * lumbosacral discs obliquely and smear them; sampled perpendicular to this curve a disc is one thin band
 * again (curved planar reformation, as readers and the Comp2Comp/TotalSegmentator spine reports do).
 */
export interface Centerline {
  readonly n: number;
  readonly stepMm: number;
  /** Per sample, 3 values each (LPS mm; unit vectors). */
  readonly pointMm: Float64Array;
  /** Along the curve, towards cranial. */
  readonly tangent: Float64Array;
  /** Perpendicular to the tangent, towards the patient's left. */
  readonly lr: Float64Array;
  /** Perpendicular to both, towards posterior. */
  readonly ap: Float64Array;
}

export const CENTERLINE_STEP_MM = 1;

/**
 * Body centres vary level to level by a few mm (track noise, the body/disc alternation); the curve itself
 * bends over several levels. Gaussian smoothing of sigma ~ half a vertebra keeps the bend and drops the noise.
 */
const POSITION_SIGMA_MM = 8;
/** The tangent is smoothed more: a disc's orientation follows the column over ~1-2 levels. */
const TANGENT_SIGMA_MM = 12;

function gaussianSmooth(values: Float64Array, sigmaSamples: number): Float64Array {
  const n = values.length;
  const out = new Float64Array(n);
  const r = Math.max(1, Math.ceil(3 * sigmaSamples));
  const w = new Float64Array(2 * r + 1);
  for (let k = -r; k <= r; k++) w[k + r] = Math.exp(-0.5 * (k / sigmaSamples) ** 2);
  for (let i = 0; i < n; i++) {
    let s = 0;
    let ws = 0;
    for (let k = -r; k <= r; k++) {
      // Mirror at the ends so the curve's end keeps its direction instead of bending towards the mean.
      let j = i + k;
      if (j < 0) j = -j;
      if (j >= n) j = 2 * (n - 1) - j;
      j = Math.min(n - 1, Math.max(0, j));
      s += w[k + r] * values[j];
      ws += w[k + r];
    }
    out[i] = s / ws;
  }
  return out;
}

function normalize(v: Vec3): Vec3 {
  const l = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / l, v[1] / l, v[2] / l];
}

/** Centre line from a list of body-centre points (LPS mm), caudal first, at least two. */
export function centerlineFromPoints(pointsMm: Vec3[], stepMm = CENTERLINE_STEP_MM): Centerline {
  const m = pointsMm.length;
  // Mean spacing of the input points, for the smoothing widths in samples.
  let len = 0;
  for (let i = 1; i < m; i++) len += dist(pointsMm[i], pointsMm[i - 1]);
  const spacing = m > 1 ? len / (m - 1) : 1;
  const xs = gaussianSmooth(Float64Array.from(pointsMm, (p) => p[0]), POSITION_SIGMA_MM / spacing);
  const ys = gaussianSmooth(Float64Array.from(pointsMm, (p) => p[1]), POSITION_SIGMA_MM / spacing);
  const zs = Float64Array.from(pointsMm, (p) => p[2]);
  // Arc length of the smoothed polyline, then resampled at equal steps.
  const arc = new Float64Array(m);
  for (let i = 1; i < m; i++) arc[i] = arc[i - 1] + Math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1], zs[i] - zs[i - 1]);
  const n = Math.max(2, Math.floor(arc[m - 1] / stepMm) + 1);
  const pointMm = new Float64Array(3 * n);
  let seg = 0;
  for (let k = 0; k < n; k++) {
    const s = k * stepMm;
    while (seg < m - 2 && arc[seg + 1] < s) seg++;
    const a = arc[seg];
    const b = arc[seg + 1];
    const f = b > a ? Math.min(1, Math.max(0, (s - a) / (b - a))) : 0;
    pointMm[3 * k] = xs[seg] + f * (xs[seg + 1] - xs[seg]);
    pointMm[3 * k + 1] = ys[seg] + f * (ys[seg + 1] - ys[seg]);
    pointMm[3 * k + 2] = zs[seg] + f * (zs[seg + 1] - zs[seg]);
  }
  const tx = new Float64Array(n);
  const ty = new Float64Array(n);
  const tz = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const a = Math.max(0, k - 1);
    const b = Math.min(n - 1, k + 1);
    tx[k] = pointMm[3 * b] - pointMm[3 * a];
    ty[k] = pointMm[3 * b + 1] - pointMm[3 * a + 1];
    tz[k] = pointMm[3 * b + 2] - pointMm[3 * a + 2];
  }
  const sig = TANGENT_SIGMA_MM / stepMm;
  const stx = gaussianSmooth(tx, sig);
  const sty = gaussianSmooth(ty, sig);
  const stz = gaussianSmooth(tz, sig);
  const tangent = new Float64Array(3 * n);
  const lr = new Float64Array(3 * n);
  const ap = new Float64Array(3 * n);
  for (let k = 0; k < n; k++) {
    const t = normalize([stx[k], sty[k], stz[k]]);
    // Patient left made perpendicular to the tangent; the spine bends mainly in the sagittal plane, so
    // this keeps "lateral" lateral.
    const d = t[0];
    const l = normalize([1 - d * t[0], -d * t[1], -d * t[2]]);
    // t x l: with t superior (0,0,1) and l left (1,0,0) this is (0,1,0), posterior in LPS.
    const p: Vec3 = [t[1] * l[2] - t[2] * l[1], t[2] * l[0] - t[0] * l[2], t[0] * l[1] - t[1] * l[0]];
    tangent.set(t, 3 * k);
    lr.set(l, 3 * k);
    ap.set(p, 3 * k);
  }
  return { n, stepMm, pointMm, tangent, lr, ap };
}

/**
 * How far the curve is carried on past each end of the canal track, straight along its end direction. The
 * track ends where the canal stops looking like a canal (the sacral canal flattens, a cut-off cervical
 * spine at the scan edge), often a level before the column does: the sacrum's alae (the L5 anchor) and the
 * last disc lie in that stretch. The scan's own edge still bounds it (samples outside are NaN).
 */
const EXTEND_MM = 35;

/** The centre line of the body centres of a spine track (working grid slices zFirst..zLast), extended. */
export function centerlineFromTrack(g: WorkingGrid, t: SpineTrack): Centerline {
  const pts: Vec3[] = [];
  for (let z = t.zFirst; z <= t.zLast; z++) {
    if (Number.isFinite(t.bodyX[z]) && Number.isFinite(t.bodyY[z])) pts.push(workingToPatientMm(g, [t.bodyX[z], t.bodyY[z], z]));
  }
  if (pts.length < 2) throw new Error('centerlineFromTrack: a track of fewer than two slices');
  const zStep = g.spacingMm[2];
  const reach = Math.max(1, Math.round(15 / zStep));
  const extend = (end: Vec3, inner: Vec3, count: number): Vec3[] => {
    const d: Vec3 = [end[0] - inner[0], end[1] - inner[1], end[2] - inner[2]];
    const len = Math.hypot(d[0], d[1], d[2]) || 1;
    const out: Vec3[] = [];
    for (let k = 1; k <= count; k++) out.push([end[0] + (d[0] / len) * zStep * k, end[1] + (d[1] / len) * zStep * k, end[2] + (d[2] / len) * zStep * k]);
    return out;
  };
  const n = Math.max(1, Math.round(EXTEND_MM / zStep));
  const i = Math.min(reach, pts.length - 1);
  const below = extend(pts[0], pts[i], n).reverse();
  const above = extend(pts[pts.length - 1], pts[pts.length - 1 - i], n);
  return centerlineFromPoints([...below, ...pts, ...above]);
}

/** Point of the curve at arc length sMm from its caudal end (clamped to the curve). */
export function centerlinePoint(cl: Centerline, sMm: number): Vec3 {
  return interpolated(cl.pointMm, cl, sMm / cl.stepMm);
}

export function centerlineFrame(cl: Centerline, sMm: number): { tangent: Vec3; lr: Vec3; ap: Vec3 } {
  const k = sMm / cl.stepMm;
  return { tangent: normalize(interpolated(cl.tangent, cl, k)), lr: normalize(interpolated(cl.lr, cl, k)), ap: normalize(interpolated(cl.ap, cl, k)) };
}

/** Patient position of (s along the curve, u along its AP axis, v along its LR axis), all mm. */
export function curveToPatientMm(cl: Centerline, sMm: number, uMm: number, vMm: number): Vec3 {
  const p = centerlinePoint(cl, sMm);
  const f = centerlineFrame(cl, sMm);
  return [p[0] + uMm * f.ap[0] + vMm * f.lr[0], p[1] + uMm * f.ap[1] + vMm * f.lr[1], p[2] + uMm * f.ap[2] + vMm * f.lr[2]];
}

function interpolated(arr: Float64Array, cl: Centerline, k: number): Vec3 {
  const x = Math.min(cl.n - 1, Math.max(0, k));
  const a = Math.floor(x);
  const b = Math.min(cl.n - 1, a + 1);
  const f = x - a;
  return [0, 1, 2].map((i) => arr[3 * a + i] * (1 - f) + arr[3 * b + i] * f) as Vec3;
}

function dist(a: Vec3, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}
