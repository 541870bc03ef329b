import { patientMmToVoxel, voxelToPatientMm, type Vec3, type Volume } from '../../imaging/volume.js';
import { voxelAxes } from './volume-edits.js';

/**
 * IV contrast in the aorta, simulated on an unenhanced scan: the descending (thoracic) and abdominal aorta is
 * found slice by slice as the round soft-tissue tube anterior-left of the vertebral bodies, and its lumen raised
 * by liftHu (arterial-phase blood is ~250-350 HU against ~40 HU unenhanced: Bae, Radiology 2010). The heart
 * chambers are left as they are. For evaluation data only: it is given the spine's centre line to search beside.
 */
export interface AortaContrastResult {
  volume: Volume;
  /** Slices where a lumen was found and raised. */
  slicesRaised: number;
  /** Lumen radius (mm) found per raised slice, median. */
  medianRadiusMm: number | null;
}

/** Unenhanced blood and vessel wall; fat is below, bone and enhanced blood above. */
const SOFT_MIN_HU = -10;
const SOFT_MAX_HU = 110;
/** Half-width of the box mean before thresholding. */
const SMOOTH_HALF_MM = 2.5;
/** Calcified plaque in the wall is not blood: left as it is. */
const PLAQUE_HU = 200;
/** Aortic diameter 18-36 mm from the diaphragm to the bifurcation (Rogers et al., JACC Imaging 2013). */
const RADII_MM = [9, 11, 13, 15, 17];
/**
 * Where the seed is looked for, relative to the body centre (LPS: +x patient left, -y anterior): the descending
 * and abdominal aorta lie left-anterior of the bodies; the inferior vena cava, right of them, is left out.
 */
const SEARCH = { xMinMm: -10, xMaxMm: 45, yMinMm: -60, yMaxMm: -10 };
/** From one slice to the next the aorta's centre moves a few mm at most (it runs nearly along z). */
const TRACK_JUMP_MM = 5;
/** The track ends where the tube is not seen for this long (the arch turning forward, the bifurcation). */
const MAX_GAP_MM = 8;
const SEED_SCORE = 0.45;
const TRACK_SCORE = 0.25;

interface SliceHit {
  i: number;
  j: number;
  radiusMm: number;
  score: number;
}

/** Spine centre line (LPS mm, this volume's frame) at patient z, linear between the given centres. */
function spineAt(centres: Vec3[], zMm: number): [number, number] {
  const c = [...centres].sort((a, b) => a[2] - b[2]);
  if (zMm <= c[0][2]) return [c[0][0], c[0][1]];
  for (let n = 0; n + 1 < c.length; n++) {
    if (zMm <= c[n + 1][2]) {
      const t = (zMm - c[n][2]) / (c[n + 1][2] - c[n][2] || 1);
      return [c[n][0] + t * (c[n + 1][0] - c[n][0]), c[n][1] + t * (c[n + 1][1] - c[n][1])];
    }
  }
  const l = c[c.length - 1];
  return [l[0], l[1]];
}

/** A search box in one slice: patient x/y ranges (LPS mm). */
export interface SearchBox {
  xMm: [number, number];
  yMm: [number, number];
}

/** Best round soft-tissue blob centred in the box on slice k: soft fraction inside minus in a ring around it. */
export function findInSlice(v: Volume, slices: SoftSlices, k: number, area: SearchBox, minScore: number): SliceHit | null {
  const [nx, ny] = v.dims;
  const z = voxelToPatientMm(v, 0, 0, k)[2];
  const corners = [
    patientMmToVoxel(v, [area.xMm[0], area.yMm[0], z]),
    patientMmToVoxel(v, [area.xMm[1], area.yMm[1], z]),
  ];
  const i0 = Math.max(0, Math.floor(Math.min(corners[0][0], corners[1][0])));
  const i1 = Math.min(nx - 1, Math.ceil(Math.max(corners[0][0], corners[1][0])));
  const j0 = Math.max(0, Math.floor(Math.min(corners[0][1], corners[1][1])));
  const j1 = Math.min(ny - 1, Math.ceil(Math.max(corners[0][1], corners[1][1])));
  if (i1 < i0 || j1 < j0) return null;
  const box = slices.boxes(k);
  const [sx, sy] = v.spacingMm;
  const stride = Math.max(1, Math.round(1.5 / Math.min(sx, sy)));
  let best: SliceHit | null = null;
  for (let j = j0; j <= j1; j += stride) {
    for (let i = i0; i <= i1; i += stride) {
      for (const r of RADII_MM) {
        // Inner square inscribed in the lumen; ring between squares of half-size r+1 and r+6 mm.
        const [inS, inN] = box(i - (0.7 * r) / sx, i + (0.7 * r) / sx, j - (0.7 * r) / sy, j + (0.7 * r) / sy);
        const [midS, midN] = box(i - (r + 1) / sx, i + (r + 1) / sx, j - (r + 1) / sy, j + (r + 1) / sy);
        const [outS, outN] = box(i - (r + 6) / sx, i + (r + 6) / sx, j - (r + 6) / sy, j + (r + 6) / sy);
        if (inN === 0 || outN <= midN) continue;
        const inner = inS / inN;
        if (inner < 0.85) continue;
        const score = inner - (outS - midS) / (outN - midN);
        if (!best || score > best.score) best = { i, j, radiusMm: r, score };
      }
    }
  }
  return best && best.score >= minScore ? best : null;
}

/**
 * Soft tissue on slice k after a box mean of ~5 mm: routine CT noise (SD 20-40 HU) scatters single blood voxels
 * out of the soft-tissue range, the local mean does not.
 */
function softMask(v: Volume, k: number): Uint8Array {
  const [nx, ny] = v.dims;
  const hi = Math.max(0, Math.floor(SMOOTH_HALF_MM / v.spacingMm[0]));
  const hj = Math.max(0, Math.floor(SMOOTH_HALF_MM / v.spacingMm[1]));
  const rowSum = new Float64Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      let s = 0;
      for (let d = -hi; d <= hi; d++) s += v.hu[Math.min(nx - 1, Math.max(0, i + d)) + nx * (j + ny * k)];
      rowSum[i + nx * j] = s;
    }
  }
  const out = new Uint8Array(nx * ny);
  const count = (2 * hi + 1) * (2 * hj + 1);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      let s = 0;
      for (let d = -hj; d <= hj; d++) s += rowSum[i + nx * Math.min(ny - 1, Math.max(0, j + d))];
      const m = s / count;
      out[i + nx * j] = m >= SOFT_MIN_HU && m <= SOFT_MAX_HU ? 1 : 0;
    }
  }
  return out;
}

type BoxCount = (a: number, b: number, c: number, d: number) => [number, number];

/** Per slice, computed once: the soft-tissue mask and box counts over it. */
export interface SoftSlices {
  mask(k: number): Uint8Array;
  boxes(k: number): BoxCount;
}

export function softSlices(v: Volume): SoftSlices {
  const masks = new Map<number, Uint8Array>();
  const boxes = new Map<number, BoxCount>();
  const mask = (k: number): Uint8Array => {
    let m = masks.get(k);
    if (!m) masks.set(k, (m = softMask(v, k)));
    return m;
  };
  return {
    mask,
    boxes(k) {
      let b = boxes.get(k);
      if (!b) boxes.set(k, (b = softBoxes(v, mask(k))));
      return b;
    },
  };
}

/** Counts of soft-tissue voxels in index boxes of one slice (an integral image of its mask). */
function softBoxes(v: Volume, soft: Uint8Array): BoxCount {
  const [nx, ny] = v.dims;
  const w = nx + 1;
  const sat = new Int32Array(w * (ny + 1));
  for (let j = 0; j < ny; j++) {
    let row = 0;
    for (let i = 0; i < nx; i++) {
      row += soft[i + nx * j];
      sat[i + 1 + w * (j + 1)] = sat[i + 1 + w * j] + row;
    }
  }
  return (a, b, c, d) => {
    const ia = Math.max(0, Math.round(a));
    const ib = Math.min(nx - 1, Math.round(b));
    const jc = Math.max(0, Math.round(c));
    const jd = Math.min(ny - 1, Math.round(d));
    if (ib < ia || jd < jc) return [0, 0];
    return [sat[ib + 1 + w * (jd + 1)] - sat[ia + w * (jd + 1)] - sat[ib + 1 + w * jc] + sat[ia + w * jc], (ib - ia + 1) * (jd - jc + 1)];
  };
}

/** The radius (mm) at which a circle around the centre stops running through soft tissue: the vessel's outer edge. */
function edgeRadiusMm(v: Volume, softAt: Uint8Array, hit: SliceHit): number {
  const [nx, ny] = v.dims;
  const [sx, sy] = v.spacingMm;
  for (let r = 6; r <= 22; r += 0.5) {
    let soft = 0;
    for (let t = 0; t < 32; t++) {
      const a = (t * Math.PI) / 16;
      const i = Math.round(hit.i + (r * Math.cos(a)) / sx);
      const j = Math.round(hit.j + (r * Math.sin(a)) / sy);
      if (i < 0 || j < 0 || i >= nx || j >= ny) continue;
      soft += softAt[i + nx * j];
    }
    if (soft < 16) return r;
  }
  return 22;
}

/**
 * The aorta as one track: seeded on the best-scoring slice in the box beside the spine, then followed slice by
 * slice up and down within TRACK_JUMP_MM of the last centre, until it is lost for MAX_GAP_MM.
 */
function trackAorta(v: Volume, slices: SoftSlices, spineCentresMm: Vec3[]): (SliceHit | null)[] {
  const nz = v.dims[2];
  const zOf = (k: number): number => voxelToPatientMm(v, 0, 0, k)[2];
  const beside = (k: number): SearchBox => {
    const [cx, cy] = spineAt(spineCentresMm, zOf(k));
    return { xMm: [cx + SEARCH.xMinMm, cx + SEARCH.xMaxMm], yMm: [cy + SEARCH.yMinMm, cy + SEARCH.yMaxMm] };
  };
  let seedK = -1;
  let seed: SliceHit | null = null;
  // Every 3rd slice is enough to seed; the track then visits all.
  for (let k = 0; k < nz; k += 3) {
    const h = findInSlice(v, slices, k, beside(k), SEED_SCORE);
    if (h && (!seed || h.score > seed.score)) [seed, seedK] = [h, k];
  }
  const hits: (SliceHit | null)[] = new Array<SliceHit | null>(nz).fill(null);
  if (!seed) return hits;
  hits[seedK] = seed;
  for (const dir of [1, -1]) {
    let last = seed;
    let missMm = 0;
    for (let k = seedK + dir; k >= 0 && k < nz && missMm < MAX_GAP_MM; k += dir) {
      const c = voxelToPatientMm(v, last.i, last.j, k);
      const area: SearchBox = { xMm: [c[0] - TRACK_JUMP_MM, c[0] + TRACK_JUMP_MM], yMm: [c[1] - TRACK_JUMP_MM, c[1] + TRACK_JUMP_MM] };
      const h = findInSlice(v, slices, k, area, TRACK_SCORE);
      if (h) {
        hits[k] = h;
        last = h;
        missMm = 0;
      } else missMm += v.spacingMm[2];
    }
  }
  return hits;
}

export function brightenAorta(v: Volume, spineCentresMm: Vec3[], liftHu = 250): AortaContrastResult {
  voxelAxes(v); // axis-aligned only: slices must be axial for the slice-wise search
  const [nx, ny, nz] = v.dims;
  const slices = softSlices(v);
  const hits = trackAorta(v, slices, spineCentresMm);
  const out = v.hu instanceof Int16Array ? new Int16Array(v.hu) : new Float32Array(v.hu);
  const [sx, sy] = v.spacingMm;
  const radii: number[] = [];
  for (let k = 0; k < nz; k++) {
    const h = hits[k];
    if (!h) continue;
    // The unenhanced wall (~1.5 mm) stays as it is; the lumen inside it is raised.
    const lumen = edgeRadiusMm(v, slices.mask(k), h) - 1.5;
    radii.push(lumen);
    for (let j = Math.floor(h.j - lumen / sy); j <= Math.ceil(h.j + lumen / sy); j++) {
      for (let i = Math.floor(h.i - lumen / sx); i <= Math.ceil(h.i + lumen / sx); i++) {
        if (i < 0 || j < 0 || i >= nx || j >= ny || Math.hypot((i - h.i) * sx, (j - h.j) * sy) > lumen) continue;
        const n = i + nx * (j + ny * k);
        if (out[n] < PLAQUE_HU) out[n] += liftHu;
      }
    }
  }
  radii.sort((a, b) => a - b);
  return { volume: { ...v, hu: out }, slicesRaised: radii.length, medianRadiusMm: radii.length ? radii[radii.length >> 1] : null };
}
