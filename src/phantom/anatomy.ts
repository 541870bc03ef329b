import { VERTEBRA_LEVELS, type VertebraLevel } from '../bmd/report.js';
import type { Vec3 } from '../imaging/volume.js';
import { Rng } from './random.js';
import type { VertebraHard } from './hard/spec.js';
import type { LesionKind } from './types.js';

/**
 * The person: a skeleton and soft tissues described analytically in a body frame (mm; x to the patient's
 * left, y posterior, z superior: LPS axes before the patient's rotation on the table). The renderer samples
 * these shapes per slice. Sizes are adult means from anatomy texts (vertebral body heights 15-27 mm
 * growing caudally, widths 27-50 mm, discs 4-11 mm), scaled and jittered per person.
 */

/** Levels modelled from C7 to S1 (the scan shows whatever part of them falls in its z-range). */
export const MODELLED_LEVELS: readonly VertebraLevel[] = VERTEBRA_LEVELS.slice(VERTEBRA_LEVELS.indexOf('C7'));

// Per level C7..S1: posterior body height, full width (L-R), full depth (A-P), disc below (mm).
const HEIGHT = [14, 15.5, 16.5, 17, 17.5, 18, 18.5, 19, 19.5, 20, 21, 22, 23, 24.5, 25.5, 26, 26, 25.5, 27];
const WIDTH = [25, 27, 28, 28, 28, 29, 30, 31, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 50];
const DEPTH = [16, 16, 17, 19, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 33, 33, 32];
const DISC_BELOW = [5, 4, 4, 4, 4, 4, 4.5, 5, 5, 5.5, 6, 6.5, 7.5, 8.5, 9.5, 10.5, 11, 10, 0];

export function isThoracic(level: VertebraLevel): boolean {
  return level.startsWith('T');
}
export function isLumbar(level: VertebraLevel): boolean {
  return level.startsWith('L');
}
function thoracicNumber(level: VertebraLevel): number {
  return isThoracic(level) ? Number(level.slice(1)) : 0;
}

export interface Capsule {
  a: Vec3;
  b: Vec3;
  r: number;
}

export interface Vertebra {
  level: VertebraLevel;
  /** Centre in the body frame. */
  c: Vec3;
  /** Local orthonormal axes (body frame): u lateral (left), v posterior, w superior (endplate normal). */
  eu: Vec3;
  ev: Vec3;
  ew: Vec3;
  tiltRad: number;
  halfWidth: number;
  halfDepth: number;
  heightPost: number;
  heightAnt: number;
  cortexMm: number;
  endplateMm: number;
  notchRadius: number;
  vbmd: number;
  isSacrum: boolean;
  hasRibs: boolean;
  canal: { halfWidth: number; halfDepth: number; v: number };
  arch: { thick: number; height: number; w: number };
  /** Posterior elements as capsules in local (u,v,w) coordinates. */
  processes: Capsule[];
  lesion: { kind: LesionKind; c: Vec3; r: number; vbmdEquivalent: number; softTissue: boolean } | null;
  fractureLoss: number | null;
  /** Trabecular texture: plane waves (unit direction in local coords, wavenumber rad/mm, phase, amplitude HU). */
  texture: { k: Vec3; phase: number; amp: number }[];
  /** Basivertebral venous channel (local box half-sizes and centre v). */
  vein: { halfU: number; v0: number; v1: number; halfW: number };
  /** What the hard preset (src/phantom/hard) changes in this body; absent on default phantoms. */
  hard?: VertebraHard;
}

export interface Rib {
  level: VertebraLevel;
  side: 1 | -1;
  radius: number;
  /** Centreline in the body frame. */
  points: Vec3[];
}

export interface TorsoAt {
  a: number;
  bAnt: number;
  bPost: number;
  fat: number;
  muscleWall: number;
  skin: number;
}

export interface Person {
  vertebrae: Vertebra[];
  ribs: Rib[];
  ribPairs: number;
  /** Spine centre line (body frame) as a function of z: x, y and the nearest vertebra's geometry. */
  spineAt(z: number): { x: number; y: number; halfWidth: number; halfDepth: number; canalHalfDepth: number; level: number };
  torsoAt(z: number): TorsoAt;
  /** z of the diaphragm dome's posterior recess reference (lungs above, abdomen below). */
  diaphragmZ: number;
  /** Subcutaneous fat thickness scale (anterior abdomen), mm. */
  fatMm: number;
  visceralFatFraction: number;
  aortaRadius: number;
  aortaAt(z: number): { x: number; y: number; r: number; iliac: boolean };
  heart: { c: Vec3; r: Vec3 } | null;
  liverBottomZ: number;
  kidneys: { c: Vec3; r: Vec3 }[];
  spleen: { c: Vec3; r: Vec3 };
  bowel: { c0: Vec3; dir: Vec3; length: number; r: number; lumen: 'gas' | 'fluid' | 'feces' }[];
  /** Central beam-hardening depression, HU (at the torso centre; 0 at the skin). */
  cuppingHu: number;
  /** Lowest and highest z of any modelled bone (for range checks). */
  zMin: number;
  zMax: number;
}

export interface PersonRequest {
  vbmdOverrides: Partial<Record<VertebraLevel, number>>;
  lesions: { level: VertebraLevel; kind: LesionKind }[];
  fractures: { level: VertebraLevel; heightLossFraction: number }[];
  ribAnomalies: boolean;
}

function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/** Relative vBMD by level: thoracic bodies are denser than lumbar (~1 % per level in QCT reference data). */
function levelFactor(index: number, l1Index: number): number {
  return 1 + 0.012 * (l1Index - index);
}

export function buildPerson(rng: Rng, req: PersonRequest): Person {
  const n = MODELLED_LEVELS.length;
  const l1 = MODELLED_LEVELS.indexOf('L1');
  const heightScale = rng.range(0.9, 1.1);
  const widthScale = rng.range(0.9, 1.1);

  // Bone density: a person's mean around L1-L2, spread over the ACR categories; overrides pull the mean.
  const overrideEntries = Object.entries(req.vbmdOverrides) as [VertebraLevel, number][];
  let base = rng.range(45, 205);
  if (overrideEntries.length > 0) {
    base = overrideEntries.reduce((s, [lv, v]) => s + v / levelFactor(MODELLED_LEVELS.indexOf(lv), l1), 0) / overrideEntries.length;
  }

  // Sagittal curvature: thoracic kyphosis (apex ~T7, posterior) and lumbar lordosis (apex ~L3, anterior).
  const kyphosisMm = rng.range(8, 22);
  const lordosisMm = rng.range(8, 22);
  const scoliosisMm = rng.clampedNormal(0, 3, -8, 8);
  const sacralTiltRad = (rng.range(30, 45) * Math.PI) / 180;

  // Stack the bodies from S1 upward; z = 0 at the bottom of S1.
  const heights: number[] = [];
  const discs: number[] = [];
  for (let i = 0; i < n; i++) {
    heights.push(HEIGHT[i] * heightScale * rng.range(0.97, 1.03));
    discs.push(DISC_BELOW[i] * heightScale * rng.range(0.9, 1.1));
  }
  const zc: number[] = new Array<number>(n);
  let zTop = 0;
  for (let i = n - 1; i >= 0; i--) {
    if (i < n - 1) zTop += discs[i];
    zc[i] = zTop + heights[i] / 2;
    zTop += heights[i];
  }
  const zOf = (name: VertebraLevel): number => zc[MODELLED_LEVELS.indexOf(name)];
  const zT1 = zOf('T1');
  const zT7 = zOf('T7');
  const zT12 = zOf('T12');
  const zL3 = zOf('L3');
  const zS1 = zOf('S1');
  // Sagittal offset (y, posterior +) of the spine centre line: half-sine bumps over the thoracic and lumbar spans.
  const ySag = (z: number): number => {
    let y = 0;
    if (z > zT12 && z < zT1 + 20) y += kyphosisMm * Math.sin((Math.PI * (z - zT12)) / (zT1 + 20 - zT12));
    if (z < zT12 && z > zS1) y -= lordosisMm * Math.sin((Math.PI * (z - zS1)) / (zT12 - zS1));
    return y;
  };
  const xCor = (z: number): number => scoliosisMm * Math.sin((Math.PI * (z - zL3)) / (zT1 - zL3));
  void zT7;

  // Rib count variation (~1 % each): 11 pairs (no T12 rib) or 13 (a rib on L1).
  let ribPairs = 12;
  if (req.ribAnomalies) {
    const u = rng.uniform();
    if (u < 0.01) ribPairs = 11;
    else if (u < 0.02) ribPairs = 13;
  }

  // Soft tissue build.
  const fatMm = rng.range(6, 38);
  const frameScale = rng.range(0.92, 1.08);
  const muscleScale = rng.range(0.8, 1.2);

  const vertebrae: Vertebra[] = [];
  for (let i = 0; i < n; i++) {
    const level = MODELLED_LEVELS[i];
    const isSacrum = level === 'S1';
    const z = zc[i];
    const dz = 1;
    const slope = (ySag(z + dz) - ySag(z - dz)) / (2 * dz);
    let tilt = Math.atan(slope);
    if (isSacrum) tilt = -sacralTiltRad; // S1 endplate faces anterior-superior
    // Local axes: w along the spine tangent (tilted in the sagittal plane), v posterior, u left.
    const ew: Vec3 = [0, Math.sin(tilt), Math.cos(tilt)];
    const ev: Vec3 = [0, Math.cos(tilt), -Math.sin(tilt)];
    const eu: Vec3 = [1, 0, 0];
    const halfWidth = (WIDTH[i] / 2) * widthScale * rng.range(0.97, 1.03);
    const halfDepth = (DEPTH[i] / 2) * widthScale * rng.range(0.97, 1.03);
    const heightPost = heights[i];
    const thoracic = isThoracic(level);
    // Natural wedging: thoracic bodies are ~5 % shorter anteriorly (kyphosis), L5 ~5 % taller.
    let heightAnt = heightPost * (thoracic ? rng.range(0.93, 0.97) : level === 'L5' ? 1.05 : rng.range(0.98, 1.01));
    const fr = req.fractures.find((f) => f.level === level);
    if (fr) heightAnt = heightPost * (1 - fr.heightLossFraction);
    const lumbar = isLumbar(level);
    const canalHalfWidth = lumbar ? (level === 'L1' ? 10.5 : 11.5) : level === 'T12' ? 9 : level === 'C7' ? 12 : isSacrum ? 12 : 8;
    const canalHalfDepth = lumbar ? 8 : isSacrum ? 6 : 7.5;
    const canalV = halfDepth + canalHalfDepth - 1.5;
    const archThick = lumbar ? 6 : 5;
    const archHeight = 0.8 * heightPost;
    const archW = 0.05 * heightPost;
    const processes: Capsule[] = [];
    const backV = canalV + canalHalfDepth + archThick - 2;
    const tn = thoracicNumber(level);
    if (!isSacrum) {
      // Spinous process: long and steep in the thorax, horizontal and tall in the lumbar spine.
      if (thoracic && tn <= 10) processes.push({ a: [0, backV, archW], b: [0, backV + 26, archW - 20], r: 3.5 });
      else if (thoracic) processes.push({ a: [0, backV, archW], b: [0, backV + 28, archW - 10], r: 4 });
      else if (lumbar) {
        processes.push({ a: [0, backV, archW + 2], b: [0, backV + 27, archW], r: 4 });
        processes.push({ a: [0, backV, archW - 5], b: [0, backV + 25, archW - 7], r: 4 });
      } else processes.push({ a: [0, backV, archW], b: [0, backV + 32, archW - 8], r: 4 });
      // Transverse processes: posterolateral in the thorax (they carry the rib tubercle), lateral in the lumbar.
      const tpLen = thoracic ? (tn <= 10 ? 24 : tn === 11 ? 16 : 10) : lumbar ? [20, 25, 30, 27, 24][Number(level.slice(1)) - 1] : 18;
      const tpR = level === 'L5' ? 5 : thoracic ? 4 : 3.5;
      for (const s of [-1, 1]) {
        // Pedicle: from the arch's side to the body's posterolateral corner.
        processes.push({ a: [s * (canalHalfWidth + archThick / 2), canalV, archW + 1], b: [s * (canalHalfWidth + archThick / 2) * 0.95, halfDepth * 0.85, archW + 1], r: archThick / 2 + 0.5 });
        const root: Vec3 = [s * (canalHalfWidth + archThick - 1), canalV - 1, archW + 2];
        const tip: Vec3 = thoracic ? [s * (canalHalfWidth + tpLen), canalV + 10, archW + 2] : [s * (canalHalfWidth + tpLen), canalV - 3, archW + 1];
        processes.push({ a: root, b: tip, r: tpR });
        // Articular processes (facets): vertical pillars that meet the neighbours' arches.
        processes.push({ a: [s * (canalHalfWidth + archThick - 2), canalV + 3, archW - archHeight / 2 - 3], b: [s * (canalHalfWidth + archThick - 2), canalV + 3, archW + archHeight / 2 + 3], r: 3.5 });
      }
    } else {
      // Sacral alae and the posterior sacral crest; iliac wings are added as separate capsules below.
      for (const s of [-1, 1]) {
        processes.push({ a: [s * halfWidth * 0.7, 4, 0], b: [s * (halfWidth + 35), 14, -4], r: 11 });
        processes.push({ a: [s * (halfWidth + 35), 14, -4], b: [s * (halfWidth + 55), 30, 10], r: 8 });
      }
      processes.push({ a: [0, backV, 0], b: [0, backV + 12, -10], r: 4 });
    }
    // vBMD per level.
    let vbmd = base * levelFactor(i, l1) + rng.normal(0, 3);
    const over = req.vbmdOverrides[level];
    if (over !== undefined) vbmd = over;
    vbmd = Math.max(10, Math.min(320, vbmd));
    const hasRibs = (tn >= 1 && tn <= Math.min(12, ribPairs)) || (ribPairs === 13 && level === 'L1');
    // Lesion: a sphere overlapping the body centre (so a central ROI sees it).
    const lr = req.lesions.find((l) => l.level === level);
    let lesion: Vertebra['lesion'] = null;
    if (lr) {
      const r = rng.range(0.45, 0.65) * Math.min(halfWidth, halfDepth);
      const c: Vec3 = [rng.range(-0.3, 0.3) * halfWidth, rng.range(-0.35, 0.1) * halfDepth, rng.range(-0.15, 0.15) * heightPost];
      lesion =
        lr.kind === 'blastic'
          ? { kind: 'blastic', c, r, vbmdEquivalent: vbmd + rng.range(250, 550), softTissue: false }
          : { kind: 'lytic', c, r, vbmdEquivalent: 0, softTissue: true };
    }
    const texture: Vertebra['texture'] = [];
    for (let t = 0; t < 4; t++) {
      const th = rng.range(0, Math.PI);
      const ph = rng.range(0, 2 * Math.PI);
      const dir: Vec3 = [Math.sin(th) * Math.cos(ph), Math.sin(th) * Math.sin(ph), Math.cos(th)];
      const k = (2 * Math.PI) / rng.range(2.5, 5);
      texture.push({ k: [dir[0] * k, dir[1] * k, dir[2] * k], phase: rng.range(0, 2 * Math.PI), amp: rng.range(3, 7) });
    }
    vertebrae.push({
      level,
      c: [xCor(z), 0, z],
      eu,
      ev,
      ew,
      tiltRad: tilt,
      halfWidth,
      halfDepth,
      heightPost,
      heightAnt,
      cortexMm: rng.range(1.0, 1.5),
      endplateMm: rng.range(0.7, 1.1),
      notchRadius: 0.42 * halfWidth,
      vbmd,
      isSacrum,
      hasRibs,
      canal: { halfWidth: canalHalfWidth, halfDepth: canalHalfDepth, v: canalV },
      arch: { thick: archThick, height: archHeight, w: archW },
      processes,
      lesion,
      fractureLoss: fr ? fr.heightLossFraction : null,
      texture,
      vein: { halfU: rng.range(1.5, 2.2), v0: halfDepth * rng.range(0.35, 0.5), v1: halfDepth + 1, halfW: rng.range(1.8, 2.8) },
    });
  }
  // The spine's y: the sagittal curve, placed so that the back (skin) is at a plausible distance.
  const spineY0 = rng.range(-5, 12);
  for (const v of vertebrae) v.c[1] = spineY0 + ySag(v.c[2]);
  // S1 sits posterior-inferior in the pelvis, behind the lordosis.
  const s1 = vertebrae[n - 1];
  s1.c[1] += 12;

  const spineAt = (z: number): ReturnType<Person['spineAt']> => {
    // Interpolate between the two nearest body centres in z.
    let k = 0;
    while (k < n - 1 && vertebrae[k + 1].c[2] > z) k++;
    const a = vertebrae[k];
    const b = vertebrae[Math.min(n - 1, k + 1)];
    const t = a === b || a.c[2] === b.c[2] ? 0 : Math.min(1, Math.max(0, (a.c[2] - z) / (a.c[2] - b.c[2])));
    return {
      x: lerp(a.c[0], b.c[0], t),
      y: lerp(a.c[1], b.c[1], t),
      halfWidth: lerp(a.halfWidth, b.halfWidth, t),
      halfDepth: lerp(a.halfDepth, b.halfDepth, t),
      canalHalfDepth: lerp(a.canal.halfDepth, b.canal.halfDepth, t),
      level: k + t,
    };
  };

  const torsoAt = (z: number): TorsoAt => {
    const sp = spineAt(z);
    const li = sp.level; // 0 = C7 ... 18 = S1
    // Skeletal frame half-width: chest widest ~T6-T9, waist at L2-L4, pelvis at S1.
    const frame = li < 6 ? lerp(125, 140, li / 6) : li < 11 ? 140 : li < 15 ? lerp(140, 128, (li - 11) / 4) : lerp(128, 145, Math.min(1, (li - 15) / 3));
    const abdominal = Math.min(1, Math.max(0, (li - 9) / 5));
    const fat = fatMm * lerp(0.6, 1, abdominal);
    const muscleWall = lerp(14, 10, abdominal) * muscleScale;
    const skin = 2;
    const a = frame * frameScale + fat * 0.9 + muscleWall;
    const bAnt = lerp(95, 100, abdominal) * frameScale + fat + muscleWall;
    // The back follows the spine: body + canal + erector spinae + fat.
    const esDepth = lerp(34, 46, abdominal) * muscleScale;
    const bPost = sp.y + sp.halfDepth + 2 * sp.canalHalfDepth + 3 + esDepth + fat * 0.6 + skin;
    return { a, bAnt, bPost, fat, muscleWall, skin };
  };

  // Ribs: head at the body's posterolateral corner, neck to the transverse process tip, then an arc along
  // the inside of the chest wall, descending anteriorly.
  const ribs: Rib[] = [];
  for (const v of vertebrae) {
    if (!v.hasRibs) continue;
    const tn = isThoracic(v.level) ? thoracicNumber(v.level) : 13;
    const endAngle = tn === 1 ? 2.4 : tn <= 7 ? 2.75 : tn === 8 ? 2.6 : tn === 9 ? 2.45 : tn === 10 ? 2.25 : tn === 11 ? 1.75 : tn === 12 ? 1.25 : 0.8;
    const drop = tn === 1 ? 18 : tn <= 6 ? 45 : tn <= 10 ? 55 : tn === 11 ? 38 : tn === 12 ? 25 : 10;
    const radius = tn <= 10 ? 4.5 : tn === 11 ? 4 : 3.5;
    for (const s of [-1, 1] as const) {
      const toBody = (p: Vec3): Vec3 => [
        v.c[0] + p[0] * v.eu[0] + p[1] * v.ev[0] + p[2] * v.ew[0],
        v.c[1] + p[0] * v.eu[1] + p[1] * v.ev[1] + p[2] * v.ew[1],
        v.c[2] + p[0] * v.eu[2] + p[1] * v.ev[2] + p[2] * v.ew[2],
      ];
      // The rib head sits on the body's costal facet (outside its cortex), not inside the trabecular bone.
      const head = toBody([s * (v.halfWidth * 0.84 + radius), v.halfDepth * 0.55, 0.25 * v.heightPost]);
      const tpTip = toBody([s * (v.canal.halfWidth + (tn <= 10 ? 24 : 14) + 2), v.canal.v + (tn <= 10 ? 13 : 6), v.arch.w + 2]);
      const points: Vec3[] = [head, tpTip];
      const t = torsoAt(tpTip[2]);
      const aR = t.a - t.skin - t.fat * 0.9 - t.muscleWall - 3;
      const bR = (t.bAnt + t.bPost) / 2 - t.fat - t.muscleWall - 3;
      const sin0 = Math.min(0.95, (Math.abs(tpTip[0]) + 12) / aR);
      const th0 = Math.asin(sin0);
      const yc = tpTip[1] + 8 - bR * Math.cos(th0);
      const steps = Math.max(4, Math.ceil(((endAngle - th0) * (aR + bR)) / 2 / 8));
      for (let q = 0; q <= steps; q++) {
        const f = q / steps;
        const th = th0 + (endAngle - th0) * f;
        points.push([s * aR * Math.sin(th), yc + bR * Math.cos(th), tpTip[2] - drop * Math.pow(f, 1.3)]);
      }
      ribs.push({ level: v.level, side: s, radius, points });
    }
  }

  const diaphragmZ = zOf('T11') + rng.range(-10, 15);
  const aortaRadius = rng.range(10, 13.5);
  const zBif = zOf('L4') + rng.range(-8, 8);
  const aortaAt = (z: number): ReturnType<Person['aortaAt']> => {
    const sp = spineAt(z);
    // Descending thoracic aorta lies left-anterolateral of the bodies; abdominal aorta anterior, slightly left.
    const tT = zT12 + 10;
    const tA = zOf('L1');
    const f = z >= tT ? 0 : z <= tA ? 1 : (tT - z) / (tT - tA);
    const r = aortaRadius * lerp(1.1, 0.85, f);
    // Thoracic: ~55 degrees left of straight anterior, clear of the body by a fat rim.
    const ux = 0.82;
    const uy = -0.57;
    const bodyR = 1 / Math.sqrt((ux / sp.halfWidth) ** 2 + (uy / sp.halfDepth) ** 2);
    const xT = sp.x + ux * (bodyR + r + 5);
    const yT = sp.y + uy * (bodyR + r + 5);
    const xA = sp.x + 10;
    const yA = sp.y - sp.halfDepth - r - 4;
    if (z < zBif) {
      return { x: sp.x + 14 + (zBif - z) * 0.45, y: sp.y - sp.halfDepth - 9, r: 6.5, iliac: true };
    }
    return { x: lerp(xT, xA, f), y: lerp(yT, yA, f), r, iliac: false };
  };

  const heart = { c: [22, -45, diaphragmZ + 55] as Vec3, r: [60, 45, 55] as Vec3 };
  const liverBottomZ = zOf('L2') + rng.range(-10, 15);
  const kidneys = [1, -1].map((s) => {
    const zk = (zOf('L1') + zOf('L2')) / 2 + (s < 0 ? -12 : 0) + rng.range(-8, 8);
    const sp = spineAt(zk);
    return { c: [sp.x + s * (sp.halfWidth + 48), sp.y + 18, zk] as Vec3, r: [26, 30, 55] as Vec3 };
  });
  const spleen = { c: [95, 35, diaphragmZ - 30] as Vec3, r: [30, 45, 45] as Vec3 };
  const bowel: Person['bowel'] = [];
  const nb = 6 + Math.floor(rng.range(0, 8));
  for (let b = 0; b < nb; b++) {
    const z0 = rng.range(zOf('S1'), diaphragmZ - 20);
    const ang = rng.range(0, 2 * Math.PI);
    const el = rng.range(0, 0.8);
    bowel.push({
      c0: [rng.range(-70, 70), rng.range(-80, -45), z0],
      dir: [Math.cos(ang) * el, Math.sin(ang) * el * 0.4, 1],
      length: rng.range(30, 120),
      r: rng.range(8, 20),
      lumen: rng.pick(['gas', 'fluid', 'feces', 'gas'] as const),
    });
  }
  const top = vertebrae[0];
  return {
    vertebrae,
    ribs,
    ribPairs,
    spineAt,
    torsoAt,
    diaphragmZ,
    fatMm,
    visceralFatFraction: rng.range(0.25, 0.7),
    aortaRadius,
    aortaAt,
    heart,
    liverBottomZ,
    kidneys,
    spleen,
    bowel,
    // Residual cupping after the scanner's water beam-hardening correction: a few HU at most in the body centre.
    cuppingHu: rng.range(0, 2),
    zMin: s1.c[2] - s1.heightPost,
    zMax: top.c[2] + top.heightPost / 2,
  };
}
