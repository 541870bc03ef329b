import type { Vec3 } from '../../../imaging/volume.js';
import type { Capsule, Person, Rib, Vertebra } from '../anatomy.js';
import type { Rng } from '../random.js';
import { chain } from './paint.js';
import type { Sternum } from './thorax.js';

/**
 * Shoulder girdle and arms. Sizes: clavicle ~14-16 cm end to end, midshaft ~11-13 mm (Bernat et al. 2014, 3D
 * CT of 68 clavicles: 149 +- 10 mm; Bachoura et al. 2013: 137 mm, midshaft 10.9 mm), rising 15-35 mm from the
 * sternoclavicular joint to the acromion; scapula ~15 cm tall over ribs 2-7, its medial border 5-7 cm from
 * the spinous processes, a thin plate (2-4 mm) thickened along its lateral border; humeral head radius
 * ~22-25 mm (Iannotti et al., JBJS Am 1992: radius of curvature ~25 mm); biacromial half-breadth 165-200 mm;
 * humerus ~30 cm; upper arm 28-33 cm circumference. Arms up (most chest/abdomen CT) rotate the scapula upward
 * and put the humeri beside the head; arms down (trauma, frail patients) lay them beside the chest and abdomen.
 */
export interface Girdle {
  arms: 'up' | 'down';
  /** Thin bone plates and bars, per side. */
  scapulaPlates: Capsule[];
  scapulaBars: Capsule[];
  clavicles: Capsule[];
  humeralHeads: { c: Vec3; r: number }[];
  /** Arms as shoulder-elbow-wrist lines; the painter keeps them clear of the trunk slice by slice. */
  limbs: Limb[];
  /** Soft tissue of the shoulder: muscle tubes, each under a fat layer. */
  muscles: Capsule[];
  fatMm: number;
  zHumeralHead: number;
  /** Top of the shoulders: above it the trunk narrows to the neck. */
  zAcromion: number;
}

export interface Limb {
  side: 1 | -1;
  shoulder: Vec3;
  elbow: Vec3;
  wrist: Vec3;
  upperArmR: number;
  forearmR: number;
}

function plateSegments(a: Vec3, b: Vec3, c: Vec3, halfThick: number, rows: number): Capsule[] {
  // A triangular plate as a fan of thin capsules from edge a-b toward c (cheap and exact enough at CT voxels).
  const out: Capsule[] = [];
  for (let i = 0; i <= rows; i++) {
    const t = i / rows;
    const p: Vec3 = [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
    out.push({ a: p, b: c, r: halfThick });
  }
  return out;
}

/** Posterior-most y of the ribs near lateral position x and height z (where the scapula rests), or null. */
function ribBackY(ribs: readonly Rib[], x: number, z: number): number | null {
  let best: number | null = null;
  for (const r of ribs) {
    for (const p of r.points) {
      if (Math.abs(p[0] - x) < 12 && Math.abs(p[2] - z) < 14) best = best === null ? p[1] + r.radius : Math.max(best, p[1] + r.radius);
    }
  }
  return best;
}

export function buildGirdle(person: Person, spine: Vertebra[], ribs: readonly Rib[], st: Sternum, arms: 'up' | 'down', rng: Rng): Girdle {
  const lv = (l: string): Vertebra => spine.find((v) => v.level === l)!;
  const zSC = st.zTop + 4;
  const top = st.at(st.zTop) ?? { y: -90, hw: 25, ht: 6 };
  const tor = person.torsoAt(zSC);
  const acrHalf = Math.max(165, Math.min(205, tor.a + rng.range(12, 32)));
  const zAcr = zSC + rng.range(15, 35);
  const yAcr = person.spineAt(zAcr).y + rng.range(0, 15);
  const headR = rng.range(21.5, 25);
  const up = arms === 'up';
  const out: Girdle = { arms, scapulaPlates: [], scapulaBars: [], clavicles: [], humeralHeads: [], limbs: [], muscles: [], fatMm: rng.range(5, 14), zHumeralHead: 0, zAcromion: zAcr };
  const scap = { medial: rng.range(55, 68), inferior: rng.range(75, 92), lat: rng.range(40, 50) };
  const upperArmR = rng.range(38, 50);
  const forearmR = rng.range(30, 37);
  for (const s of [-1, 1] as const) {
    // Clavicle: S-shaped, convex forward medially and concave forward laterally.
    const m: Vec3 = [s * (top.hw + 3), top.y, zSC];
    const acr: Vec3 = [s * (acrHalf - 12), yAcr - 4, zAcr - 4];
    const p1: Vec3 = [m[0] + 0.35 * (acr[0] - m[0]), m[1] + 0.35 * (acr[1] - m[1]) - 10, m[2] + 0.3 * (acr[2] - m[2])];
    const p2: Vec3 = [m[0] + 0.72 * (acr[0] - m[0]), m[1] + 0.72 * (acr[1] - m[1]) + 3, m[2] + 0.75 * (acr[2] - m[2])];
    out.clavicles.push({ a: m, b: p1, r: 7.5 }, ...chain([p1, p2, acr], 6));
    // Scapula: superior angle ~T2, inferior angle ~T7, glenoid below the acromion; rotated upward with arms up.
    const zSup = lv('T2').c[2] + 5;
    const zInf = lv('T7').c[2] + (up ? 15 : 0);
    const xInf = s * (scap.inferior + (up ? 45 : 0));
    const glen: Vec3 = [s * (acrHalf - scap.lat + (up ? 5 : 0)), yAcr - 18, zAcr - 30 + (up ? 25 : 0)];
    const yAt = (x: number, z: number): number => (ribBackY(ribs, x, z) ?? person.spineAt(z).y + 45) + 7;
    const sup: Vec3 = [s * (scap.medial - (up ? 5 : 0)), yAt(s * scap.medial, zSup), zSup - (up ? 5 : 0)];
    const inf: Vec3 = [xInf, yAt(xInf, zInf), zInf];
    const neck: Vec3 = [glen[0] - s * 12, glen[1] + 6, glen[2]];
    out.scapulaPlates.push(...plateSegments(sup, inf, neck, 1.4, 14));
    out.scapulaBars.push({ a: inf, b: neck, r: 4.2 }, { a: inf, b: sup, r: 2.2 }, { a: sup, b: neck, r: 2.2 });
    // Spine of the scapula to the acromion; coracoid forward from the neck; glenoid facing out.
    const spineRoot: Vec3 = [sup[0] + 0.25 * (inf[0] - sup[0]), sup[1] + 0.25 * (inf[1] - sup[1]) + 3, sup[2] + 0.22 * (inf[2] - sup[2])];
    out.scapulaBars.push({ a: spineRoot, b: [s * (acrHalf - 30), yAcr + 6, zAcr - 2], r: 4.5 }, { a: [s * (acrHalf - 30), yAcr + 6, zAcr - 2], b: [s * acrHalf, yAcr - 6, zAcr + 2], r: 5.5 });
    out.scapulaBars.push({ a: [neck[0], neck[1] - 8, neck[2] + 8], b: [neck[0] - s * 12, neck[1] - 38, neck[2] + 6], r: 5 });
    out.scapulaBars.push({ a: [glen[0], glen[1], glen[2] - 14], b: [glen[0], glen[1], glen[2] + 14], r: 9 });
    // Humeral head against the glenoid; the shaft down the side (arms down) or up beside the head.
    const head: Vec3 = [glen[0] + s * (headR + 4), glen[1] - 3, glen[2] - 3];
    out.humeralHeads.push({ c: head, r: headR });
    out.zHumeralHead = head[2];
    const neckH: Vec3 = [head[0], head[1], head[2] + (up ? 0.8 : -0.8) * headR];
    const elbowZ = head[2] + (up ? 290 : -290);
    const elbow: Vec3 = [s * (Math.abs(head[0]) + (up ? -40 : 12)), head[1] + (up ? 25 : 5), elbowZ];
    const wrist: Vec3 = [elbow[0] - s * 15, elbow[1] - 35, elbow[2] + (up ? 240 : -240)];
    out.limbs.push({ side: s, shoulder: neckH, elbow, wrist, upperArmR, forearmR });
    // Muscles: deltoid over the head, trapezius to the neck, scapular muscles over the plate, arms.
    out.muscles.push({ a: [head[0] + s * 4, head[1], head[2] + 12], b: [head[0] + s * 8, head[1], head[2] - 30], r: headR + 18 });
    out.muscles.push({ a: [s * 25, person.spineAt(zAcr).y + 42, zAcr + 25], b: [s * (acrHalf - 22), yAcr + 10, zAcr + 4], r: 21 });
    out.muscles.push({ a: sup, b: inf, r: 13 }, { a: inf, b: neck, r: 15 }, { a: sup, b: neck, r: 13 });
  }
  return out;
}
