import type { SpineSegment } from './segments.js';
import type { StraightSpine } from './straighten.js';

/**
 * The sacral alae: at the level of the S1 body, bone runs without a break from the body through the alae
 * (the sacrum is ~100-110 mm wide at its base: Gray's Anatomy) and often on through the sacroiliac joints
 * into the iliac bones. A lumbar body is 40-55 mm wide. L5's transverse processes span ~90-100 mm but arise
 * behind the body (at the pedicles), while the alae leave the S1 body at its own depth: so the band searched
 * stays at the body's depth, where beside a lumbar body lies the psoas, and a lumbar level spans ~50 mm;
 * 90 mm leaves room for a narrow sacrum (~95 mm).
 * Gaps of up to 4 mm are bridged (the sacroiliac joint, ~2-4 mm), not more: an enhanced kidney beyond
 * perirenal fat must not join the bone.
 */
export const SACRAL_WIDTH_MIN_MM = 90;
const BAND_U_MM: [number, number] = [-8, 12];

/**
 * Typical (70th percentile) left-right span (mm) of bone (box-mean maximum > 150 HU, gaps <= 4 mm bridged) through the band BAND_U_MM around
 * the body centre (u = uCenterMm), over samples [sFrom, sTo]. NaN when the band leaves the scan.
 */
export function lateralBoneSpanMm(st: StraightSpine, sFrom: number, sTo: number, uCenterMm: number): number {
  const spans: number[] = [];
  const v0 = Math.round(-st.vMinMm / st.stepMm);
  const u0 = Math.max(0, Math.round((uCenterMm + BAND_U_MM[0] - st.uMinMm) / st.stepMm));
  const u1 = Math.min(st.nu - 1, Math.round((uCenterMm + BAND_U_MM[1] - st.uMinMm) / st.stepMm));
  const maxGap = Math.max(1, Math.round(4 / st.stepMm));
  for (let s = Math.max(0, Math.round(sFrom)); s <= Math.min(st.ns - 1, Math.round(sTo)); s++) {
    // The band's maximum of 3 x 3 x 3 mm box means: at 1 mm with CT noise (SD 20-50 HU) the maximum of ~20
    // single soft-tissue samples passes any bone threshold, a box mean's (SD / 5) does not; a cortex of bone
    // still does.
    const at = (ss: number, u: number, v: number): number => st.hu[v + st.nv * (u + st.nu * ss)];
    const colLevel = (v: number): number => {
      if (v < 1 || v >= st.nv - 1 || s < 1 || s >= st.ns - 1) return NaN;
      let m = -Infinity;
      for (let u = Math.max(1, u0); u <= Math.min(st.nu - 2, u1); u++) {
        let sum = 0;
        for (let ds = -1; ds <= 1; ds++) for (let du = -1; du <= 1; du++) for (let dv = -1; dv <= 1; dv++) sum += at(s + ds, u + du, v + dv);
        if (sum / 27 > m) m = sum / 27;
      }
      return m;
    };
    const extent = (dir: 1 | -1): number => {
      let v = v0;
      let last = v0;
      let gap = 0;
      while (gap <= maxGap) {
        v += dir;
        // Bone still running at the edge of the straightened band: at least this wide.
        if (v < 1 || v >= st.nv - 1) break;
        const h = colLevel(v);
        if (Number.isNaN(h)) return NaN;
        if (h > 150) {
          gap = 0;
          last = v;
        } else gap++;
      }
      return Math.abs(last - v0) * st.stepMm;
    };
    const l = extent(1);
    const r = extent(-1);
    if (Number.isFinite(l) && Number.isFinite(r)) spans.push(l + r);
  }
  // The alae need not span the whole window (they flare over the S1 body's upper part): the 70th percentile.
  spans.sort((a, b) => a - b);
  return spans.length ? spans[Math.floor(0.7 * (spans.length - 1))] : NaN;
}

/**
 * How many of the caudal-most pieces may be sacral or coccygeal: S1-S5 and two coccygeal pieces. Four was too
 * few: AMOS 0336 cropped from L3 down through the pelvis split its sacrum and coccyx into four pieces below S1,
 * and S1, unread, was named L5 (every lumbar level one off, at 0.72).
 */
const SACRAL_PIECES_MAX = 7;
/** The sacrum and coccyx of most scans end within the four lowest pieces. */
const SACRAL_PIECES_USUAL = 4;

/**
 * The sacrum: the most cranial of the caudal-most pieces whose cranial part spreads into alae (S1 under the
 * lumbosacral disc; the sacrum's fused segments can leave faint disc remnants that split it into pieces).
 * Index of that piece, or -1; every piece below it is sacral too. ribPair: per piece, a rib traced on each side.
 */
export function sacralPieces(st: StraightSpine, segments: SpineSegment[], uCenterMm: Float32Array, ribPair: boolean[]): number {
  let top = -1;
  for (let k = 0; k < Math.min(SACRAL_PIECES_MAX, segments.length - 1); k++) {
    // Past the four lowest pieces, a sacrum split that far has its lumbar column above it: a rib pair on the
    // piece or on any of the four above says it is thoracic, whose rib heads span as wide at the body's depth as
    // alae (hard phantom 22031: T12 read as S1 once seven pieces were searched, and T12-L4 went unnamed). Not
    // below that: an iliac wing beside S1 can trace as a rib pair (default phantom 1019).
    if (k >= SACRAL_PIECES_USUAL && ribPair.slice(k, k + 5).some(Boolean)) continue;
    const sg = segments[k];
    if (sg.sTo - sg.sFrom < 12) continue;
    // The piece between its end plates (the S1 segment reaches ~30-40 mm below the lumbosacral disc).
    const a = Math.max(sg.sFrom + 3, sg.sTo - 35) / st.stepMm;
    const b = (sg.sTo - 3) / st.stepMm;
    const u = uCenterMm[Math.max(0, Math.min(st.ns - 1, Math.round((a + b) / 2)))];
    if (lateralBoneSpanMm(st, a, b, u) >= SACRAL_WIDTH_MIN_MM) top = k;
  }
  return top;
}
