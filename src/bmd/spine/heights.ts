import type { StraightSpine } from './straighten.js';

/**
 * Anterior, middle and posterior body heights (mm), as in Genant's semiquantitative method (Genant et al.,
 * J Bone Miner Res 1993): the distance between the cranial and caudal endplates along lines through the
 * anterior, middle and posterior parts of the body. Measured on the straightened spine, along the column's
 * own axis, so a tilted body is not foreshortened by axial slices. Each end is the centre of the endplate-
 * disc-endplate complex on that line, so a height here includes half of each adjacent disc (~4-10 mm in all):
 * a loss of height reads ~20% smaller than Genant's endplate-to-endplate loss, which keeps the fracture
 * screen on the side of not calling one (a 25% wedge reads ~20%).
 */
export interface BodyHeightsMm {
  anterior: number;
  middle: number;
  posterior: number;
}

export function measureHeightsMm(
  st: StraightSpine,
  sFrom: number,
  sTo: number,
  uCenterMm: number,
  vCenterMm: number,
  depthMm: number,
): BodyHeightsMm | null {
  if (!Number.isFinite(depthMm)) return null;
  const len = sTo - sFrom;
  // Half the distance to the middle each way: an endplate depressed by a grade-3 fracture (40%) stays inside.
  const search = Math.max(2, Math.round(0.25 * len));
  const column = (uOffsetMm: number): number => {
    const uc = Math.round((uCenterMm + uOffsetMm - st.uMinMm) / st.stepMm);
    const vc = Math.round((vCenterMm - st.vMinMm) / st.stepMm);
    if (uc < 1 || uc >= st.nu - 1 || vc < 3 || vc >= st.nv - 3) return NaN;
    // A 3 x 7 mm column (u x v), smoothed over 3 mm along s: one line of voxels is too noisy at 1 mm.
    const q = new Float32Array(st.ns).fill(NaN);
    for (let s = 0; s < st.ns; s++) {
      let sum = 0;
      let c = 0;
      for (let du = -1; du <= 1; du++) {
        for (let dv = -3; dv <= 3; dv++) {
          const h = st.hu[vc + dv + st.nv * (uc + du + st.nu * s)];
          if (Number.isNaN(h)) continue;
          sum += Math.max(-100, Math.min(800, h));
          c++;
        }
      }
      if (c > 0) q[s] = sum / c;
    }
    const sm = new Float32Array(st.ns).fill(NaN);
    for (let s = 1; s + 1 < st.ns; s++) sm[s] = (q[s - 1] + q[s] + q[s + 1]) / 3;
    // Each end of the body on this line: the centre of the bright endplate-disc-endplate complex near the
    // level's disc (the centroid of what stands above the line's own interior level). Resolved endplates
    // (a thick lumbar disc) and a merged band (a thin thoracic disc) both centre on the disc; a depressed
    // endplate pulls it towards the body's middle.
    const interior = medianOf(sm, sFrom + 0.3 * len, sTo - 0.3 * len);
    if (!Number.isFinite(interior)) return NaN;
    const centroid = (c: number): number => {
      let m = 0;
      let ms = 0;
      for (let s = Math.max(0, Math.round(c - search)); s <= Math.min(st.ns - 1, Math.round(c + search)); s++) {
        const w = sm[s] - interior;
        if (!(w > 0)) continue;
        // Weighted by excess squared: the plates, not the cancellous texture just above the interior level.
        m += w * w;
        ms += w * w * s;
      }
      return m > 0 ? ms / m : NaN;
    };
    const lo = centroid(sFrom);
    const hi = centroid(sTo);
    return Number.isFinite(lo) && Number.isFinite(hi) && hi > lo ? (hi - lo) * st.stepMm : NaN;
  };
  // Anterior and posterior lines 35% of the depth from the centre: inside the cortex, clear of the
  // rounded rims (osteophytes, ring apophyses).
  const anterior = column(-0.35 * depthMm);
  const middle = column(0);
  const posterior = column(0.35 * depthMm);
  if (![anterior, middle, posterior].every(Number.isFinite)) return null;
  const r1 = (v: number): number => Math.round(v * 10) / 10;
  return { anterior: r1(anterior), middle: r1(middle), posterior: r1(posterior) };
}

function medianOf(a: Float32Array, from: number, to: number): number {
  const v: number[] = [];
  for (let s = Math.max(0, Math.round(from)); s <= Math.min(a.length - 1, Math.round(to)); s++) if (Number.isFinite(a[s])) v.push(a[s]);
  v.sort((x, y) => x - y);
  return v.length ? v[v.length >> 1] : NaN;
}
