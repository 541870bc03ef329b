import type { StraightSpine } from './straighten.js';

/**
 * Per-mm profiles along the straightened spine that show where the intervertebral discs are.
 *
 * Along the body centre line a disc is a thin band (3-6 mm thoracic, 8-12 mm lumbar; Panjabi et al., Spine
 * 1991/1992) of annulus/nucleus (~70-110 HU) between two bright endplates, and a body is a longer run of
 * cancellous bone. Whether the cancellous bone is brighter than the disc depends on the patient (250 HU young,
 * under 80 HU osteoporotic), so neither "dark band" nor "bright band" is a disc on its own. What every disc
 * has is the symmetric bright-dark-bright triple at a few mm: both endplates brighter than the disc between
 * them. A body interior has the same triple only at half a body height, which is longer than the reach used
 * here, so its score stays low.
 */

/** Mean of clipped HU over a core box around the centre line per s; NaN where most of the box is outside the scan. */
export function coreProfile(st: StraightSpine, uHalfMm: number, vHalfMm: number, uCenterMm = 0): Float32Array {
  const out = new Float32Array(st.ns).fill(NaN);
  const u0 = Math.max(0, Math.round((uCenterMm - uHalfMm - st.uMinMm) / st.stepMm));
  const u1 = Math.min(st.nu - 1, Math.round((uCenterMm + uHalfMm - st.uMinMm) / st.stepMm));
  const v0 = Math.max(0, Math.round((-vHalfMm - st.vMinMm) / st.stepMm));
  const v1 = Math.min(st.nv - 1, Math.round((vHalfMm - st.vMinMm) / st.stepMm));
  const total = (u1 - u0 + 1) * (v1 - v0 + 1);
  for (let s = 0; s < st.ns; s++) {
    let sum = 0;
    let n = 0;
    for (let u = u0; u <= u1; u++) {
      let o = v0 + st.nv * (u + st.nu * s);
      for (let v = v0; v <= v1; v++, o++) {
        const h = st.hu[o];
        if (Number.isNaN(h)) continue;
        // Clipped so a vertebroplasty cement plug, a pedicle screw or contrast in an adjacent vessel cannot
        // dominate the slice mean.
        sum += Math.max(-100, Math.min(600, h));
        n++;
      }
    }
    if (n >= 0.5 * total) out[s] = sum / n;
  }
  return out;
}

export function smoothProfile(p: Float32Array, sigmaSamples: number): Float32Array {
  const n = p.length;
  const out = new Float32Array(n).fill(NaN);
  const r = Math.max(1, Math.ceil(3 * sigmaSamples));
  const w: number[] = [];
  for (let k = -r; k <= r; k++) w.push(Math.exp(-0.5 * (k / sigmaSamples) ** 2));
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(p[i])) continue;
    let s = 0;
    let ws = 0;
    for (let k = -r; k <= r; k++) {
      const j = i + k;
      if (j < 0 || j >= n || Number.isNaN(p[j])) continue;
      s += w[k + r] * p[j];
      ws += w[k + r];
    }
    out[i] = s / ws;
  }
  return out;
}

/** Mean of clipped HU inside an ellipse (semi-axes per s, mm) around the body centre line; NaN where mostly outside. */
export function ellipseProfile(st: StraightSpine, semiApMm: Float32Array, semiLrMm: Float32Array, uCenterMm: Float32Array, vCenterMm: Float32Array): Float32Array {
  const out = new Float32Array(st.ns).fill(NaN);
  for (let s = 0; s < st.ns; s++) {
    const a = semiApMm[s];
    const b = semiLrMm[s];
    if (!(a > 0 && b > 0)) continue;
    const u0 = Math.max(0, Math.floor((uCenterMm[s] - a - st.uMinMm) / st.stepMm));
    const u1 = Math.min(st.nu - 1, Math.ceil((uCenterMm[s] + a - st.uMinMm) / st.stepMm));
    const v0 = Math.max(0, Math.floor((vCenterMm[s] - b - st.vMinMm) / st.stepMm));
    const v1 = Math.min(st.nv - 1, Math.ceil((vCenterMm[s] + b - st.vMinMm) / st.stepMm));
    let sum = 0;
    let n = 0;
    let total = 0;
    for (let u = u0; u <= u1; u++) {
      const du = (st.uMinMm + u * st.stepMm - uCenterMm[s]) / a;
      for (let v = v0; v <= v1; v++) {
        const dv = (st.vMinMm + v * st.stepMm - vCenterMm[s]) / b;
        if (du * du + dv * dv > 1) continue;
        total++;
        const h = st.hu[v + st.nv * (u + st.nu * s)];
        if (Number.isNaN(h)) continue;
        sum += Math.max(-100, Math.min(600, h));
        n++;
      }
    }
    if (total > 0 && n >= 0.5 * total) out[s] = sum / n;
  }
  return out;
}

/**
 * White top-hat with a window of `widthSamples[s]` (profile minus its morphological opening): keeps what is
 * bright and narrower than the window (endplates, the endplate-disc-endplate complex) and removes the
 * level of the body interior, whatever the patient's cancellous density. NaN stays NaN.
 */
export function whiteTopHat(p: Float32Array, widthSamples: Float32Array): Float32Array {
  const n = p.length;
  const half = (s: number): number => Math.max(1, Math.round((Number.isFinite(widthSamples[s]) ? widthSamples[s] : 12) / 2));
  const ero = new Float32Array(n).fill(NaN);
  for (let s = 0; s < n; s++) {
    if (Number.isNaN(p[s])) continue;
    let m = Infinity;
    const h = half(s);
    for (let j = Math.max(0, s - h); j <= Math.min(n - 1, s + h); j++) if (!Number.isNaN(p[j]) && p[j] < m) m = p[j];
    ero[s] = m;
  }
  const out = new Float32Array(n).fill(NaN);
  for (let s = 0; s < n; s++) {
    if (Number.isNaN(p[s])) continue;
    let m = -Infinity;
    const h = half(s);
    for (let j = Math.max(0, s - h); j <= Math.min(n - 1, s + h); j++) if (!Number.isNaN(ero[j]) && ero[j] > m) m = ero[j];
    out[s] = m === -Infinity ? 0 : Math.max(0, p[s] - m);
  }
  return out;
}

/**
 * Disc-complex score: max over reach a in [0, aMax[s]] of min(t[s-a], t[s+a]) on the top-hat t. High where
 * bright bone lies on BOTH sides within a few mm: on a disc whose two endplates are resolved (a = half the
 * disc) and on one too thin to resolve (a = 0, the merged bright band). Inside a body, one side is cancellous
 * bone (top-hat ~0) at any reach shorter than half a body, so the score stays low there.
 */
export function discComplexScore(t: Float32Array, aMax: Float32Array): Float32Array {
  const n = t.length;
  const out = new Float32Array(n);
  for (let s = 0; s < n; s++) {
    if (Number.isNaN(t[s])) continue;
    const top = Math.max(0, Math.round(Number.isFinite(aMax[s]) ? aMax[s] : 5));
    let best = 0;
    for (let a = 0; a <= top; a++) {
      if (s - a < 0 || s + a >= n) break;
      const l = t[s - a];
      const r = t[s + a];
      if (Number.isNaN(l) || Number.isNaN(r)) break;
      const v = Math.min(l, r);
      if (v > best) best = v;
    }
    out[s] = best;
  }
  return out;
}

/**
 * The disc centre near chain position c: the deepest valley of the profile within +-reach whose two sides
 * both rise to a bright band (top-hat >= 40% of the strongest near c) close beside it: the disc
 * between its two endplates, when they are resolved. When they are not (a thin disc at thick slices merges
 * into one bright band), c itself. The chain's pick can sit on either endplate; this moves it to the disc.
 */
export function refineDiscCentre(p: Float32Array, t: Float32Array, c: number, reach: number): number {
  const n = p.length;
  const r = Math.max(2, Math.round(reach));
  // The endplates hug their disc: each within ~0.2 spacings of its middle (half a thick lumbar disc is
  // 5-6 mm of a 38 mm spacing). A valley whose bright sides lie further out is a short body between two
  // disc complexes (C7 at 15 mm between C6-C7 and C7-T1 was taken for the C7-T1 disc, merging T1 and C7).
  const side = Math.max(3, Math.round(0.7 * r));
  let top = 0;
  for (let s = Math.max(0, c - 2 * r); s <= Math.min(n - 1, c + 2 * r); s++) if (t[s] > top) top = t[s];
  if (!(top > 0)) return c;
  let best = c;
  let bestDepth = 0;
  for (let v = Math.max(1, c - r); v <= Math.min(n - 2, c + r); v++) {
    if (!(p[v] <= p[v - 1] && p[v] <= p[v + 1])) continue;
    let left = -Infinity;
    let leftT = 0;
    for (let s = Math.max(0, v - side); s < v; s++) {
      if (p[s] > left) left = p[s];
      if (t[s] > leftT) leftT = t[s];
    }
    let right = -Infinity;
    let rightT = 0;
    for (let s = v + 1; s <= Math.min(n - 1, v + side); s++) {
      if (p[s] > right) right = p[s];
      if (t[s] > rightT) rightT = t[s];
    }
    if (leftT < 0.4 * top || rightT < 0.4 * top) continue;
    const depth = Math.min(left, right) - p[v];
    if (depth > bestDepth) {
      bestDepth = depth;
      // A flat-bottomed valley (a thick disc): its middle, wherever in it v lies.
      let b = v;
      while (b > 0 && Math.abs(p[b - 1] - p[v]) < 1) b--;
      let e = v;
      while (e + 1 < n && Math.abs(p[e + 1] - p[v]) < 1) e++;
      best = Math.round((b + e) / 2);
    }
  }
  return best;
}
