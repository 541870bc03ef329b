import type { StraightSpine } from './straighten.js';

/**
 * The sacral alae: at the level of the S1 body, bone runs without a break from the body through the alae
 * and the sacroiliac joints into the iliac bones: 140 mm and more from side to side (the sacrum alone is
 * ~100-110 mm wide at its base: Gray's Anatomy). A lumbar body is 40-55 mm wide and even L5's transverse
 * processes span ~90-100 mm, ending in soft tissue (the iliolumbar ligament) short of the ilium. The alae
 * sit level with or behind the S1 body's centre, so the band searched runs from just in front of the body
 * centre to 25 mm behind it.
 */
export const SACRAL_WIDTH_MIN_MM = 120;
const BAND_U_MM: [number, number] = [-5, 25];

/**
 * Median left-right span (mm) of bone (> 150 HU, gaps <= 6 mm bridged) through the band BAND_U_MM around
 * the body centre (u = uCenterMm), over samples [sFrom, sTo]. NaN when the band leaves the scan.
 */
export function lateralBoneSpanMm(st: StraightSpine, sFrom: number, sTo: number, uCenterMm: number): number {
  const spans: number[] = [];
  const v0 = Math.round(-st.vMinMm / st.stepMm);
  const u0 = Math.max(0, Math.round((uCenterMm + BAND_U_MM[0] - st.uMinMm) / st.stepMm));
  const u1 = Math.min(st.nu - 1, Math.round((uCenterMm + BAND_U_MM[1] - st.uMinMm) / st.stepMm));
  const maxGap = Math.max(1, Math.round(6 / st.stepMm));
  for (let s = Math.max(0, Math.round(sFrom)); s <= Math.min(st.ns - 1, Math.round(sTo)); s++) {
    const colMax = (v: number): number => {
      let m = -Infinity;
      for (let u = u0; u <= u1; u++) {
        const h = st.hu[v + st.nv * (u + st.nu * s)];
        if (h > m) m = h;
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
        if (v < 0 || v >= st.nv) break;
        const h = colMax(v);
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
  spans.sort((a, b) => a - b);
  return spans.length ? spans[spans.length >> 1] : NaN;
}
