import type { VertebraLevel } from '../../bmd/report.js';
import type { Vertebra } from './anatomy.js';
import { toLocalInto } from './frame.js';
import { ellipseSdf } from './sdf.js';
import type { Phantom } from './types.js';

/**
 * Truth body mask of a generated phantom: whether an LPS point lies inside the vertebral body of `level`, by the
 * same analytic shape the renderer paints (elliptic outline with its posterior notch, wedge heights, endplate
 * concavities), so a measured centre can be tested against the body itself, not only against its centre.
 * Needs the in-memory anatomy (generatePhantom keeps it; truth.json alone does not carry it).
 */
export function bodyContainsPoint(phantom: Phantom, level: VertebraLevel, pointMm: readonly number[]): boolean {
  const a = phantom.anatomy;
  if (!a) throw new Error('bodyContainsPoint needs a phantom generated in this process (its anatomy is not in truth.json).');
  const spine = a.spine ?? a.person.vertebrae;
  const v = spine.find((q) => q.level === level);
  if (!v) return false;
  const p = a.placement;
  const dx = pointMm[0]! - p.tx;
  const dy = pointMm[1]! - p.ty;
  const c = Math.cos(p.rotationRad);
  const s = Math.sin(p.rotationRad);
  return insideBody(v, c * dx + s * dy, -s * dx + c * dy, pointMm[2]! - p.tz);
}

/** Body-frame point inside vertebra v's body. */
export function insideBody(v: Vertebra, bx: number, by: number, bz: number): boolean {
  const l = toLocalInto(v, bx, by, bz, new Float64Array(3));
  const [u, vv, w] = l;
  const hw = v.halfWidth;
  const hd = v.halfDepth;
  const rn = v.notchRadius;
  if (Math.max(ellipseSdf(u, vv, hw, hd), rn - Math.sqrt(u * u + (vv - (hd + 0.55 * rn)) ** 2)) > 0) return false;
  const fAP = Math.min(1, Math.max(0, (vv + hd) / (2 * hd)));
  let top = -v.heightPost / 2 + v.heightAnt + (v.heightPost - v.heightAnt) * fAP;
  let bottom = -v.heightPost / 2;
  const rim = 1 - (u / hw) ** 2 - (vv / hd) ** 2;
  if (v.hard && rim > 0) {
    top -= v.hard.concavityTopMm * rim;
    bottom += v.hard.concavityBottomMm * rim;
  }
  return w <= top && w >= bottom;
}
