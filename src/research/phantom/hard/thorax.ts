import type { Vec3 } from '../../../imaging/volume.js';
import type { Capsule, Person, Rib, Vertebra } from '../anatomy.js';
import { toBody } from '../frame.js';
import type { Rng } from '../random.js';
import { chain } from './paint.js';

/**
 * Sternum, ribs and costal cartilage of the hard preset. Sizes (Gray's Anatomy, 42nd ed., thorax chapter):
 * manubrium ~5 cm long and 5-6 cm wide at the clavicular notches, its top (jugular notch) level with the T2/T3
 * disc; body ~10 cm, the sternal angle (2nd costal cartilage) at the T4/T5 disc; xiphoid 2-5 cm from the T9
 * level. Ribs 1-7 reach the sternum by their cartilages, 8-10 join the cartilage above (the costal margin),
 * 11-12 float. Each rib head articulates with its own body (ribs 2-9 also with the disc and body above, at the
 * upper margin of their own body), its tubercle with its own transverse process, and the shaft slopes down
 * laterally and anteriorly: the anterior end of a mid rib lies 2-4 vertebrae below its head.
 */
export interface Sternum {
  zTop: number;
  zAngle: number;
  zXiphisternal: number;
  zTip: number;
  /** Cross-section at z (centre y, half width, half thickness) or null outside the sternum. */
  at(z: number): { y: number; hw: number; ht: number } | null;
}

function zOf(spine: Vertebra[], level: string): Vertebra {
  return spine.find((v) => v.level === level)!;
}

/** z of the middle of the disc below a level. */
function discBelowZ(spine: Vertebra[], level: string): number {
  const i = spine.findIndex((v) => v.level === level);
  const a = spine[i];
  const b = spine[i + 1];
  return (a.c[2] - a.heightPost / 2 + b.c[2] + b.heightAnt / 2) / 2;
}

export function buildSternum(person: Person, spine: Vertebra[], rng: Rng): Sternum {
  const zTop = discBelowZ(spine, 'T2') + rng.range(-6, 6);
  const zAngle = discBelowZ(spine, 'T4') + rng.range(-6, 6);
  const zXiphisternal = zOf(spine, 'T9').c[2] + rng.range(-8, 8);
  const zTip = zXiphisternal - rng.range(20, 50);
  const k = rng.range(0.9, 1.1);
  const lerp = (a: number, b: number, t: number): number => a + (b - a) * Math.min(1, Math.max(0, t));
  const at = (z: number): { y: number; hw: number; ht: number } | null => {
    if (z > zTop || z < zTip) return null;
    let hw: number;
    let ht: number;
    if (z >= zAngle) {
      const t = (zTop - z) / (zTop - zAngle);
      hw = lerp(27, 15, t);
      ht = 6.5;
    } else if (z >= zXiphisternal) {
      const t = (zAngle - z) / (zAngle - zXiphisternal);
      hw = t < 0.6 ? lerp(13, 16, t / 0.6) : lerp(16, 10, (t - 0.6) / 0.4);
      ht = 5;
    } else {
      const t = (zXiphisternal - z) / (zXiphisternal - zTip);
      hw = lerp(7, 2.5, t);
      ht = 2.5;
    }
    const tor = person.torsoAt(z);
    // The sternum lies just under the thin presternal fat and skin.
    const y = -(tor.bAnt - tor.skin - 0.35 * tor.fat) + ht * k;
    return { y, hw: hw * k, ht: ht * k };
  };
  return { zTop, zAngle, zXiphisternal, zTip, at };
}

/** Where costal cartilage n (1-7) meets the sternum, on side s. */
function sternalAttachment(st: Sternum, n: number, s: number): Vec3 {
  const z =
    n === 1 ? st.zTop - 0.3 * (st.zTop - st.zAngle) : n === 2 ? st.zAngle : n === 7 ? st.zXiphisternal : st.zAngle - ((n - 2) / 5) * (st.zAngle - st.zXiphisternal);
  const c = st.at(z) ?? { y: 0, hw: 10, ht: 5 };
  return [s * (c.hw - 1), c.y, z];
}

/** Rib-cage width relative to the chest wall by rib: the cage is narrow at the top (barrel shape). */
const CAGE = [0.7, 0.84, 0.92, 0.97, 1, 1, 1, 1, 1, 0.99, 0.97, 0.95, 0.93];
/** How far the bony rib descends from head to costochondral junction, mm (rib 1 ... 12, 13 = a lumbar rib). */
const DROP = [18, 42, 52, 60, 66, 72, 76, 76, 72, 66, 46, 30, 16];
/** Angle along the chest wall (0 = straight back, pi = front) where the bony rib ends. */
const END_ANGLE = [2.45, 2.6, 2.7, 2.72, 2.72, 2.7, 2.62, 2.45, 2.3, 2.15, 1.75, 1.3, 0.9];
const RIB_R = [5.5, 4.8, 4.6, 4.6, 4.6, 4.6, 4.6, 4.5, 4.5, 4.3, 4, 3.6, 3.2];

export function cageFactor(n: number): number {
  return CAGE[Math.min(CAGE.length, Math.max(1, n)) - 1];
}

export interface RibCage {
  ribs: Rib[];
  /** Costal cartilage (hyaline cartilage, calcified in patches with age). */
  cartilage: Capsule[];
  calcified: Capsule[];
}

/** Tip of the transverse process on side s (the process end farthest out to that side). */
function transverseTip(v: Vertebra, s: number): Vec3 {
  let best: Vec3 = v.processes[0].b;
  for (const c of v.processes) if (s * c.b[0] > s * best[0]) best = c.b;
  return best;
}

/**
 * Ribs of every rib-bearing body of `spine` (numbered from the first: T1 = 1) and their cartilages.
 * `calcifiedShare`: fraction of cartilage segments that are calcified.
 */
export function buildRibCage(person: Person, spine: Vertebra[], st: Sternum, rng: Rng, calcifiedShare: number): RibCage {
  const ribs: Rib[] = [];
  const cartilage: Capsule[] = [];
  const calcified: Capsule[] = [];
  const ends = new Map<string, Vec3[]>();
  let n = 0;
  for (const v of spine) {
    if (!v.hasRibs) continue;
    n++;
    const r = RIB_R[n - 1];
    for (const s of [-1, 1] as const) {
      // Head on the posterolateral costal facet, overlapping the cortex (the joint); ribs 2-9 at the upper margin.
      const wHead = n >= 2 && n <= 9 ? v.heightPost / 2 - 0.6 * r : 0.15 * v.heightPost;
      const head = toBody(v, [s * (0.89 * v.halfWidth + 0.7 * r), 0.45 * v.halfDepth, wHead]);
      const tp = transverseTip(v, s);
      // Tubercle against the front of the transverse process tip (costotransverse joint; none for 11-12).
      const tubercle = toBody(v, [tp[0] + s * 2, tp[1] - (n <= 10 ? 4.5 + r : 0), tp[2] - 2]);
      const t = person.torsoAt(tubercle[2]);
      const f = cageFactor(n);
      const aR = (t.a - t.skin - t.fat * 0.9 - t.muscleWall - 3) * f;
      const bR = ((t.bAnt + t.bPost) / 2 - t.fat - t.muscleWall - 3) * (0.85 + 0.15 * f);
      const sin0 = Math.min(0.95, (Math.abs(tubercle[0] - v.c[0]) + 14) / aR);
      const th0 = Math.asin(sin0);
      const yc = tubercle[1] + 10 - bR * Math.cos(th0);
      const end = END_ANGLE[n - 1];
      const drop = DROP[n - 1];
      const steps = Math.max(4, Math.ceil(((end - th0) * (aR + bR)) / 2 / 8));
      const points: Vec3[] = [head, tubercle];
      for (let q = 0; q <= steps; q++) {
        const fq = q / steps;
        const th = th0 + (end - th0) * fq;
        points.push([v.c[0] + s * aR * Math.sin(th), yc + bR * Math.cos(th), tubercle[2] - drop * Math.pow(fq, 1.15)]);
      }
      ribs.push({ level: v.level, side: s, radius: r, points });
      const tip = points[points.length - 1];
      let path: Vec3[] = [];
      if (n <= 7) {
        const to = sternalAttachment(st, n, s);
        const mid: Vec3 = [(tip[0] + to[0]) / 2, Math.min(tip[1], to[1]) - 3, (tip[2] + to[2]) / 2 + (n >= 5 ? 6 : 0)];
        path = [tip, mid, to];
      } else if (n <= 10) {
        const above = ends.get(`${n - 1}/${s}`);
        if (above) {
          const to = above[Math.max(0, Math.floor(above.length * 0.45))];
          const mid: Vec3 = [(tip[0] + to[0]) / 2 + s * 6, (tip[1] + to[1]) / 2 - 4, (tip[2] + to[2]) / 2];
          path = [tip, mid, to];
        }
      }
      if (path.length) {
        const pts = densify(path, 6);
        ends.set(`${n}/${s}`, pts);
        for (const c of chain(pts, n === 1 ? 6 : 5)) (rng.uniform() < calcifiedShare ? calcified : cartilage).push(c);
      }
    }
  }
  return { ribs, cartilage, calcified };
}

/** Polyline with points at most `stepMm` apart. */
function densify(pts: Vec3[], stepMm: number): Vec3[] {
  const out: Vec3[] = [pts[0]];
  for (let i = 0; i + 1 < pts.length; i++) {
    const a = pts[i];
    const b = pts[i + 1];
    const k = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]) / stepMm));
    for (let q = 1; q <= k; q++) out.push([a[0] + ((b[0] - a[0]) * q) / k, a[1] + ((b[1] - a[1]) * q) / k, a[2] + ((b[2] - a[2]) * q) / k]);
  }
  return out;
}
