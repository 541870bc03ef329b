import type { VertebraLevel } from '../../../bmd/report.js';
import type { Vec3 } from '../../../imaging/volume.js';
import type { Capsule, Vertebra } from '../anatomy.js';
import type { HardSpec } from './spec.js';

const DEG = Math.PI / 180;

/**
 * The hard preset's spine: bodies chained along a sagittal (kyphosis, lordosis) and coronal (scoliosis) curve by
 * their own heights and the disc heights between them, so successive endplates meet at the curve's angle and an
 * axial slice cuts discs and endplates obliquely, as on real CT; plus the segments the default phantom lacks
 * (C6 above C7, a second sacral segment under a lumbarised S1) and compression fractures.
 */
export interface HardSpine {
  /** Cranial first: C6, C7 ... S1 (and S2 for a lumbarised S1). */
  spine: Vertebra[];
  /** Disc height at the centre below each body of `spine` (0 after the last), mm. */
  discBelowMm: number[];
  /** The extra bodies: C6, and the second sacral segment under a lumbarised S1 (no truth level of its own). */
  c6: Vertebra;
  s2: Vertebra | null;
}

function clone(v: Vertebra, level: VertebraLevel, k: number): Vertebra {
  const hd = v.halfDepth * k;
  const canalV = hd + v.canal.halfDepth - 1.5;
  const dv = canalV - v.canal.v;
  const shift = (p: Vec3): Vec3 => [p[0], p[1] + dv, p[2] * k];
  return {
    ...v,
    level,
    c: [...v.c],
    eu: [...v.eu],
    ev: [...v.ev],
    ew: [...v.ew],
    halfWidth: v.halfWidth * k,
    halfDepth: hd,
    heightPost: v.heightPost * k,
    heightAnt: v.heightAnt * k,
    canal: { ...v.canal, v: canalV },
    arch: { ...v.arch, height: v.arch.height * k, w: v.arch.w * k },
    processes: v.processes.map((c) => ({ a: shift(c.a), b: shift(c.b), r: c.r })),
    lesion: null,
    fractureLoss: null,
    hasRibs: false,
    texture: v.texture.map((t) => ({ ...t, k: [...t.k] as Vec3 })),
    vein: { ...v.vein },
  };
}

/** Lumbar posterior elements (of L5) moved onto another body of similar size. */
function lumbarElementsOnto(target: Vertebra, l5: Vertebra): void {
  const dv = target.halfDepth - l5.halfDepth;
  target.canal = { ...l5.canal, v: l5.canal.v + dv };
  target.arch = { ...l5.arch };
  target.processes = l5.processes.map((c) => ({ a: [c.a[0], c.a[1] + dv, c.a[2]], b: [c.b[0], c.b[1] + dv, c.b[2]], r: c.r }));
  target.isSacrum = false;
}

/** Sagittal tilt (deg, + = superior endplate faces posteriorly) at spine index (C7 = 0 ... S1 = 18). */
export function sagittalTiltDeg(spec: HardSpec, idx: number): number {
  const c = spec.curvature;
  const th12 = (c.kyphosisCobbDeg * (12 - c.kyphosisApex)) / 8;
  const s1 = -c.sacralSlopeDeg;
  const ll = c.lordosisCobbDeg;
  const lumbarised = spec.transitional === 'lumbarised-S1';
  const sacralised = spec.transitional === 'sacralised-L5';
  // Control points: most of the lordosis sits at L4-S1; T1 slope and the kyphosis between T4 and T12.
  const pts: [number, number][] = [
    [-1, -c.t1SlopeDeg + 14],
    [0, -c.t1SlopeDeg + 6],
    [1, -c.t1SlopeDeg],
    [4, th12 - c.kyphosisCobbDeg],
    [12, th12],
    [13, s1 + ll],
    [14, s1 + 0.9 * ll],
    [15, s1 + 0.75 * ll],
    [16, s1 + 0.55 * ll],
    [17, s1 + (sacralised ? 0.15 : 0.3) * ll],
    [18, lumbarised ? s1 + 0.15 * ll : s1],
    [19, lumbarised ? s1 : s1 - 10],
  ];
  if (idx <= pts[0][0]) return pts[0][1];
  for (let q = 1; q < pts.length; q++) {
    if (idx <= pts[q][0]) {
      const [x0, y0] = pts[q - 1];
      const [x1, y1] = pts[q];
      return y0 + ((y1 - y0) * (idx - x0)) / (x1 - x0);
    }
  }
  return pts[pts.length - 1][1];
}

/** Coronal tilt and axial rotation (deg) of a mild single scoliotic curve, 0 elsewhere. */
export function scoliosisDeg(spec: HardSpec, idx: number): { coronal: number; axial: number } {
  const c = spec.curvature;
  if (c.scoliosisCobbDeg <= 0) return { coronal: 0, axial: 0 };
  const half = c.scoliosisCobbDeg / 2;
  const span = c.scoliosisTo - c.scoliosisFrom;
  let t = (idx - c.scoliosisFrom) / span;
  // Beyond the end vertebrae the tilt fades over ~2 levels (compensating segments).
  const fade = t < 0 ? Math.max(0, 1 + (t * span) / 2) : t > 1 ? Math.max(0, 1 - ((t - 1) * span) / 2) : 1;
  t = Math.min(1, Math.max(0, t));
  // Going up from the lower end the spine leans toward the convex side, back above the apex.
  const coronal = -c.scoliosisSide * half * Math.cos(Math.PI * t) * fade;
  // Vertebrae rotate toward the convexity, most at the apex (Nash-Moe: a few degrees in mild curves).
  const axial = c.scoliosisSide * 0.4 * half * Math.sin(Math.PI * t) * (t > 0 && t < 1 ? 1 : 0);
  return { coronal, axial };
}

/** Local axes from sagittal tilt, coronal tilt and axial rotation (reduces to the default axes when the last two are 0). */
export function axesOf(thetaRad: number, phiRad: number, psiRad: number): { eu: Vec3; ev: Vec3; ew: Vec3 } {
  const ewRaw: Vec3 = [Math.sin(phiRad), Math.sin(thetaRad) * Math.cos(phiRad), Math.cos(thetaRad) * Math.cos(phiRad)];
  const n = Math.hypot(...ewRaw);
  const ew: Vec3 = [ewRaw[0] / n, ewRaw[1] / n, ewRaw[2] / n];
  const d = ew[0];
  const u0raw: Vec3 = [1 - d * ew[0], -d * ew[1], -d * ew[2]];
  const un = Math.hypot(...u0raw);
  const u0: Vec3 = [u0raw[0] / un, u0raw[1] / un, u0raw[2] / un];
  const v0: Vec3 = [ew[1] * u0[2] - ew[2] * u0[1], ew[2] * u0[0] - ew[0] * u0[2], ew[0] * u0[1] - ew[1] * u0[0]];
  const cp = Math.cos(psiRad);
  const sp = Math.sin(psiRad);
  const eu: Vec3 = [cp * u0[0] + sp * v0[0], cp * u0[1] + sp * v0[1], cp * u0[2] + sp * v0[2]];
  const ev: Vec3 = [-sp * u0[0] + cp * v0[0], -sp * u0[1] + cp * v0[1], -sp * u0[2] + cp * v0[2]];
  return { eu, ev, ew };
}

function applyFractures(spec: HardSpec, byLevel: Map<VertebraLevel, Vertebra>): void {
  for (const f of spec.fractures) {
    const v = byLevel.get(f.level);
    if (!v) continue;
    const hp = v.heightPost;
    if (f.shape === 'wedge') v.heightAnt = hp * (1 - f.heightLossFraction);
    else if (f.shape === 'crush') {
      v.heightPost = hp * (1 - f.heightLossFraction);
      v.heightAnt = v.heightPost * 0.96;
    } else {
      const depth = (f.heightLossFraction * hp) / 2;
      v.hard = { ...(v.hard ?? { trabecular: null }), concavityTopMm: depth, concavityBottomMm: depth };
    }
    v.fractureLoss = f.heightLossFraction;
  }
}

/**
 * Builds the hard spine from the default person's bodies (their sizes and densities kept): adds C6 and, for a
 * lumbarised S1, S2; applies transitional anatomy, fractures and disc degeneration; then places every body
 * along the curve, anchored where the default put T12 (so organs placed by level stay near their levels).
 */
export function buildHardSpine(vertebrae: Vertebra[], spec: HardSpec): HardSpine {
  const n = vertebrae.length;
  const discs = vertebrae.map((v, i) => (i + 1 < n ? v.c[2] - v.heightPost / 2 - (vertebrae[i + 1].c[2] + vertebrae[i + 1].heightPost / 2) : 0));
  const byLevel = new Map(vertebrae.map((v) => [v.level, v] as const));
  const c7 = byLevel.get('C7')!;
  const l5 = byLevel.get('L5')!;
  const s1 = byLevel.get('S1')!;
  const c6 = clone(c7, 'C6', 0.92);
  // C6: a short bifid spinous process instead of C7's long prominens.
  c6.processes[0] = { a: c6.processes[0].a, b: [0, c6.processes[0].a[1] + 18, c6.processes[0].a[2] - 6], r: 3.5 };
  const spine = [c6, ...vertebrae];
  const discBelow = [discs[0] * 1.0, ...discs];
  const s1i = spine.indexOf(s1);
  let s2: Vertebra | null = null;
  if (spec.transitional === 'lumbarised-S1') {
    s2 = clone(s1, 'S1', 0.85);
    lumbarElementsOnto(s1, l5);
    s2.lesion = null;
    spine.push(s2);
    discBelow[s1i] = discBelow[s1i - 1] * 0.6;
    discBelow.push(0);
  } else if (spec.transitional === 'sacralised-L5') {
    // Castellvi type II-III: broad transverse processes reaching down to the sacral ala; a rudimentary L5-S1 disc.
    for (const s of [-1, 1]) {
      const wing: Capsule = { a: [s * (l5.canal.halfWidth + 12), l5.canal.v - 4, l5.arch.w], b: [s * (l5.halfWidth + 34), l5.canal.v - 8, -(l5.heightPost / 2 + 8)], r: 9 };
      l5.processes.push(wing);
    }
    discBelow[s1i - 1] *= 0.3;
  }
  applyFractures(spec, byLevel);
  for (const d of spec.degeneration) {
    const i = spine.findIndex((v) => v.level === d.upper);
    if (i >= 0) discBelow[i] *= d.heightFactor;
  }
  placeAlongCurve(spine, discBelow, spec, byLevel.get('T12')!.c);
  return { spine, discBelowMm: discBelow, c6, s2 };
}

function placeAlongCurve(spine: Vertebra[], discBelow: number[], spec: HardSpec, t12Default: Vec3): void {
  const anchor: Vec3 = [...t12Default];
  const meanDefault = meanXY(spine.slice(2, -1));
  const base = spine.findIndex((v) => v.level === 'C7');
  spine.forEach((v, i) => {
    const idx = i - base;
    const sc = scoliosisDeg(spec, idx);
    const th = sagittalTiltDeg(spec, idx) * DEG;
    const ax = axesOf(th, sc.coronal * DEG, sc.axial * DEG);
    v.eu = ax.eu;
    v.ev = ax.ev;
    v.ew = ax.ew;
    v.tiltRad = th;
  });
  // Chain from the last body upward: superior endplate centre of the lower body, along the mean axis by the
  // disc height, then half the upper body's posterior height along its own axis (its inferior endplate is flat).
  const last = spine[spine.length - 1];
  last.c = [0, 0, 0];
  for (let i = spine.length - 2; i >= 0; i--) {
    const up = spine[i];
    const lo = spine[i + 1];
    const top = add(lo.c, lo.ew, lo.heightAnt / 2);
    const mean = norm([lo.ew[0] + up.ew[0], lo.ew[1] + up.ew[1], lo.ew[2] + up.ew[2]]);
    up.c = add(add(top, mean, discBelow[i]), up.ew, up.heightPost / 2);
  }
  const t12 = spine.find((v) => v.level === 'T12')!;
  const m = meanXY(spine.slice(2, -1));
  const shift: Vec3 = [meanDefault[0] - m[0], meanDefault[1] - m[1], anchor[2] - t12.c[2]];
  for (const v of spine) v.c = [v.c[0] + shift[0], v.c[1] + shift[1], v.c[2] + shift[2]];
}

function meanXY(vs: Vertebra[]): [number, number] {
  return [vs.reduce((s, v) => s + v.c[0], 0) / vs.length, vs.reduce((s, v) => s + v.c[1], 0) / vs.length];
}
function add(p: Vec3, d: Vec3, k: number): Vec3 {
  return [p[0] + d[0] * k, p[1] + d[1] * k, p[2] + d[2] * k];
}
function norm(p: Vec3): Vec3 {
  const n = Math.hypot(...p);
  return [p[0] / n, p[1] / n, p[2] / n];
}

