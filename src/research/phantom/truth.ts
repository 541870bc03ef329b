import type { Vec3 } from '../../imaging/volume.js';
import type { Person, Vertebra } from './anatomy.js';
import { toBody, type Placement } from './frame.js';
import type { Palette } from './palette.js';
import type { PhantomLevelTruth } from './types.js';

/** Body-frame z-extent of a vertebral body (its 8 local corners). */
export function bodyBounds(v: Vertebra): { min: Vec3; max: Vec3 } {
  const min: Vec3 = [Infinity, Infinity, Infinity];
  const max: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (const su of [-1, 1]) {
    for (const sv of [-1, 1]) {
      for (const sw of [-1, 1]) {
        const p = toBody(v, [su * v.halfWidth, sv * v.halfDepth, sw * (v.heightPost / 2)]);
        for (let a = 0; a < 3; a++) {
          min[a] = Math.min(min[a], p[a]);
          max[a] = Math.max(max[a], p[a]);
        }
      }
    }
  }
  return { min, max };
}

/** Body frame -> world (LPS) for a placement. */
export function worldOf(place: Placement): (p: Vec3) => Vec3 {
  const cos = Math.cos(place.rotationRad);
  const sin = Math.sin(place.rotationRad);
  return (p: Vec3): Vec3 => [cos * p[0] - sin * p[1] + place.tx, sin * p[0] + cos * p[1] + place.ty, p[2] + place.tz];
}

/** Truth of every vertebra that reaches into the body-frame z-range [zBot, zTop], cranial first. */
export function levelTruths(person: Person, palette: Palette, place: Placement, zBot: number, zTop: number, vertebrae: readonly Vertebra[] = person.vertebrae): PhantomLevelTruth[] {
  const toWorld = worldOf(place);
  const levels: PhantomLevelTruth[] = [];
  for (const v of vertebrae) {
    const bb = bodyBounds(v);
    if (bb.max[2] < zBot || bb.min[2] > zTop) continue;
    const wmin = toWorld(bb.min);
    const wmax = toWorld(bb.max);
    const corners = [wmin, wmax, toWorld([bb.min[0], bb.max[1], bb.min[2]]), toWorld([bb.max[0], bb.min[1], bb.max[2]])];
    const min: Vec3 = [Math.min(...corners.map((c) => c[0])), Math.min(...corners.map((c) => c[1])), wmin[2]];
    const max: Vec3 = [Math.max(...corners.map((c) => c[0])), Math.max(...corners.map((c) => c[1])), wmax[2]];
    const t = person.torsoAt(v.c[2]);
    const bq = v.c[1] > 0 ? t.bPost : t.bAnt;
    const r2 = (v.c[0] / t.a) ** 2 + (v.c[1] / bq) ** 2;
    const cupAt = r2 < 1 ? -person.cuppingHu * (1 - r2) : 0;
    const ao = person.aortaAt(v.c[2]);
    levels.push({
      level: v.level,
      vbmdMgCm3: round3(v.vbmd),
      trabecularHu: round3(palette.trabIntercept + palette.trabSlope * v.vbmd + cupAt),
      centerMm: toWorld(v.c).map(round3) as Vec3,
      heightsMm: { anterior: round3(v.heightAnt), middle: round3((v.heightAnt + v.heightPost) / 2), posterior: round3(v.heightPost) },
      halfWidthMm: round3(v.halfWidth),
      halfDepthMm: round3(v.halfDepth),
      bboxMm: { min: min.map(round3) as Vec3, max: max.map(round3) as Vec3 },
      tiltDeg: round3((v.tiltRad * 180) / Math.PI),
      hasRibs: v.hasRibs,
      fullyCovered: bb.min[2] >= zBot && bb.max[2] <= zTop,
      lesion: v.lesion
        ? {
            kind: v.lesion.kind,
            centerMm: toWorld(toBody(v, v.lesion.c)).map(round3) as Vec3,
            radiusMm: round3(v.lesion.r),
            hu: round3(v.lesion.softTissue ? palette.lyticHu : palette.trabIntercept + palette.trabSlope * v.lesion.vbmdEquivalent),
          }
        : null,
      fracture: v.fractureLoss !== null ? { heightLossFraction: round3(v.fractureLoss) } : null,
      aortaCenterMm: toWorld([ao.x, ao.y, v.c[2]]).map(round3) as Vec3,
      aortaRadiusMm: round3(ao.r),
    });
  }
  return levels;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
export function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

