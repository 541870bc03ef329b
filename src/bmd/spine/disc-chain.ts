import { median } from '../median.js';

/**
 * Choosing the intervertebral discs along the straightened spine: one regular chain of disc positions.
 *
 * Vertebral spacing (body + disc) changes slowly along the column: from ~17 mm at C7/T1 to ~38 mm at L3,
 * a few % per level (Panjabi et al., Spine 1991 and 1992). So the local spacing is first read off the profile
 * itself (its autocorrelation: periodic with the vertebral spacing whether discs read dark or bright), and the
 * chain is then the set of valley-score maxima that best balances score against departures from that spacing.
 * A fracture (a body up to ~40% lower, Genant grade 3) or a transitional level bends the spacing locally,
 * so departures are penalised, not forbidden, within bounds.
 */

/** The profile minus its running mean over ~40 mm (about one lumbar spacing), so slow changes do not dominate. */
function detrended(profile: Float32Array, stepMm: number): Float64Array {
  const n = profile.length;
  const x = new Float64Array(n);
  const half = Math.round(20 / stepMm);
  for (let i = 0; i < n; i++) {
    let s = 0;
    let c = 0;
    for (let j = Math.max(0, i - half); j <= Math.min(n - 1, i + half); j++) if (!Number.isNaN(profile[j])) {
      s += profile[j];
      c++;
    }
    x[i] = Number.isNaN(profile[i]) || c === 0 ? NaN : profile[i] - s / c;
  }
  return x;
}

/**
 * Local vertebral spacing (mm, per sample), NaN where the profile is too short or not periodic. Where the
 * body depth is known, lags outside 0.55-1.5x the depth are not considered: spacing runs ~0.8-1.3x the
 * body's AP depth from T1 to L5 (Panjabi et al.), and a multiple of the true period (two levels, when every
 * other disc is faint) would otherwise win in places.
 */
export function localSpacingMm(profile: Float32Array, stepMm: number, depthMm?: Float32Array, minMm = 12, maxMm = 55, windowMm = 120): Float32Array {
  const n = profile.length;
  const x = detrended(profile, stepMm);
  const out = new Float32Array(n).fill(NaN);
  const hw = Math.round(windowMm / 2 / stepMm);
  const stride = Math.max(1, Math.round(5 / stepMm));
  // Per window: the correlation peaks (lag mm, r) worth considering.
  const windows: { c: number; peaks: { lag: number; r: number }[] }[] = [];
  for (let c = 0; c < n; c += stride) {
    const d = depthMm?.[c];
    const lo = Number.isFinite(d) ? Math.max(minMm, 0.55 * (d as number)) : minMm;
    const hi = Number.isFinite(d) ? Math.min(maxMm, 1.5 * (d as number)) : maxMm;
    const lagMin = Math.round(lo / stepMm);
    const lagMax = Math.round(hi / stepMm);
    if (lagMax - lagMin < 2) continue;
    const a = Math.max(0, c - hw);
    const b = Math.min(n, c + hw);
    const r: number[] = [];
    for (let lag = lagMin - 1; lag <= lagMax + 1; lag++) r.push(correlationAtLag(x, a, b, lag));
    let best = -Infinity;
    for (const v of r) if (Number.isFinite(v) && v > best) best = v;
    if (!(best > 0.2)) continue;
    const peaks: { lag: number; r: number }[] = [];
    for (let i = 1; i + 1 < r.length; i++) {
      if (r[i] >= r[i - 1] && r[i] >= r[i + 1] && r[i] >= 0.4 * best) peaks.push({ lag: (lagMin - 1 + i) * stepMm, r: r[i] });
    }
    if (peaks.length) windows.push({ c, peaks });
  }
  if (windows.length === 0) return out;
  // First guess per window: the first peak reaching 75% of its best (the fundamental, not a multiple).
  const guess = windows.map((w) => {
    const top = Math.max(...w.peaks.map((p) => p.r));
    return w.peaks.find((p) => p.r >= 0.75 * top)!.lag;
  });
  // Spacing changes slowly along the column: a robust line through the guesses, then per window the peak
  // nearest that line (within 30%), so one window's harmonic does not bend the spacing.
  const fit = theilSen(windows.map((w) => w.c), guess);
  const centres: number[] = [];
  const values: number[] = [];
  windows.forEach((w, i) => {
    const f = fit ? fit.intercept + fit.slope * w.c : guess[i];
    let pick = NaN;
    let bestD = 0.3 * f;
    for (const p of w.peaks) {
      const dd = Math.abs(p.lag - f);
      if (dd <= bestD) {
        bestD = dd;
        pick = p.lag;
      }
    }
    if (Number.isFinite(pick)) {
      centres.push(w.c);
      values.push(pick);
    }
  });
  if (centres.length === 0) return out;
  // Piecewise-linear between the window centres; ends held.
  let k = 0;
  for (let i = 0; i < n; i++) {
    while (k + 1 < centres.length && centres[k + 1] <= i) k++;
    if (i <= centres[0]) out[i] = values[0];
    else if (k + 1 >= centres.length) out[i] = values[values.length - 1];
    else out[i] = values[k] + ((values[k + 1] - values[k]) * (i - centres[k])) / (centres[k + 1] - centres[k]);
    // Held ends and interpolation can carry a spacing where the body is much smaller: at the top of a chest CT
    // (C7-T2, 14-18 mm apart) the 25 mm of the mid-thoracic levels, so a 14 mm C7-T1 gap fell outside the
    // chain's bounds and T1 merged with C7. Spacing stays within 1.3x the local depth.
    const d = depthMm?.[i];
    if (d !== undefined && Number.isFinite(d)) out[i] = Math.min(out[i], MAX_SPACING_PER_DEPTH * d);
  }
  return out;
}

/** The spacing (mm) at a position along the column (mm), from a per-sample spacing; ends held. */
export function spacingAtMm(spacingMm: Float32Array, stepMm: number): (sMm: number) => number {
  return (sMm) => spacingMm[Math.max(0, Math.min(spacingMm.length - 1, Math.round(sMm / stepMm)))];
}

/** Spacing runs ~0.8-1.3x the body's AP depth from T1 to L5 (Panjabi et al.). */
const MAX_SPACING_PER_DEPTH = 1.3;

/** Theil-Sen line (median of pairwise slopes), or null with fewer than 3 points. */
export function theilSen(xs: number[], ys: number[]): { slope: number; intercept: number } | null {
  if (xs.length < 3) return null;
  const step = Math.max(1, Math.floor(xs.length / 80));
  const slopes: number[] = [];
  for (let i = 0; i < xs.length; i += step) for (let j = i + 1; j < xs.length; j += step) if (xs[j] !== xs[i]) slopes.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
  if (slopes.length === 0) return null;
  const slope = median(slopes);
  return { slope, intercept: median(ys.map((y, i) => y - slope * xs[i])) };
}

function correlationAtLag(x: Float64Array, a: number, b: number, lag: number): number {
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  let n = 0;
  for (let i = a; i + lag < b; i++) {
    const p = x[i];
    const q = x[i + lag];
    if (Number.isNaN(p) || Number.isNaN(q)) continue;
    sx += p;
    sy += q;
    sxx += p * p;
    syy += q * q;
    sxy += p * q;
    n++;
  }
  // At least ~1.5 periods of overlap, or the estimate is noise.
  if (n < 1.5 * lag) return NaN;
  const cov = sxy / n - (sx / n) * (sy / n);
  const vx = sxx / n - (sx / n) ** 2;
  const vy = syy / n - (sy / n) ** 2;
  return vx > 0 && vy > 0 ? cov / Math.sqrt(vx * vy) : NaN;
}

export interface DiscChainOptions {
  /** Expected spacing per sample (mm); NaN where unknown (then the anatomical range alone bounds gaps). */
  spacingMm: Float32Array;
  stepMm: number;
}

/** Absolute bounds of disc-to-disc spacing: C2/C3 ~13 mm up to L4/L5 ~42 mm, with slack for tilt and fractures. */
export const MIN_DISC_SPACING_MM = 11;
export const MAX_DISC_SPACING_MM = 52;
/** Gaps relative to the local spacing: 0.6x (a grade-3 wedge fracture) to 1.45x. */
const GAP_LO = 0.6;
const GAP_HI = 1.45;
/**
 * A gap of about two or three spacings is allowed at a price (one level whose disc is not visible: fused,
 * cement-filled, degenerated to nothing), so one hidden disc does not cut the chain in two and drop half the
 * column; the gap is split and flagged afterwards (segments.ts).
 */
const MAX_LEVELS_PER_GAP = 3;
const HIDDEN_DISC_COST = 1.0;
/** Weight of squared log departures from the local spacing and between consecutive gaps. */
const SPACING_WEIGHT = 4;
const RATIO_WEIGHT = 6;

/**
 * Disc positions (sample indices, ascending) from valley scores (>= 0). Scores are normalised by the
 * typical strong score, so the chain prefers real discs and takes a weak maximum only where the spacing
 * demands one; a maximum under 15% of typical is noise and costs more than it brings.
 */
export function chooseDiscChain(score: Float32Array, opts: DiscChainOptions): number[] {
  const n = score.length;
  const cand: number[] = [];
  for (let s = 1; s + 1 < n; s++) if (score[s] > 0 && score[s] >= score[s - 1] && score[s] > score[s + 1]) cand.push(s);
  if (cand.length === 0) return [];
  const sortedScores = cand.map((c) => score[c]).sort((a, b) => b - a);
  const typical = sortedScores[Math.min(sortedScores.length - 1, Math.floor(sortedScores.length * 0.2))] || 1;
  const reward = cand.map((c) => Math.min(1.5, score[c] / typical) - 0.15);
  const m = cand.length;
  const expectAt = (a: number, b: number): number => {
    const e = opts.spacingMm[Math.round((a + b) / 2)];
    return Number.isFinite(e) ? e : NaN;
  };
  // Levels spanned by a gap (1 normally; 2-3 when discs are hidden) and its cost.
  const levelsIn = (a: number, b: number): number => {
    const e = expectAt(a, b);
    const gMm = (b - a) * opts.stepMm;
    if (!Number.isFinite(e)) return 1;
    return Math.max(1, Math.min(MAX_LEVELS_PER_GAP, Math.round(gMm / e)));
  };
  const gapCost = (a: number, b: number): number => {
    const levels = levelsIn(a, b);
    const gMm = ((b - a) * opts.stepMm) / levels;
    if (gMm < MIN_DISC_SPACING_MM || gMm > MAX_DISC_SPACING_MM) return Infinity;
    const e = expectAt(a, b);
    if (!Number.isFinite(e)) return levels > 1 ? Infinity : 0;
    const r = gMm / e;
    if (r < GAP_LO || r > GAP_HI) return Infinity;
    return SPACING_WEIGHT * Math.log(r) ** 2 + HIDDEN_DISC_COST * (levels - 1);
  };
  // best[j][i]: best total of a chain ending ... cand[i], cand[j] (i < j); best[j][j]: chain of cand[j] alone.
  const best: Float64Array[] = [];
  const back: Int32Array[] = [];
  for (let j = 0; j < m; j++) {
    const b = new Float64Array(j + 1).fill(-Infinity);
    const bk = new Int32Array(j + 1).fill(-1);
    b[j] = reward[j];
    for (let i = 0; i < j; i++) {
      const gc = gapCost(cand[i], cand[j]);
      if (gc === Infinity) continue;
      const g = (cand[j] - cand[i]) / levelsIn(cand[i], cand[j]);
      let v = best[i][i];
      let arg = i;
      for (let k = 0; k < i; k++) {
        const prev = best[i][k];
        if (prev === -Infinity) continue;
        const g0 = (cand[i] - cand[k]) / levelsIn(cand[k], cand[i]);
        const t = prev - RATIO_WEIGHT * Math.log(g / g0) ** 2;
        if (t > v) {
          v = t;
          arg = k;
        }
      }
      b[i] = v + reward[j] - gc;
      bk[i] = arg;
    }
    best.push(b);
    back.push(bk);
  }
  let bj = 0;
  let bi = 0;
  let bv = -Infinity;
  for (let j = 0; j < m; j++) for (let i = 0; i <= j; i++) if (best[j][i] > bv) {
    bv = best[j][i];
    bj = j;
    bi = i;
  }
  const seq: number[] = [cand[bj]];
  let j = bj;
  let i = bi;
  while (i !== j) {
    seq.push(cand[i]);
    const k = back[j][i];
    j = i;
    i = k;
  }
  return seq.reverse();
}
