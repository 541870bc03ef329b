import type { Vec3 } from '../../imaging/volume.js';
import type { Vertebra } from '../phantom/anatomy.js';
import type { Phantom } from '../phantom/types.js';
import { ellipseSdf } from '../phantom/sdf.js';
import { toLocalInto } from '../phantom/render.js';
import { CONTRACT_GEOMETRY, patchVoxelCentreMm, type PatchGeometry } from '../../model/patch.js';
import type { VertebraLevel } from '../../bmd/report.js';

/**
 * Training truth for the ROI head: "trabecular bone to measure" on the patch grid, from the phantom's analytic
 * anatomy (src/research/phantom/render.ts `body`), never from the rendered image. A voxel is in when its centre lies in
 * the trabecular interior of the level's body with margins that keep the blurred edges of denser or darker
 * structures out of the mean:
 *  - in-plane: CORTEX_MARGIN_MM inside the cortex's inner surface (PSF sigma 0.45-0.65 mm plus the patch's
 *    1.5 mm voxel: a 2 mm margin leaves < ~2 % of the cortex step, DESIGN.md "eroded >= 2-3 mm");
 *  - axially: beyond the subchondral condensation zone (render.ts condenses 3 mm under each endplate) plus
 *    ENDPLATE_MARGIN_MM for slice thickness up to 3 mm;
 *  - not within LESION_MARGIN_MM of a lesion sphere, not within VEIN_MARGIN_MM of the basivertebral vein.
 * Mean density over this mask equals the truth vBMD up to texture (zero-mean), contrast and cupping.
 */
export const CORTEX_MARGIN_MM = 2.0;
export const CONDENSATION_MM = 3.0;
export const ENDPLATE_MARGIN_MM = 2.0;
export const LESION_MARGIN_MM = 2.5;
export const VEIN_MARGIN_MM = 1.5;

/** Patient LPS point -> phantom body frame (inverse of generate.ts `toWorld`). */
function worldToBodyInto(p: Vec3, rot: number, tx: number, ty: number, tz: number, out: Vec3): void {
  const x = p[0] - tx;
  const y = p[1] - ty;
  const c = Math.cos(rot);
  const s = Math.sin(rot);
  out[0] = c * x + s * y;
  out[1] = -s * x + c * y;
  out[2] = p[2] - tz;
}

/** Signed "depth" of a vertebra-local point into the measurable trabecular interior (<= 0 inside). */
export function trabecularInteriorDistanceMm(v: Vertebra, u: number, vv: number, w: number): number {
  const hw = v.halfWidth;
  const hd = v.halfDepth;
  const rn = v.notchRadius;
  // Same outline as render.ts body(): ellipse minus the posterior notch; wedge-shaped height (fractures).
  const dxy = Math.max(ellipseSdf(u, vv, hw, hd), rn - Math.sqrt(u * u + (vv - (hd + 0.55 * rn)) ** 2));
  const bot = -v.heightPost / 2;
  const fAP = Math.min(1, Math.max(0, (vv + hd) / (2 * hd)));
  const top = bot + v.heightAnt + (v.heightPost - v.heightAnt) * fAP;
  const dzt = Math.max(w - top, bot - w);
  let d = Math.max(dxy + v.cortexMm + CORTEX_MARGIN_MM, dzt + v.endplateMm + CONDENSATION_MM + ENDPLATE_MARGIN_MM);
  const vein = v.vein;
  const dv = Math.max(Math.abs(u) - vein.halfU, vein.v0 - vv, Math.abs(w) - vein.halfW);
  d = Math.max(d, VEIN_MARGIN_MM - dv);
  if (v.lesion) {
    const l = v.lesion;
    const dl = Math.sqrt((u - l.c[0]) ** 2 + (vv - l.c[1]) ** 2 + (w - l.c[2]) ** 2) - l.r;
    d = Math.max(d, LESION_MARGIN_MM - dl);
  }
  return d;
}

/**
 * 0/1 mask (Uint8Array, d*V*V + h*V + w) of the measurable trabecular interior of `level` on the patch centred on
 * `centreMm`. Needs `phantom.anatomy` (generatePhantom sets it).
 */
export function trabecularTruthMask(phantom: Phantom, level: VertebraLevel, centreMm: Vec3, g: PatchGeometry = CONTRACT_GEOMETRY): Uint8Array {
  const a = phantom.anatomy;
  if (!a) throw new Error('The phantom carries no anatomy (generatePhantom sets it); cannot compute the truth mask.');
  const v = a.person.vertebrae.find((x) => x.level === level);
  if (!v) throw new Error(`Level ${level} is not modelled in this phantom.`);
  const n = g.voxels;
  const out = new Uint8Array(n * n * n);
  const { rotationRad, tx, ty, tz } = a.placement;
  const b: Vec3 = [0, 0, 0];
  const local = new Float64Array(3);
  let q = 0;
  for (let d = 0; d < n; d++) {
    for (let h = 0; h < n; h++) {
      for (let w = 0; w < n; w++, q++) {
        worldToBodyInto(patchVoxelCentreMm(centreMm, d, h, w, g), rotationRad, tx, ty, tz, b);
        toLocalInto(v, b[0], b[1], b[2], local);
        out[q] = trabecularInteriorDistanceMm(v, local[0], local[1], local[2]) <= 0 ? 1 : 0;
      }
    }
  }
  return out;
}

/** ACR category index in contract CLASS_ORDER (normal, osteopenia, osteoporosis): < 80, 80-120, > 120 mg/cm3. */
export function classIndexForVbmd(vbmdMgCm3: number): 0 | 1 | 2 {
  return vbmdMgCm3 < 80 ? 2 : vbmdMgCm3 <= 120 ? 1 : 0;
}
