import type { Vec3, Volume } from '../../imaging/volume.js';
import { PADDING_HU, patientMmToVoxel } from '../../imaging/volume.js';
import { distanceToOtherSide, outsideMask, sliceView, type SliceView } from './slice-image.js';

/**
 * Robust HU of the scan's own reference tissues near the vertebral bodies, for internal calibration:
 * air just outside the body, subcutaneous fat (the outermost fat layer, grown from under the skin),
 * paraspinal (erector spinae) muscle, and aortic blood (a round, fat-surrounded blob left-anterior of the
 * spine). Each is the median of voxels whose 3x3-smoothed value lies in the tissue's window (this keeps
 * partial-volume edges out), pooled per slice and then the median over slices.
 */
export interface TissueSample {
  medianHu: number;
  slices: number;
}

export interface TissueSamples {
  air?: TissueSample;
  fat?: TissueSample;
  muscle?: TissueSample;
  /** Unenhanced blood in the aorta. */
  blood?: TissueSample;
  /** Aorta found brighter than blood can be: iodinated contrast. */
  enhancedAorta?: TissueSample;
  notes: string[];
}

const WINDOW = {
  air: [-1200, -900],
  fat: [-190, -40],
  fatCore: [-170, -50],
  muscle: [0, 110],
  blood: [15, 95],
  enhanced: [130, 700],
} as const;

/** Up to `max` centres spread over the list (cranial to caudal). */
function spread(centers: Vec3[], max: number): Vec3[] {
  if (centers.length <= max) return centers;
  const out: Vec3[] = [];
  for (let q = 0; q < max; q++) out.push(centers[Math.round((q * (centers.length - 1)) / (max - 1))]);
  return out;
}

/**
 * Median of the first n values. `int16`: every value is an int16 integer, so a long list (air outside the body:
 * ~10^5 voxels a slice) is counted instead of sorted, with the same result.
 */
function median(xs: Float32Array | number[], n = xs.length, int16 = false): number {
  const m = n >> 1;
  if (int16 && n > 4096) {
    const [lo, hi] = middleInt16(xs, n);
    return n % 2 ? hi : (lo + hi) / 2;
  }
  const a = new Float32Array(n);
  for (let q = 0; q < n; q++) a[q] = xs[q];
  a.sort();
  return n % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

/** The (n/2 - 1)-th and (n/2)-th smallest (0-based) of n > 1 int16 values, by counting. */
function middleInt16(xs: Float32Array | number[], n: number): [number, number] {
  const counts = new Uint32Array(65536);
  for (let q = 0; q < n; q++) counts[xs[q] + 32768]++;
  const m = n >> 1;
  let lo = NaN;
  let seen = 0;
  for (let v = 0; v < 65536; v++) {
    seen += counts[v];
    if (Number.isNaN(lo) && seen > m - 1) lo = v - 32768;
    if (seen > m) return [lo, v - 32768];
  }
  throw new RangeError(`${n} values have no middle`);
}

function inWin(x: number, w: readonly [number, number]): boolean {
  return x >= w[0] && x <= w[1];
}

interface PerSlice {
  air: number[];
  fat: number[];
  muscle: number[];
  blood: number[];
  enhanced: number[];
}

/**
 * One pass over the slice: air 5-40 mm outside the skin, and the seeds of subcutaneous fat (fat window, 2-6 mm
 * under the skin). Padding (a whole 3x3 neighbourhood at the padding value) is not air; single voxels clipped at
 * the lowest CT number are noisy air and stay, or the median would be biased up.
 */
function airAndFatSeeds(s: SliceView, outside: Uint8Array, dist: Float32Array): { air: Float32Array; airCount: number; fatMask: Uint8Array; seeds: Int32Array; seedCount: number } {
  const { raw, smooth } = s;
  const air = new Float32Array(outside.length);
  let airCount = 0;
  const fatMask = new Uint8Array(outside.length);
  const seeds = new Int32Array(outside.length);
  let seedCount = 0;
  const [airLo, airHi] = WINDOW.air;
  const [fatLo, fatHi] = WINDOW.fat;
  for (let q = 0; q < outside.length; q++) {
    const d = dist[q];
    const h = smooth[q];
    if (outside[q]) {
      if (d >= 5 && d <= 40 && h > PADDING_HU + 0.5 && h >= airLo && h <= airHi) air[airCount++] = raw[q];
    } else if (d >= 2 && d <= 6 && h >= fatLo && h <= fatHi) {
      fatMask[q] = 1;
      seeds[seedCount++] = q;
    }
  }
  return { air, airCount, fatMask, seeds, seedCount };
}

/**
 * Subcutaneous fat: grows the seeds through fat-window body voxels never deeper than 60 mm; the core (>= 3 mm
 * deep, fat core window). Returns the core's values in a buffer and how many there are.
 */
function subcutaneousFat(s: SliceView, outside: Uint8Array, depth: Float32Array, fatMask: Uint8Array, stack: Int32Array, seedCount: number): { fat: Float32Array; n: number } {
  const { cols, raw, smooth } = s;
  const [fatLo, fatHi] = WINDOW.fat;
  const size = fatMask.length;
  let sp = seedCount;
  while (sp > 0) {
    const idx = stack[--sp];
    const i = idx % cols;
    // The four neighbours (left and right only within the row), written out: this runs once per slice, cold.
    for (let k = 0; k < 4; k++) {
      const n = k === 0 ? (i > 0 ? idx - 1 : -1) : k === 1 ? (i < cols - 1 ? idx + 1 : -1) : k === 2 ? idx - cols : idx + cols;
      if (n < 0 || n >= size || fatMask[n] || outside[n] || depth[n] > 60) continue;
      const h = smooth[n];
      if (h < fatLo || h > fatHi) continue;
      fatMask[n] = 1;
      stack[sp++] = n;
    }
  }
  const fat = new Float32Array(size);
  let n = 0;
  const [coreLo, coreHi] = WINDOW.fatCore;
  for (let q = 0; q < size; q++) if (fatMask[q] && depth[q] >= 3 && smooth[q] >= coreLo && smooth[q] <= coreHi) fat[n++] = raw[q];
  return { fat, n };
}

/** Samples one axial slice through a vertebral body centre. */
function sampleSlice(v: Volume, center: Vec3, acc: PerSlice): void {
  const [ci, cj, ck] = patientMmToVoxel(v, center);
  const k = Math.round(ck);
  if (k < 0 || k >= v.dims[2]) return;
  const s = sliceView(v, k);
  const { cols, rows, raw, smooth } = s;
  const { outside, bodyVoxels } = outsideMask(s);
  if (bodyVoxels < 50) return;
  // Outside the body: mm to the body (the gap); inside: mm to the skin (the depth).
  const dist = distanceToOtherSide(outside, cols, rows, s.pxMm);
  const depth = dist;

  const { air, airCount, fatMask, seeds, seedCount } = airAndFatSeeds(s, outside, dist);
  const int16 = v.hu instanceof Int16Array;
  if (airCount >= 30) acc.air.push(median(air, airCount, int16));
  const fat = subcutaneousFat(s, outside, depth, fatMask, seeds, seedCount);
  if (fat.n >= 30) acc.fat.push(median(fat.fat, fat.n, int16));

  // Region offsets in LPS mm from the centre for voxel (i, j).
  const [dix, diy] = s.di;
  const [djx, djy] = s.dj;
  const reach = Math.ceil(95 / s.pxMm);
  const i0 = Math.max(0, Math.floor(ci) - reach);
  const i1 = Math.min(cols - 1, Math.ceil(ci) + reach);
  const j0 = Math.max(0, Math.floor(cj) - reach);
  const j1 = Math.min(rows - 1, Math.ceil(cj) + reach);

  // Paraspinal muscle: erector spinae, 12-45 mm either side of the midline, 30-90 mm behind the body centre.
  // The aorta is looked for left-anterior of the spine: the region marked in `box` on the same pass.
  const muscle = new Float32Array((i1 - i0 + 1) * (j1 - j0 + 1));
  let muscleCount = 0;
  const [muscleLo, muscleHi] = WINDOW.muscle;
  const box: SearchBox = { i0, i1, j0, j1, inside: new Uint8Array((i1 - i0 + 1) * (j1 - j0 + 1)) };
  for (let j = j0; j <= j1; j++) {
    for (let i = i0; i <= i1; i++) {
      const dx = (i - ci) * dix + (j - cj) * djx;
      const dy = (i - ci) * diy + (j - cj) * djy;
      box.inside[(j - j0) * (i1 - i0 + 1) + (i - i0)] = dx >= -20 && dx <= 65 && dy >= -80 && dy <= 12 ? 1 : 0;
      const ax = Math.abs(dx);
      if (ax < 12 || ax > 45 || dy < 30 || dy > 90) continue;
      const q = j * cols + i;
      if (!outside[q] && depth[q] > 6 && smooth[q] >= muscleLo && smooth[q] <= muscleHi) muscle[muscleCount++] = raw[q];
    }
  }
  if (muscleCount >= 30) acc.muscle.push(median(muscle, muscleCount, int16));

  // Aorta: a round blob of blood (or enhanced blood) left-anterior of the spine, ringed by fat or lung.
  for (const [win, sink] of [
    [WINDOW.enhanced, acc.enhanced],
    [WINDOW.blood, acc.blood],
  ] as const) {
    const hu = findAorta(s, outside, box, win);
    if (hu !== undefined) sink.push(hu);
  }
}

/** Where the aorta is looked for: voxels i0..i1, j0..j1, and which of them lie in the region left-anterior of the spine. */
interface SearchBox {
  i0: number;
  i1: number;
  j0: number;
  j1: number;
  /** 1 inside the region, row-major over the box. */
  inside: Uint8Array;
}

/** Connected components of `win` in the search box; returns the median HU of the best round, fat-ringed one. */
function findAorta(s: SliceView, outside: Uint8Array, box: SearchBox, win: readonly [number, number]): number | undefined {
  const { cols, smooth } = s;
  const { i0, i1, j0, j1 } = box;
  const label = new Int32Array((i1 - i0 + 1) * (j1 - j0 + 1)).fill(0);
  const w = i1 - i0 + 1;
  const inBox = (i: number, j: number): boolean => box.inside[(j - j0) * w + (i - i0)] === 1;
  let best: { score: number; hu: number } | undefined;
  let next = 0;
  const stack: number[] = [];
  const visit = (ni: number, nj: number): void => {
    if (ni < i0 || ni > i1 || nj < j0 || nj > j1) return;
    const nl = (nj - j0) * w + (ni - i0);
    if (label[nl] || !inWin(smooth[nj * cols + ni], win) || !inBox(ni, nj)) return;
    label[nl] = next;
    stack.push(nl);
  };
  for (let j = j0; j <= j1; j++) {
    for (let i = i0; i <= i1; i++) {
      const li = (j - j0) * w + (i - i0);
      if (label[li] || !inBox(i, j) || !inWin(smooth[j * cols + i], win) || outside[j * cols + i]) continue;
      next++;
      const members: number[] = [];
      label[li] = next;
      stack.push(li);
      while (stack.length) {
        const m = stack.pop()!;
        members.push(m);
        const mi = (m % w) + i0;
        const mj = Math.floor(m / w) + j0;
        visit(mi - 1, mj);
        visit(mi + 1, mj);
        visit(mi, mj - 1);
        visit(mi, mj + 1);
        if (members.length > 5000) break;
      }
      const blob = aortaCandidate(s, members, w, i0, j0);
      if (blob && (!best || blob.score > best.score)) best = blob;
    }
  }
  return best?.hu;
}

/**
 * One component (`members`: indices in a box `w` wide from voxel i0, j0) judged as the aorta: 14-36 mm across,
 * round, ringed by fat or lung; its score (roundness + ring share) and core median HU, or undefined.
 */
function aortaCandidate(s: SliceView, members: number[], w: number, i0: number, j0: number): { score: number; hu: number } | undefined {
  const { cols, raw } = s;
  const areaMm2 = members.length * (s.pxMm * s.pxMm);
  // Aorta 14-36 mm across (iliac arteries are smaller and lower than the levels sampled).
  if (areaMm2 < Math.PI * 7 * 7 || areaMm2 > Math.PI * 18 * 18) return undefined;
  let sx = 0;
  let sy = 0;
  for (const m of members) {
    sx += (m % w) + i0;
    sy += Math.floor(m / w) + j0;
  }
  const cx = sx / members.length;
  const cy = sy / members.length;
  let rmax2 = 0;
  for (const m of members) {
    const di = (m % w) + i0 - cx;
    const dj = Math.floor(m / w) + j0 - cy;
    rmax2 = Math.max(rmax2, di * di + dj * dj);
  }
  const rEq = Math.sqrt(members.length / Math.PI); // voxels
  const roundness = (rEq * rEq) / Math.max(1, rmax2);
  if (roundness < 0.55) return undefined;
  // Ring 2-5 mm outside the blob: mostly fat or lung around a real aorta.
  let ringLow = 0;
  let ringN = 0;
  const r1 = rEq + 2 / s.pxMm;
  const r2 = rEq + 5 / s.pxMm;
  for (let b = Math.floor(cy - r2); b <= Math.ceil(cy + r2); b++) {
    for (let a = Math.floor(cx - r2); a <= Math.ceil(cx + r2); a++) {
      const d2 = (a - cx) ** 2 + (b - cy) ** 2;
      if (d2 < r1 * r1 || d2 > r2 * r2 || a < 0 || b < 0 || a >= s.cols || b >= s.rows) continue;
      ringN++;
      if (raw[b * cols + a] < -30) ringLow++;
    }
  }
  if (ringN === 0 || ringLow / ringN < 0.45) return undefined;
  // Core: within 60 % of the equivalent radius.
  const core: number[] = [];
  for (const m of members) {
    const mi = (m % w) + i0;
    const mj = Math.floor(m / w) + j0;
    if ((mi - cx) ** 2 + (mj - cy) ** 2 <= (0.6 * rEq) ** 2) core.push(raw[mj * cols + mi]);
  }
  if (core.length < 5) return undefined;
  return { score: roundness + ringLow / ringN, hu: median(core) };
}

/**
 * Samples the reference tissues in the axial slices through (up to 6 of) the given vertebral body centres.
 * A tissue is reported when found in at least one slice; its value is the median over slices.
 */
export function sampleReferenceTissues(v: Volume, centersMm: Vec3[]): TissueSamples {
  const acc: PerSlice = { air: [], fat: [], muscle: [], blood: [], enhanced: [] };
  const used = spread(centersMm, 6);
  for (const c of used) sampleSlice(v, c, acc);
  const out: TissueSamples = { notes: [] };
  const summarize = (xs: number[]): TissueSample | undefined => (xs.length ? { medianHu: round1(median(xs)), slices: xs.length } : undefined);
  out.air = summarize(acc.air);
  out.fat = summarize(acc.fat);
  out.muscle = summarize(acc.muscle);
  out.blood = summarize(acc.blood);
  // An enhanced aorta needs to be seen at half the sampled levels or more (one bright blob can be bowel).
  out.enhancedAorta = acc.enhanced.length >= Math.max(1, Math.ceil(used.length / 2)) ? summarize(acc.enhanced) : undefined;
  if (!out.air) out.notes.push('no air outside the body near the sampled slices (body fills the field of view?)');
  if (!out.fat) out.notes.push('no subcutaneous fat layer found');
  if (!out.muscle) out.notes.push('no paraspinal muscle found behind the vertebral bodies');
  return out;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
