import type { Vec3 } from '../../../imaging/volume.js';
import type { Capsule, Vertebra } from '../anatomy.js';
import { toBody } from '../frame.js';
import type { Palette } from '../palette.js';
import type { Rng } from '../random.js';
import type { HardSpec } from './spec.js';

/**
 * What the hard preset does inside bodies: metastases (blastic: +200-700 mg/cm3 equivalent; lytic: soft
 * tissue), subchondral sclerosis under degenerated discs (+250-450 mg/cm3 in a 2-5 mm band, Modic-type
 * sclerosis on CT) and vertebroplasty cement (PMMA with barium, ~1500-3000 HU) in a few confluent blobs,
 * sometimes leaking into the disc or a paravertebral vein.
 */
export interface CementLeak {
  caps: Capsule[];
  hu: number;
}

interface Blob {
  c: Vec3;
  r: Vec3;
}

function hardOf(v: Vertebra): NonNullable<Vertebra['hard']> {
  v.hard ??= { concavityTopMm: 0, concavityBottomMm: 0, trabecular: null };
  return v.hard;
}

/** Chains a trabecular modifier after any already installed. */
function addTrabecular(v: Vertebra, f: (u: number, vv: number, w: number, tr: number, dTop: number, dBot: number) => number): void {
  const h = hardOf(v);
  const prev = h.trabecular;
  h.trabecular = prev ? (u, vv, w, tr, dTop, dBot) => f(u, vv, w, prev(u, vv, w, tr, dTop, dBot), dTop, dBot) : f;
}

export function installBodyChanges(spine: Vertebra[], spec: HardSpec, pal: Palette, rng: Rng): CementLeak[] {
  const at = (level: string): Vertebra | undefined => spine.find((v) => v.level === level);
  for (const l of spec.lesions) {
    const v = at(l.level);
    if (!v) continue;
    const r = l.radiusFraction * Math.min(v.halfWidth, v.halfDepth);
    const c: Vec3 = [rng.range(-0.35, 0.35) * v.halfWidth, rng.range(-0.45, 0.2) * v.halfDepth, rng.range(-0.2, 0.2) * v.heightPost];
    v.lesion = l.kind === 'blastic' ? { kind: 'blastic', c, r, vbmdEquivalent: v.vbmd + l.excess, softTissue: false } : { kind: 'lytic', c, r, vbmdEquivalent: 0, softTissue: true };
  }
  for (const d of spec.degeneration) {
    if (d.sclerosisMm <= 0) continue;
    const i = spine.findIndex((v) => v.level === d.upper);
    if (i < 0 || i + 1 >= spine.length) continue;
    const extra = pal.trabSlope * rng.range(250, 450);
    const mm = d.sclerosisMm;
    addTrabecular(spine[i], (_u, _v, _w, tr, _dTop, dBot) => (dBot < mm ? tr + extra * (1 - Math.max(0, dBot) / mm) : tr));
    addTrabecular(spine[i + 1], (_u, _v, _w, tr, dTop) => (dTop < mm ? tr + extra * (1 - Math.max(0, dTop) / mm) : tr));
  }
  const leaks: CementLeak[] = [];
  for (const cm of spec.cement) {
    const v = at(cm.level);
    if (!v) continue;
    const blobs = cementBlobs(v, cm.fillFraction, rng);
    const hu = cm.hu;
    addTrabecular(v, (u, vv, w, tr) => {
      let best = Infinity;
      for (const b of blobs) best = Math.min(best, Math.hypot((u - b.c[0]) / b.r[0], (vv - b.c[1]) / b.r[1], (w - b.c[2]) / b.r[2]) - 1);
      // ~1 mm ramp at the blob surface (interdigitation of cement with trabeculae).
      const k = best <= -0.15 ? 1 : best >= 0 ? 0 : -best / 0.15;
      return tr + k * (hu - tr);
    });
    if (cm.leak === 'disc') {
      const s = rng.chance(0.5) ? 1 : -1;
      const p = toBody(v, [rng.range(-0.3, 0.3) * v.halfWidth, rng.range(-0.6, 0) * v.halfDepth, (s * v.heightPost) / 2 + s * 2]);
      const q = toBody(v, [rng.range(-0.3, 0.3) * v.halfWidth, rng.range(-0.6, 0.2) * v.halfDepth, (s * v.heightPost) / 2 + s * 2.5]);
      leaks.push({ caps: [{ a: p, b: q, r: 2.5 }], hu });
    } else if (cm.leak === 'vein') {
      const s = rng.chance(0.5) ? 1 : -1;
      const p = toBody(v, [s * 0.6 * v.halfWidth, -0.6 * v.halfDepth, 0]);
      const q = toBody(v, [s * (v.halfWidth + rng.range(8, 20)), -v.halfDepth - rng.range(0, 10), rng.range(-8, 8)]);
      leaks.push({ caps: [{ a: p, b: q, r: 1.8 }], hu });
    }
  }
  return leaks;
}

/** Two to four overlapping ellipsoids inside the body whose volumes add to about fillFraction of it. */
function cementBlobs(v: Vertebra, fill: number, rng: Rng): Blob[] {
  const n = 2 + Math.floor(rng.uniform() * 3);
  const bodyVol = Math.PI * v.halfWidth * v.halfDepth * v.heightPost;
  const each = (fill * bodyVol) / n;
  const out: Blob[] = [];
  for (let i = 0; i < n; i++) {
    const shape: Vec3 = [rng.range(0.8, 1.3), rng.range(0.7, 1.1), rng.range(0.6, 1)];
    const k = Math.cbrt(each / ((4 / 3) * Math.PI * shape[0] * shape[1] * shape[2]));
    const r: Vec3 = [
      Math.min(0.7 * v.halfWidth, k * shape[0]),
      Math.min(0.7 * v.halfDepth, k * shape[1]),
      Math.min(0.45 * v.heightPost, k * shape[2]),
    ];
    out.push({ c: [rng.range(-0.35, 0.35) * v.halfWidth, rng.range(-0.4, 0.15) * v.halfDepth, rng.range(-0.15, 0.15) * v.heightPost], r });
  }
  return out;
}
