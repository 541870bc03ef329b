import type { SpineTrack } from './find-spine.js';
import type { WorkingGrid } from './working-grid.js';

/**
 * Splitting the body column into levels at the discs. In each slice the whole body cross-section (ellipse
 * reaching the cortex) is averaged: a vertebral body slice holds its cortical ring and, near the ends, the
 * endplates; a disc slice holds neither (~80-110 HU). A disc therefore shows as a valley between two bright
 * endplate bands a few mm apart; the body interior is a much wider, shallower valley. Valleys are scored
 * and one regular sequence is chosen (consecutive disc spacings change by at most ~30%, as vertebral
 * heights do along the spine: Panjabi et al., Spine 1991/1992 morphometry).
 */
export interface LevelSegment {
  /** Working-grid slice range of the body, inclusive, from disc to disc (or to the column end). */
  zFrom: number;
  zTo: number;
  /** Whether the cranial / caudal boundary is a detected disc (false = the column or scan ends there). */
  cranialDisc: boolean;
  caudalDisc: boolean;
}

/** Cross-section mean HU (clamped) per slice over the body ellipse; NaN outside the track. */
export function bodyCrossSectionProfile(g: WorkingGrid, t: SpineTrack, rInner = 0.6, rOuter = 1): Float32Array {
  const [nx, ny, nz] = g.dims;
  const q = new Float32Array(nz).fill(NaN);
  for (let z = t.zFirst; z <= t.zLast && z >= 0; z++) {
    const cx = t.bodyX[z];
    const cy = t.bodyY[z];
    const ax = Math.max(1, (0.5 * rOuter * t.bodyWidthMm[z]) / g.spacingMm[0]);
    const ay = Math.max(1, (0.5 * rOuter * t.bodyDepthMm[z]) / g.spacingMm[1]);
    const inner2 = (rInner / rOuter) ** 2;
    let s = 0;
    let c = 0;
    for (let y = Math.max(0, Math.floor(cy - ay)); y <= Math.min(ny - 1, Math.ceil(cy + ay)); y++) {
      for (let x = Math.max(0, Math.floor(cx - ax)); x <= Math.min(nx - 1, Math.ceil(cx + ax)); x++) {
        const r2 = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2;
        if (r2 > 1 || r2 < inner2) continue;
        // Clamp so one dense osteophyte or contrast-filled vessel edge cannot dominate the slice mean.
        s += Math.max(-100, Math.min(600, g.hu[x + nx * (y + ny * z)]));
        c++;
      }
    }
    if (c > 0) q[z] = s / c;
  }
  return q;
}

/** Valley score: how much darker slice z is than the brighter band on BOTH sides (3-9 mm away). */
export function discValleyScore(q: Float32Array, spacingZMm: number): Float32Array {
  const out = new Float32Array(q.length).fill(0);
  const near = Math.max(1, Math.round(3 / spacingZMm));
  const far = Math.max(near, Math.round(9 / spacingZMm));
  for (let z = 0; z < q.length; z++) {
    if (!Number.isFinite(q[z])) continue;
    let lo = -Infinity;
    let hi = -Infinity;
    for (let d = near; d <= far; d++) {
      if (z - d >= 0 && Number.isFinite(q[z - d])) lo = Math.max(lo, q[z - d]);
      if (z + d < q.length && Number.isFinite(q[z + d])) hi = Math.max(hi, q[z + d]);
    }
    if (lo === -Infinity || hi === -Infinity) continue;
    out[z] = Math.max(0, Math.min(lo, hi) - q[z]);
  }
  return out;
}

/** Minimum valley depth (HU) for a disc candidate: noise-level dips are not discs. */
const MIN_DISC_SCORE_HU = 15;
/** Disc-to-disc spacing along z: C7/T1 ~17 mm up to L3/L4 ~40 mm (vertebral height + disc), with slack for tilt. */
const MIN_SPACING_MM = 15;
const MAX_SPACING_MM = 50;
/**
 * Vertebral height scales with body size: disc-to-disc spacing is ~0.8-1.1x the body's AP depth from T4 to
 * L5 (Panjabi morphometry), so spacings under 0.6x the depth are body-interior valleys, not discs.
 */
export function minDiscSpacingMm(medianBodyDepthMm: number): number {
  return Number.isFinite(medianBodyDepthMm) ? Math.max(MIN_SPACING_MM, 0.6 * medianBodyDepthMm) : MIN_SPACING_MM;
}

/** Per-slice floor: 0.7x the body depth measured within +-30 mm (depth grows ~50% from T4 to L3). */
export function localMinDiscSpacingMm(depthMm: Float32Array, spacingZMm: number): Float32Array {
  const half = Math.max(1, Math.round(30 / spacingZMm));
  const out = new Float32Array(depthMm.length).fill(NaN);
  for (let z = 0; z < depthMm.length; z++) {
    const w: number[] = [];
    for (let t = Math.max(0, z - half); t <= Math.min(depthMm.length - 1, z + half); t++) if (Number.isFinite(depthMm[t])) w.push(depthMm[t]);
    if (w.length === 0) continue;
    w.sort((a, b) => a - b);
    out[z] = Math.max(MIN_SPACING_MM, 0.7 * w[w.length >> 1]);
  }
  return out;
}

/** Consecutive spacings differ by at most this ratio. */
const MAX_SPACING_RATIO = 1.35;

export function chooseDiscs(
  score: Float32Array,
  zFirst: number,
  zLast: number,
  spacingZMm: number,
  minSpacingMm: number | Float32Array = MIN_SPACING_MM,
): number[] {
  // Candidates: local maxima of the valley score.
  const cand: number[] = [];
  for (let z = zFirst; z <= zLast; z++) {
    const s = score[z];
    if (s < MIN_DISC_SCORE_HU) continue;
    if (z > zFirst && score[z - 1] > s) continue;
    if (z < zLast && score[z + 1] >= s) continue;
    cand.push(z);
  }
  const n = cand.length;
  if (n === 0) return [];
  const floorAt = (z: number): number => {
    const v = typeof minSpacingMm === 'number' ? minSpacingMm : minSpacingMm[z];
    return Math.max(MIN_SPACING_MM, Number.isFinite(v) ? v : MIN_SPACING_MM) / spacingZMm;
  };
  const maxGap = MAX_SPACING_MM / spacingZMm;
  // best[j][i]: best total ending with discs ... i, j (i < j, or i = -1 for j first); second-order for regularity.
  const best: Float64Array[] = [];
  const back: Int32Array[] = [];
  for (let j = 0; j < n; j++) {
    const b = new Float64Array(j + 1).fill(-Infinity);
    const bk = new Int32Array(j + 1).fill(-2);
    b[j] = score[cand[j]]; // index j stands for "no predecessor"
    for (let i = 0; i < j; i++) {
      const gap = cand[j] - cand[i];
      if (gap < (floorAt(cand[i]) + floorAt(cand[j])) / 2 || gap > maxGap) continue;
      // Predecessor of i: k (k<i) or none (index i in best[i]).
      let v = best[i][i];
      let arg = i;
      for (let k = 0; k < i; k++) {
        const prev = best[i][k];
        if (prev === -Infinity) continue;
        const g0 = cand[i] - cand[k];
        const ratio = gap > g0 ? gap / g0 : g0 / gap;
        if (ratio > MAX_SPACING_RATIO) continue;
        if (prev > v) {
          v = prev;
          arg = k;
        }
      }
      b[i] = v + score[cand[j]];
      bk[i] = arg;
    }
    best.push(b);
    back.push(bk);
  }
  let bj = 0;
  let bi = 0;
  let bv = -Infinity;
  for (let j = 0; j < n; j++) for (let i = 0; i <= j; i++) if (best[j][i] > bv) {
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
  seq.reverse();
  // An interior disc is held in place by regular spacing on both sides, so a faint one is believable; a disc
  // at either end of the chain has one neighbour only. When the column's real end disc lies at the scan edge
  // (no bright band beyond it to score a valley), the chain otherwise ends on a faint dip inside the last
  // body and splits it. End discs far fainter than the chain's typical disc are therefore dropped.
  const sorted = seq.map((z) => score[z]).sort((a, b) => a - b);
  const typical = sorted[sorted.length >> 1];
  while (seq.length > 2 && score[seq[0]] < END_DISC_MIN_FRACTION * typical) seq.shift();
  while (seq.length > 2 && score[seq[seq.length - 1]] < END_DISC_MIN_FRACTION * typical) seq.pop();
  return seq;
}

/** An end-of-chain disc must score at least this fraction of the chain's median disc valley. */
const END_DISC_MIN_FRACTION = 0.25;

/** Segments between consecutive discs, plus the partial ends from the column ends to the first/last disc. */
export function segmentsFromDiscs(discs: number[], zFirst: number, zLast: number, spacingZMm: number): LevelSegment[] {
  const out: LevelSegment[] = [];
  const minEndMm = 9;
  if (discs.length === 0) return out;
  // z runs superior: the piece under the first disc has that disc at its cranial end and the column end
  // (scan edge or sacrum) at its caudal end; the piece over the last disc the reverse.
  if ((discs[0] - zFirst) * spacingZMm >= minEndMm) out.push({ zFrom: zFirst, zTo: discs[0] - 1, cranialDisc: true, caudalDisc: false });
  for (let d = 0; d + 1 < discs.length; d++) out.push({ zFrom: discs[d] + 1, zTo: discs[d + 1] - 1, cranialDisc: true, caudalDisc: true });
  const last = discs[discs.length - 1];
  if ((zLast - last) * spacingZMm >= minEndMm) out.push({ zFrom: last + 1, zTo: zLast, cranialDisc: false, caudalDisc: true });
  return out;
}

/**
 * The slices of a segment that hold its own body, for the body's centre and height. Between two discs the
 * column centre normally moves little (a few mm of lordosis per level); where a disc is strongly tilted
 * (L5/S1 over a steep sacral slope), the axial slices at the segment's end show the neighbouring body set
 * well behind (S1 lies dorsal to L5's lower half), and the disc valley is found at the dorsal, lower end of
 * the tilted disc. End slices whose body centre lies more than 30% of the body depth off the centre of the
 * segment's middle third are therefore not this body: counting them drags the centre of L5 towards the
 * sacrum (several mm low and dorsal on real CT). At least the middle third is always kept.
 */
export function ownBodySlices(t: SpineTrack, seg: LevelSegment, spacingYMm: number): { zFrom: number; zTo: number } {
  const len = seg.zTo - seg.zFrom + 1;
  const third = Math.max(1, Math.floor(len / 3));
  const midA = seg.zFrom + third;
  const midB = Math.max(midA, seg.zTo - third);
  const ys: number[] = [];
  const depths: number[] = [];
  for (let z = midA; z <= midB; z++) {
    if (Number.isFinite(t.bodyY[z])) ys.push(t.bodyY[z]);
    if (Number.isFinite(t.bodyDepthMm[z])) depths.push(t.bodyDepthMm[z]);
  }
  if (ys.length === 0 || depths.length === 0) return { zFrom: seg.zFrom, zTo: seg.zTo };
  ys.sort((a, b) => a - b);
  depths.sort((a, b) => a - b);
  const yMid = ys[ys.length >> 1];
  const maxOffVox = (0.3 * depths[depths.length >> 1]) / spacingYMm;
  const own = (z: number): boolean => Number.isFinite(t.bodyY[z]) && Math.abs(t.bodyY[z] - yMid) <= maxOffVox;
  let zFrom = seg.zFrom;
  while (zFrom < midA && !own(zFrom)) zFrom++;
  let zTo = seg.zTo;
  while (zTo > midB && !own(zTo)) zTo--;
  return { zFrom, zTo };
}

/**
 * The discs of the column, as working-grid slice indices (ascending). Where the source slices are thinner
 * than the working grid's (1-1.5 mm studies pooled to ~3 mm), the disc profile is taken at the source slice
 * spacing: an upper thoracic disc is 4-5 mm thick, so once pooled to 3 mm with its two endplates it reads as
 * one bright band, and in osteoporotic bone (trabecular HU below disc HU) the body interiors become the
 * deepest valleys; the regular-spacing search then splits every level half a body off. At 1.5 mm the disc
 * shows as its own valley between the endplates. The column track is interpolated to the finer slices.
 */
export function findDiscs(g: WorkingGrid, t: SpineTrack): number[] {
  const fz = g.factor[2];
  const sz = g.spacingMm[2];
  if (fz === 1 || t.zFirst < 0) {
    const score = discValleyScore(bodyCrossSectionProfile(g, t), sz);
    return chooseDiscs(score, t.zFirst, t.zLast, sz, localMinDiscSpacingMm(t.bodyDepthMm, sz));
  }
  const nzF = g.dims[2] * fz;
  const szF = sz / fz;
  const toWorking = (u: number): number => (u - (fz - 1) / 2) / fz;
  const interp = (a: Float32Array, u: number): number => {
    const w = Math.min(t.zLast, Math.max(t.zFirst, toWorking(u)));
    const z0 = Math.floor(w);
    const z1 = Math.min(t.zLast, z0 + 1);
    const f = w - z0;
    return a[z0] * (1 - f) + a[z1] * f;
  };
  const zFirst = t.zFirst * fz;
  const zLast = Math.min(nzF - 1, t.zLast * fz + fz - 1);
  const depthMm = new Float32Array(nzF).fill(NaN);
  for (let u = zFirst; u <= zLast; u++) depthMm[u] = interp(t.bodyDepthMm, u);
  const q = fineCrossSectionProfile(g, t, zFirst, zLast, interp);
  const score = discValleyScore(q, szF);
  const discsFine = chooseDiscs(score, zFirst, zLast, szF, localMinDiscSpacingMm(depthMm, szF));
  const out: number[] = [];
  for (const u of discsFine) {
    const z = Math.min(t.zLast, Math.max(t.zFirst, Math.round(toWorking(u))));
    if (out.length === 0 || z > out[out.length - 1]) out.push(z);
  }
  return out;
}

/**
 * bodyCrossSectionProfile at the source slice spacing: the same ring (0.6-1 of the body ellipse) on the
 * working grid's in-plane cells, each cell the mean of its source pixels in one source slice. Reads only the
 * ring's voxels (not a second pooled copy of the volume).
 */
function fineCrossSectionProfile(
  g: WorkingGrid,
  t: SpineTrack,
  uFirst: number,
  uLast: number,
  interp: (a: Float32Array, u: number) => number,
  rInner = 0.6,
): Float32Array {
  const src = g.source;
  const [fx, fy, fz] = g.factor;
  const q = new Float32Array(g.dims[2] * fz).fill(NaN);
  const strides = [1, src.dims[0], src.dims[0] * src.dims[1]];
  // Source memory offset of canonical fine position i along canonical axis a (flips folded in).
  const offsetOf = (a: number, i: number): number => {
    const s = g.sourceAxis[a];
    return (g.sourceSign[a] > 0 ? i : src.dims[s] - 1 - i) * strides[s];
  };
  const inv = 1 / (fx * fy);
  const inner2 = rInner * rInner;
  for (let u = uFirst; u <= uLast; u++) {
    const cx = interp(t.bodyX, u);
    const cy = interp(t.bodyY, u);
    const ax = Math.max(1, (0.5 * interp(t.bodyWidthMm, u)) / g.spacingMm[0]);
    const ay = Math.max(1, (0.5 * interp(t.bodyDepthMm, u)) / g.spacingMm[1]);
    if (!Number.isFinite(cx + cy + ax + ay)) continue;
    const oz = offsetOf(2, u);
    let sum = 0;
    let n = 0;
    for (let y = Math.max(0, Math.floor(cy - ay)); y <= Math.min(g.dims[1] - 1, Math.ceil(cy + ay)); y++) {
      for (let x = Math.max(0, Math.floor(cx - ax)); x <= Math.min(g.dims[0] - 1, Math.ceil(cx + ax)); x++) {
        const r2 = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2;
        if (r2 > 1 || r2 < inner2) continue;
        let cell = 0;
        for (let ty = 0; ty < fy; ty++) {
          const oy = oz + offsetOf(1, y * fy + ty);
          for (let tx = 0; tx < fx; tx++) cell += src.hu[oy + offsetOf(0, x * fx + tx)];
        }
        // Same clamp as bodyCrossSectionProfile: one osteophyte or vessel edge cannot dominate the slice.
        sum += Math.max(-100, Math.min(600, cell * inv));
        n++;
      }
    }
    if (n > 0) q[u] = sum / n;
  }
  return q;
}

/**
 * Whether an open end segment (no disc on one side) holds too little of a body to be named: under 60% of
 * the neighbouring whole level it is an endplate and part of a disc (or noise split off a body) at the scan
 * edge. Such a stub may still show the sacrum's ala (the L5 anchor), so it is only dropped after that test.
 */
export function isEndStub(seg: LevelSegment, neighbour: LevelSegment | undefined): boolean {
  if (seg.cranialDisc && seg.caudalDisc) return false;
  if (!neighbour || !neighbour.cranialDisc || !neighbour.caudalDisc) return false;
  return seg.zTo - seg.zFrom + 1 < 0.6 * (neighbour.zTo - neighbour.zFrom + 1);
}
