import type { VertebraLevel } from '../../bmd/report.js';
import type { Vec3 } from '../../imaging/volume.js';
import { DISC_BELOW, HEIGHT, MODELLED_LEVELS, buildVertebra, isThoracic, levelFactor, thoracicNumber, type SpineStack } from './anatomy-vertebra.js';
import type { Rng } from './random.js';
import type { VertebraHard } from './hard/spec.js';
import type { LesionKind } from './types.js';

export { MODELLED_LEVELS, isLumbar, isThoracic } from './anatomy-vertebra.js';

/**
 * The person: a skeleton and soft tissues described analytically in a body frame (mm; x to the patient's
 * left, y posterior, z superior: LPS axes before the patient's rotation on the table). The renderer samples
 * these shapes per slice. Sizes are adult means from anatomy texts (vertebral body heights 15-27 mm
 * growing caudally, widths 27-50 mm, discs 4-11 mm), scaled and jittered per person. The person's Rng is one
 * stream: buildPerson and the functions it calls keep their draws in one fixed order (a reordered draw changes
 * every phantom, and the shipped model was trained on them).
 */

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
  /** What the hard preset (src/research/phantom/hard) changes in this body; absent on default phantoms. */
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
  /** Pedicles and transverse processes beside the body's cranial part, as in patients (the hard preset; see pedicleRaise). */
  pediclesAtCranialBody?: boolean;
}

function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/** Draws one person: spine stack, build, each vertebra, ribs, organs and bowel, in that (fixed) draw order. */
export function buildPerson(rng: Rng, req: PersonRequest): Person {
  const stack = drawSpineStack(rng, req);
  const ribPairs = drawRibPairs(rng, req.ribAnomalies);
  const soft = drawSoftBuild(rng);
  const vertebrae: Vertebra[] = [];
  for (let i = 0; i < MODELLED_LEVELS.length; i++) vertebrae.push(buildVertebra(rng, req, stack, ribPairs, i));
  placeSpine(rng, vertebrae, stack.ySag);
  const spineAt = makeSpineAt(vertebrae);
  const torsoAt = makeTorsoAt(spineAt, soft);
  const ribs = buildRibs(vertebrae, torsoAt);
  const organs = drawOrgans(rng, stack, spineAt);
  const bowel = drawBowel(rng, stack.zOf('S1'), organs.diaphragmZ);
  const s1 = vertebrae[vertebrae.length - 1];
  const top = vertebrae[0];
  return {
    vertebrae,
    ribs,
    ribPairs,
    spineAt,
    torsoAt,
    diaphragmZ: organs.diaphragmZ,
    fatMm: soft.fatMm,
    visceralFatFraction: rng.range(0.25, 0.7),
    aortaRadius: organs.aortaRadius,
    aortaAt: organs.aortaAt,
    heart: organs.heart,
    liverBottomZ: organs.liverBottomZ,
    kidneys: organs.kidneys,
    spleen: organs.spleen,
    bowel,
    // Residual cupping after the scanner's water beam-hardening correction: a few HU at most in the body centre.
    cuppingHu: rng.range(0, 2),
    zMin: s1.c[2] - s1.heightPost,
    zMax: top.c[2] + top.heightPost / 2,
  };
}

/** The spine's scale, density mean, curvature and stacked body centres: the person's first draws. */
function drawSpineStack(rng: Rng, req: PersonRequest): SpineStack {
  const n = MODELLED_LEVELS.length;
  const heightScale = rng.range(0.9, 1.1);
  const widthScale = rng.range(0.9, 1.1);
  const base = drawDensityMean(rng, req.vbmdOverrides);

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
  return { widthScale, base, sacralTiltRad, heights, zc, zOf, ySag, xCor };
}

/** Bone density: a person's mean around L1-L2, spread over the ACR categories; overrides pull the mean. */
function drawDensityMean(rng: Rng, overrides: PersonRequest['vbmdOverrides']): number {
  const l1 = MODELLED_LEVELS.indexOf('L1');
  const overrideEntries = Object.entries(overrides) as [VertebraLevel, number][];
  let base = rng.range(45, 205);
  if (overrideEntries.length > 0) {
    base = overrideEntries.reduce((s, [lv, v]) => s + v / levelFactor(MODELLED_LEVELS.indexOf(lv), l1), 0) / overrideEntries.length;
  }
  return base;
}

/** Rib count variation (~1 % each): 11 pairs (no T12 rib) or 13 (a rib on L1). */
function drawRibPairs(rng: Rng, ribAnomalies: boolean): number {
  let ribPairs = 12;
  if (ribAnomalies) {
    const u = rng.uniform();
    if (u < 0.01) ribPairs = 11;
    else if (u < 0.02) ribPairs = 13;
  }
  return ribPairs;
}

/** Soft tissue build: subcutaneous fat, skeletal frame and muscle scales. */
interface SoftBuild {
  fatMm: number;
  frameScale: number;
  muscleScale: number;
}

function drawSoftBuild(rng: Rng): SoftBuild {
  const fatMm = rng.range(6, 38);
  const frameScale = rng.range(0.92, 1.08);
  const muscleScale = rng.range(0.8, 1.2);
  return { fatMm, frameScale, muscleScale };
}

/** The spine's y: the sagittal curve, placed so that the back (skin) is at a plausible distance. */
function placeSpine(rng: Rng, vertebrae: Vertebra[], ySag: (z: number) => number): void {
  const spineY0 = rng.range(-5, 12);
  for (const v of vertebrae) v.c[1] = spineY0 + ySag(v.c[2]);
  // S1 sits posterior-inferior in the pelvis, behind the lordosis.
  vertebrae[vertebrae.length - 1].c[1] += 12;
}

function makeSpineAt(vertebrae: Vertebra[]): Person['spineAt'] {
  const n = vertebrae.length;
  return (z: number): ReturnType<Person['spineAt']> => {
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
}

function makeTorsoAt(spineAt: Person['spineAt'], soft: SoftBuild): Person['torsoAt'] {
  const { fatMm, frameScale, muscleScale } = soft;
  return (z: number): TorsoAt => {
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
}

/**
 * Ribs: head at the body's posterolateral corner, neck to the transverse process tip, then an arc along the
 * inside of the chest wall, descending anteriorly.
 */
function buildRibs(vertebrae: Vertebra[], torsoAt: Person['torsoAt']): Rib[] {
  const ribs: Rib[] = [];
  for (const v of vertebrae) {
    if (!v.hasRibs) continue;
    const tn = isThoracic(v.level) ? thoracicNumber(v.level) : 13;
    const endAngle = tn === 1 ? 2.4 : tn <= 7 ? 2.75 : tn === 8 ? 2.6 : tn === 9 ? 2.45 : tn === 10 ? 2.25 : tn === 11 ? 1.75 : tn === 12 ? 1.25 : 0.8;
    const drop = tn === 1 ? 18 : tn <= 6 ? 45 : tn <= 10 ? 55 : tn === 11 ? 38 : tn === 12 ? 25 : 10;
    const radius = tn <= 10 ? 4.5 : tn === 11 ? 4 : 3.5;
    for (const s of [-1, 1] as const) {
      ribs.push({ level: v.level, side: s, radius, points: ribCentreline(v, s, tn, radius, endAngle, drop, torsoAt) });
    }
  }
  return ribs;
}

/** One rib's centreline (body frame): head, transverse process tip, then the arc to `endAngle`, dropping `drop` mm. */
function ribCentreline(v: Vertebra, s: 1 | -1, tn: number, radius: number, endAngle: number, drop: number, torsoAt: Person['torsoAt']): Vec3[] {
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
  return points;
}

type Organs = Pick<Person, 'diaphragmZ' | 'aortaRadius' | 'aortaAt' | 'heart' | 'liverBottomZ' | 'kidneys' | 'spleen'>;

/** Diaphragm, aorta, heart, liver, kidneys and spleen, placed relative to the spine. */
function drawOrgans(rng: Rng, stack: SpineStack, spineAt: Person['spineAt']): Organs {
  const { zOf } = stack;
  const diaphragmZ = zOf('T11') + rng.range(-10, 15);
  const aortaRadius = rng.range(10, 13.5);
  const zBif = zOf('L4') + rng.range(-8, 8);
  const aortaAt = makeAortaAt(spineAt, aortaRadius, zBif, zOf('T12'), zOf('L1'));
  const heart = { c: [22, -45, diaphragmZ + 55] as Vec3, r: [60, 45, 55] as Vec3 };
  const liverBottomZ = zOf('L2') + rng.range(-10, 15);
  const kidneys = [1, -1].map((s) => {
    const zk = (zOf('L1') + zOf('L2')) / 2 + (s < 0 ? -12 : 0) + rng.range(-8, 8);
    const sp = spineAt(zk);
    return { c: [sp.x + s * (sp.halfWidth + 48), sp.y + 18, zk] as Vec3, r: [26, 30, 55] as Vec3 };
  });
  const spleen = { c: [95, 35, diaphragmZ - 30] as Vec3, r: [30, 45, 45] as Vec3 };
  return { diaphragmZ, aortaRadius, aortaAt, heart, liverBottomZ, kidneys, spleen };
}

/** The aorta's centre and radius at z: thoracic, abdominal, and below the bifurcation (zBif) the iliac. */
function makeAortaAt(spineAt: Person['spineAt'], aortaRadius: number, zBif: number, zT12: number, zL1: number): Person['aortaAt'] {
  return (z: number): ReturnType<Person['aortaAt']> => {
    const sp = spineAt(z);
    // Descending thoracic aorta lies left-anterolateral of the bodies; abdominal aorta anterior, slightly left.
    const tT = zT12 + 10;
    const tA = zL1;
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
}

/** 6-13 bowel loops between S1 and below the diaphragm, each a capsule of gas, fluid or feces. */
function drawBowel(rng: Rng, zS1: number, diaphragmZ: number): Person['bowel'] {
  const bowel: Person['bowel'] = [];
  const nb = 6 + Math.floor(rng.range(0, 8));
  for (let b = 0; b < nb; b++) {
    const z0 = rng.range(zS1, diaphragmZ - 20);
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
  return bowel;
}
