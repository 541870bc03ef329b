import { straightAt, type StraightSpine } from './straighten.js';

/**
 * Whether lung lies beside a level of the straightened spine: what tells a thoracic level from C7 when the
 * ribs are not seen. Below the apices the lungs fill the paravertebral gutters on both sides of the bodies;
 * beside C7 lie the neck's muscles, and the apices reach only the neck of the first rib, at T1 (Gray's
 * Anatomy, the pleura and lungs). Measured on the real scans, as the air share of the region below:
 * C7 0.00 (Philips chest CT), T1 0.03-0.14, T2-T10 0.72-0.97 (Philips, AMOS 0336).
 */

/** The region read: beside the body (mm from the centre line) ... */
const LATERAL_MM: [number, number] = [25, 70];
/** ... from in front of the body's centre to just behind it (mm along AP, posterior positive) ... */
const AP_MM: [number, number] = [-30, 10];
/** ... over the middle third of the level, where neither disc's partial volume reaches. */
const MIDDLE_SHARE = 1 / 3;
/** Air in lung at CT (-900 to -700 HU), partial-volumed against vessels: below this. */
const AIR_HU = -500;
/** Lung beside the level when air fills over half the region; real C7 reads 0.00, real T2 and below 0.72 or more. */
const LUNG_SHARE = 0.5;
/** Too little of the region in view to say (a field cut at the side, a piece at the scan's edge). */
const MIN_IN_VIEW_SHARE = 0.5;
const SIDES = [1, -1] as const;

/** Lung beside the level between sFromMm and sToMm (mm along s); undefined when too little is in view. */
export function lungBeside(st: StraightSpine, sFromMm: number, sToMm: number): boolean | undefined {
  const third = (sToMm - sFromMm) * MIDDLE_SHARE;
  const s0 = Math.round((sFromMm + third) / st.stepMm);
  const s1 = Math.round((sToMm - third) / st.stepMm);
  let air = 0;
  let inView = 0;
  let total = 0;
  for (let s = s0; s <= s1; s++) {
    for (let uMm = AP_MM[0]; uMm <= AP_MM[1]; uMm += st.stepMm) {
      for (let mm = LATERAL_MM[0]; mm <= LATERAL_MM[1]; mm += st.stepMm) {
        for (const side of SIDES) {
          total++;
          const h = straightAt(st, s, uMm, side * mm);
          if (Number.isNaN(h)) continue;
          inView++;
          if (h < AIR_HU) air++;
        }
      }
    }
  }
  if (total === 0 || inView < MIN_IN_VIEW_SHARE * total) return undefined;
  return air > LUNG_SHARE * inView;
}
