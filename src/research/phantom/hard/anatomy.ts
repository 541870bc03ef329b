import type { VertebraLevel } from '../../../bmd/report.js';
import type { Vec3 } from '../../../imaging/volume.js';
import type { Capsule, Person, TorsoAt, Vertebra } from '../anatomy.js';
import { Rng, subSeed } from '../random.js';
import { buildGirdle, type Girdle } from './girdle.js';
import { buildHardware, type Hardware } from './hardware.js';
import { buildHardSpine, type HardSpine } from './spine.js';
import type { DiscDegeneration, HardSpec } from './spec.js';
import { buildRibCage, buildSternum, type RibCage, type Sternum } from './thorax.js';

/**
 * The thoracic aorta ends in its arch: the descending aorta runs beside the spine only up to ~T4; the arch crosses
 * from the ascending aorta (right-anterior, from the heart) backwards and to the left at the T3-T4 level (Gray's
 * Anatomy: the arch lies behind the manubrium, its top ~2.5 cm below the jugular notch). Above it, no aorta.
 */
function cutAortaAtArch(person: Person, spine: Vertebra[]): Capsule[] {
  const t4 = spine.find((v) => v.level === 'T4')!;
  const zJoin = t4.c[2];
  const descend = person.aortaAt;
  const d = descend(zJoin);
  person.aortaAt = (z: number) => (z > zJoin ? { ...descend(z), r: 0 } : descend(z));
  const h = person.heart;
  const zTop = zJoin + 14;
  const asc: Vec3 = [d.x - 45, h ? h.c[1] - 5 : d.y - 70, h ? h.c[2] + h.r[2] * 0.6 : zJoin - 40];
  const r = d.r * 1.1;
  return [
    { a: asc, b: [asc[0] + 5, asc[1] + 10, zTop - 6], r },
    { a: [asc[0] + 5, asc[1] + 10, zTop - 6], b: [(asc[0] + d.x) / 2, (asc[1] + d.y) / 2, zTop], r },
    { a: [(asc[0] + d.x) / 2, (asc[1] + d.y) / 2, zTop], b: [d.x, d.y, zJoin], r: d.r },
  ];
}

/** A calcified plaque in the aortic wall: an arc of the wall over a z-span. */
export interface Plaque {
  z0: number;
  z1: number;
  /** Centre angle (rad, in the axial plane) and half-width of the arc. */
  angle: number;
  halfArc: number;
  thickMm: number;
  hu: number;
}

/** The person of a hard study: the default person re-shaped, plus what the default phantom does not draw. */
export interface HardAnatomy {
  spec: HardSpec;
  spine: HardSpine;
  discs: Map<Vertebra, DiscDegeneration>;
  sternum: Sternum | null;
  cage: RibCage;
  girdle: Girdle | null;
  hardware: Hardware;
  plaques: Plaque[];
  /** Ascending aorta and arch (the descending aorta is the person's, cut above the arch). */
  aorticArch: Capsule[];
}

function shiftOrgans(person: Person, dz: (l: VertebraLevel) => number): void {
  const dT11 = dz('T11');
  person.diaphragmZ += dT11;
  if (person.heart) person.heart.c = [person.heart.c[0], person.heart.c[1], person.heart.c[2] + dz('T8')];
  person.spleen.c = [person.spleen.c[0], person.spleen.c[1], person.spleen.c[2] + dT11];
  person.liverBottomZ += dz('L2');
  const dL3 = dz('L3');
  for (const b of person.bowel) b.c0 = [b.c0[0], b.c0[1], b.c0[2] + dL3];
  const dL1 = dz('L1');
  person.kidneys = person.kidneys.map((k, i) => {
    const zk = k.c[2] + dL1;
    const sp = person.spineAt(zk);
    const s = i === 0 ? 1 : -1;
    return { c: [sp.x + s * (sp.halfWidth + 48), sp.y + 18, zk] as Vec3, r: k.r };
  });
}

/**
 * Above the shoulders the trunk narrows to the neck (C6-C7 slices of a chest CT show the neck between the
 * shoulders, not a chest-wide ellipse).
 */
function taperToNeck(person: Person, zAcromion: number, rng: Rng): void {
  const torso = person.torsoAt;
  const neckA = rng.range(55, 68);
  const neckB = rng.range(50, 62);
  person.torsoAt = (z: number): TorsoAt => {
    const t = torso(z);
    const k = Math.min(1, Math.max(0, (z - zAcromion - 5) / 35));
    if (k <= 0) return t;
    const sp = person.spineAt(z);
    const lerp = (a: number, b: number): number => a + (b - a) * k;
    return { ...t, a: lerp(t.a, neckA + t.fat * 0.5), bAnt: lerp(t.bAnt, neckB - sp.y * 0.3), bPost: lerp(t.bPost, sp.y + 60), fat: lerp(t.fat, t.fat * 0.5) };
  };
}

function drawPlaques(spec: HardSpec, spine: Vertebra[], rng: Rng): Plaque[] {
  const lo = spine.find((v) => v.level === 'L4')!.c[2];
  const hi = spine.find((v) => v.level === 'T4')!.c[2];
  const out: Plaque[] = [];
  for (let i = 0; i < spec.aorticPlaques; i++) {
    // Atherosclerotic calcification is commonest in the infrarenal abdominal aorta.
    const zc = rng.chance(0.65) ? rng.range(lo, lo + 0.35 * (hi - lo)) : rng.range(lo, hi);
    const len = rng.range(3, 18);
    out.push({ z0: zc - len / 2, z1: zc + len / 2, angle: rng.range(0, 2 * Math.PI), halfArc: rng.range(0.2, 0.9), thickMm: rng.range(0.8, 2), hu: rng.range(350, 1000) });
  }
  return out;
}

/** Re-shapes `person` in place for the hard preset and returns the extra anatomy to draw. */
export function applyHardAnatomy(person: Person, spec: HardSpec): HardAnatomy {
  const zBefore = new Map(person.vertebrae.map((v) => [v.level, v.c[2]] as const));
  const spine = buildHardSpine(person.vertebrae, spec);
  // Real vertebral shells and endplates are thin: ~0.4 mm measured directly (Silva et al., Bone 1994;15:409-14),
  // so at CT resolution they read a few hundred HU above the trabecular bone, not as compact cortex.
  const shell = new Rng(subSeed(spec.detailSeed, 'shell'));
  for (const v of spine.spine) {
    v.cortexMm = shell.range(0.45, 0.8);
    v.endplateMm = shell.range(0.45, 0.85);
  }
  const dz = (l: VertebraLevel): number => spine.spine.find((v) => v.level === l)!.c[2] - zBefore.get(l)!;
  shiftOrgans(person, dz);
  person.ribPairs = spec.ribPairs;
  for (const v of spine.spine) {
    const tn = v.level.startsWith('T') ? Number(v.level.slice(1)) : 0;
    v.hasRibs = (tn >= 1 && tn <= Math.min(12, spec.ribPairs)) || (spec.ribPairs === 13 && v.level === 'L1');
  }
  const on = (f: HardSpec['features'][number]): boolean => spec.features.includes(f);
  const sternum = buildSternum(person, spine.spine, new Rng(subSeed(spec.detailSeed, 'sternum')));
  const cage = buildRibCage(person, spine.spine, sternum, new Rng(subSeed(spec.detailSeed, 'cage')), spec.cartilageCalcifiedShare);
  if (!on('cartilage')) {
    cage.cartilage = [];
    cage.calcified = [];
  }
  person.ribs = cage.ribs;
  const girdle = on('girdle') ? buildGirdle(person, spine.spine, cage.ribs, sternum, spec.arms, new Rng(subSeed(spec.detailSeed, 'girdle'))) : null;
  if (girdle) taperToNeck(person, girdle.zAcromion, new Rng(subSeed(spec.detailSeed, 'neck')));
  const discs = new Map<Vertebra, DiscDegeneration>();
  for (const d of spec.degeneration) {
    const v = spine.spine.find((q) => q.level === d.upper);
    if (v) discs.set(v, d);
  }
  const aorticArch = cutAortaAtArch(person, spine.spine);
  person.zMax = spine.spine[0].c[2] + spine.spine[0].heightPost / 2;
  const last = spine.spine[spine.spine.length - 1];
  person.zMin = last.c[2] - last.heightPost;
  return {
    spec,
    spine,
    discs,
    sternum: on('sternum') ? sternum : null,
    cage,
    girdle,
    hardware: buildHardware(spine.spine, spec),
    plaques: drawPlaques(spec, spine.spine, new Rng(subSeed(spec.detailSeed, 'plaques'))),
    aorticArch,
  };
}
