import type { Vertebra } from '../anatomy.js';
import { L, toLocalInto } from '../frame.js';
import { coverage, ellipseSdf } from '../sdf.js';
import type { BoneHu, PaintContext } from './paint.js';
import type { DiscDegeneration } from './spec.js';

/** Intradiscal gas of the vacuum phenomenon reads near air (-600 to -950 HU before partial volume). */
const VACUUM_HU = -900;
/** Annular calcification: dense, patchy, a few hundred HU. */
const DISC_CALCIFICATION_HU = 450;

const L2 = new Float64Array(3);

/**
 * The disc between two bodies whatever their tilt: everything below the upper body's inferior endplate and above
 * the lower body's superior endplate, inside the mean of their outlines (the annulus bulging 1 mm, more when
 * degenerated); bodies painted afterwards cover the overlap. Degeneration adds a gas cleft, annular
 * calcification, marginal osteophytes at both rims and, for a bridging pair, an anterior bony bridge.
 */
export function paintDisc(ctx: PaintContext, z: number, buf: Float32Array, up: Vertebra, lo: Vertebra, deg: DiscDegeneration | undefined, osteo: BoneHu): void {
  const hw = (up.halfWidth + lo.halfWidth) / 2;
  const hd = (up.halfDepth + lo.halfDepth) / 2;
  const rn = (up.notchRadius + lo.notchRadius) / 2;
  const bulge = deg ? 2.5 : 1;
  const oMm = deg?.osteophyteMm ?? 0;
  const upBot = -up.heightPost / 2 + (up.hard?.concavityBottomMm ?? 0) + 0.5;
  const cx = (up.c[0] + lo.c[0]) / 2;
  const cy = (up.c[1] + lo.c[1]) / 2;
  const gap = up.c[2] - up.heightPost / 2 - (lo.c[2] + lo.heightAnt / 2);
  const zr = Math.max(hw * Math.abs(up.eu[2]) + hd * Math.abs(up.ev[2]), hw * Math.abs(lo.eu[2]) + hd * Math.abs(lo.ev[2])) + oMm + 4;
  const zMid = (up.c[2] - up.heightPost / 2 + lo.c[2] + lo.heightAnt / 2) / 2;
  if (Math.abs(z - zMid) > zr + Math.abs(gap) / 2 + 2) return;
  const px = ctx.px;
  const p = ctx.pal;
  const reach = hw + bulge + oMm + 3;
  ctx.box(cx - reach - zr, cx + reach + zr, cy - hd - bulge - oMm - zr - 3, cy + hd + bulge + oMm + zr + 3, (idx, bx, by) => {
    const a = toLocalInto(up, bx, by, z, L);
    const b = toLocalInto(lo, bx, by, z, L2);
    const u = (a[0] + b[0]) / 2;
    const v = (a[1] + b[1]) / 2;
    const fAP = Math.min(1, Math.max(0, (b[1] + lo.halfDepth) / (2 * lo.halfDepth)));
    const loTop = -lo.heightPost / 2 + lo.heightAnt + (lo.heightPost - lo.heightAnt) * fAP - (lo.hard?.concavityTopMm ?? 0) - 0.5;
    const dz = Math.max(a[2] - upBot, loTop - b[2]);
    const dOutline = Math.max(ellipseSdf(u, v, hw, hd), rn - Math.sqrt(u * u + (v - (hd + 0.55 * rn)) ** 2));
    const dxy = dOutline - bulge;
    const d = Math.max(dxy, dz);
    let val = p.disc;
    let c = coverage(d, px);
    if (deg && c > 0) {
      if (deg.vacuum) {
        const g = Math.hypot(u / (0.45 * hw), v / (0.35 * hd)) - 1;
        const cg = coverage(Math.max(g * 0.4 * hd, dz + 1.2), px);
        val += cg * (VACUUM_HU - val);
      }
      if (deg.calcified && dOutline > -4 && v < 0.2 * hd) val += coverage(-dOutline - 1, px) * (DISC_CALCIFICATION_HU - val) * 0.8;
    }
    if (deg && oMm > 0) {
      // Osteophytes: bony lips at the anterior and lateral rims of both endplates, reaching oMm beyond the outline.
      const lipUp = Math.max(dOutline - oMm * lipShape(v, hd), Math.abs(a[2] - (-up.heightPost / 2 - 0.3 * oMm)) - 0.45 * oMm - 1);
      const lipLo = Math.max(dOutline - oMm * lipShape(v, hd), Math.abs(b[2] - (loTop + 0.3 * oMm)) - 0.45 * oMm - 1);
      let lip = Math.min(lipUp, lipLo);
      if (deg.bridging) lip = Math.min(lip, Math.max(dOutline - oMm, -dOutline - 1, v + 0.45 * hd, dz - 1));
      const cl = coverage(lip, px);
      if (cl > c) {
        val = ctx.boneAt(lip, osteo);
        c = cl;
      }
    }
    if (c > 0) buf[idx] += c * (val - buf[idx]);
  });
}

/** Osteophytes grow anteriorly and laterally, not into the canal: full reach in front, none behind the mid-body. */
function lipShape(v: number, hd: number): number {
  return Math.min(1, Math.max(0, 0.5 - v / hd));
}
