import type { HuArray } from '../../imaging/volume.js';
import type { SliceGrid } from './frame.js';
import { standardNormalTable } from './random.js';

/** CT numbers a scanner can store (12-bit range used by most vendors), HU. */
export const HU_MIN = -1024;
export const HU_MAX = 3071;

/** Normalised 1D Gaussian kernel; empty when sigma is too small to matter. */
export function gaussianKernel(sigmaVoxels: number): Float32Array {
  if (sigmaVoxels < 0.3) return new Float32Array([1]);
  const r = Math.max(1, Math.ceil(3 * sigmaVoxels));
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) {
    k[i + r] = Math.exp(-(i * i) / (2 * sigmaVoxels * sigmaVoxels));
    s += k[i + r];
  }
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/**
 * Separable in-plane Gaussian blur of `src` (edges clamped), then rounding to integer HU, clipping to the
 * stored range (HU_MIN..huMax) and padding outside the reconstruction circle, written to `hu` at `base`. The vertical pass
 * works one output row at a time in `rowBuf` so each slice is read and written once.
 */
export function blurAndStore(
  src: Float32Array,
  tmp: Float32Array,
  rowBuf: Float32Array,
  cols: number,
  rows: number,
  k: Float32Array,
  hu: HuArray,
  base: number,
  inFov: Uint8Array,
  huMax: number,
): void {
  const r = (k.length - 1) / 2;
  const n = k.length;
  let h: Float32Array = src;
  if (r > 0) {
    for (let j = 0; j < rows; j++) {
      const row = j * cols;
      for (let i = 0; i < cols; i++) {
        let s = 0;
        if (i >= r && i < cols - r) {
          const b = row + i - r;
          for (let q = 0; q < n; q++) s += k[q] * src[b + q];
        } else {
          for (let q = -r; q <= r; q++) {
            const ii = i + q < 0 ? 0 : i + q >= cols ? cols - 1 : i + q;
            s += k[q + r] * src[row + ii];
          }
        }
        tmp[row + i] = s;
      }
    }
    h = tmp;
  }
  for (let j = 0; j < rows; j++) {
    if (r > 0) {
      rowBuf.fill(0);
      for (let q = -r; q <= r; q++) {
        const jj = j + q < 0 ? 0 : j + q >= rows ? rows - 1 : j + q;
        const w = k[q + r];
        const srow = jj * cols;
        for (let i = 0; i < cols; i++) rowBuf[i] += w * h[srow + i];
      }
    } else {
      rowBuf.set(h.subarray(j * cols, (j + 1) * cols));
    }
    const out = base + j * cols;
    for (let i = 0; i < cols; i++) {
      // Outside the reconstruction circle scanners write their lowest value.
      const v = inFov[j * cols + i] ? Math.round(rowBuf[i]) : HU_MIN;
      hu[out + i] = v < HU_MIN ? HU_MIN : v > huMax ? huMax : v;
    }
  }
}

/** Adds seeded Gaussian noise to one slice (table lookup per voxel). */
export function addNoise(acc: Float32Array, scale: number, table: Float32Array, next: () => number): void {
  if (scale === 0) return;
  for (let q = 0; q < acc.length; q++) acc[q] += scale * table[(next() * 65536) | 0];
}

/** The reconstruction circle of a grid centred on the isocentre: the circle inscribed in its square. */
export function inscribedCircle(grid: SliceGrid): Uint8Array {
  const { cols, rows, pixelMm: px } = grid;
  const fovR2 = ((Math.min(cols, rows) / 2) * px) ** 2;
  const inFov = new Uint8Array(cols * rows);
  for (let j = 0; j < rows; j++) {
    const y = grid.oy + j * px;
    for (let i = 0; i < cols; i++) {
      const x = grid.ox + i * px;
      inFov[j * cols + i] = x * x + y * y <= fovR2 ? 1 : 0;
    }
  }
  return inFov;
}

export interface ReconstructParams {
  renderer: { render(z: number, buf: Float32Array, cup: Float32Array): void };
  grid: SliceGrid;
  slices: number;
  /** Body-frame z of slice 0; slice k is at zBot + k * sliceSpacingMm. */
  zBot: number;
  sliceSpacingMm: number;
  sliceThicknessMm: number;
  psfSigmaMm: number;
  /** Image noise SD, HU (after the PSF blur). */
  noiseHu: number;
  noise: () => number;
  /** 1 where the scanner reconstructed a voxel; elsewhere it writes HU_MIN. */
  inFov: Uint8Array;
  /** Output, cols*rows*slices. */
  hu: HuArray;
  /** Largest value stored (HU_MAX unless the export clips lower). */
  huMax?: number;
  /** Noise SD multiplier at body-frame z (photon starvation through the shoulders); 1 when absent. */
  noiseFactorAt?: (z: number) => number;
  /** Adds slice-level artefacts (metal streaks) to the averaged slice before noise and blur. */
  artefacts?: (z: number, acc: Float32Array) => void;
}

/**
 * Renders every slice as the mean of 1 mm sub-slices across its thickness (partial volume along z), adds
 * noise, blurs by the scanner's PSF and stores integer HU.
 */
export function reconstructSlices(p: ReconstructParams): void {
  const { renderer, grid, slices, zBot, hu, inFov } = p;
  const { cols, rows, pixelMm: px } = grid;
  const sz = p.sliceSpacingMm;
  const plane = cols * rows;
  const acc = new Float32Array(plane);
  const one = new Float32Array(plane);
  const cup = new Float32Array(plane);
  const tmp = new Float32Array(plane);
  const rowBuf = new Float32Array(cols);
  const nSub = Math.max(1, Math.ceil(p.sliceThicknessMm / 1.0 - 1e-9));
  const kernel = gaussianKernel(p.psfSigmaMm / px);
  let sumW2 = 0;
  for (let i = 0; i < kernel.length; i++) sumW2 += kernel[i] * kernel[i];
  // White noise blurred by the PSF ends up with SD*sum(w^2) (separable kernel); pre-scale so the image has noiseHu.
  const noiseScale = p.noiseHu / sumW2;
  const table = standardNormalTable();
  const huMax = p.huMax ?? HU_MAX;
  for (let k = 0; k < slices; k++) {
    const zc = zBot + k * sz;
    if (nSub === 1) {
      renderer.render(zc, acc, cup);
      for (let q = 0; q < plane; q++) acc[q] += cup[q];
    } else {
      acc.fill(0);
      for (let s = 0; s < nSub; s++) {
        const z = zc + ((s + 0.5) / nSub - 0.5) * p.sliceThicknessMm;
        renderer.render(z, one, cup);
        for (let q = 0; q < plane; q++) acc[q] += one[q] + cup[q];
      }
      const inv = 1 / nSub;
      for (let q = 0; q < plane; q++) acc[q] *= inv;
    }
    p.artefacts?.(zc, acc);
    addNoise(acc, p.noiseFactorAt ? noiseScale * p.noiseFactorAt(zc) : noiseScale, table, p.noise);
    blurAndStore(acc, tmp, rowBuf, cols, rows, kernel, hu, k * plane, inFov, huMax);
  }
}
