import type { HuArray, Vec3, Volume } from '../../imaging/volume.js';
import { chunkCount, ONE_THREAD, type ChunkRunner } from '../parallel/chunk-runner.js';
import { voxelToPatientMm } from '../../imaging/volume.js';
import { VbmdError } from '../../util/errors.js';

/**
 * A coarse, patient-oriented copy of the volume for finding the spine. Axes run along LPS: x towards the
 * patient's left, y towards posterior, z towards superior, whatever the source voxel order (DICOM axial
 * top-down or bottom-up, NIfTI RAS flips). Voxels are block means of the source (partial volume kept), so
 * a 0.7 x 0.7 x 1 mm study and a 3 mm study are searched at the same ~3 mm scale and the same thresholds
 * apply to both. ROI statistics are taken later at full resolution, never on this grid.
 */
export interface WorkingGrid {
  readonly hu: Float32Array;
  readonly dims: Vec3;
  readonly spacingMm: Vec3;
  /** For each canonical axis a (x,y,z): the source voxel axis, its direction sign, the pooling factor. */
  readonly sourceAxis: Vec3;
  readonly sourceSign: Vec3;
  readonly factor: Vec3;
  readonly source: Volume;
}

/** Target spacing of the search grid: the real-CT development case is 3 mm; finer data are pooled to it. */
export const WORKING_SPACING_MM = 3;

/** Which source axis runs along each patient axis, and in which sense. Oblique volumes are refused. */
export function canonicalAxes(volume: Pick<Volume, 'direction'>): { axis: Vec3; sign: Vec3 } {
  const axis: Vec3 = [-1, -1, -1];
  const sign: Vec3 = [1, 1, 1];
  for (let s = 0; s < 3; s++) {
    const d = volume.direction[s];
    let best = 0;
    for (let a = 1; a < 3; a++) if (Math.abs(d[a]) > Math.abs(d[best])) best = a;
    // cos 10 deg: a gantry tilt or oblique reformat beyond this would mix levels across slices.
    if (Math.abs(d[best]) < 0.985 || axis[best] !== -1) {
      throw new VbmdError('unsupported', 'The volume is oblique (not aligned with the patient axes within 10 degrees); only axial CT can be measured.');
    }
    axis[best] = s;
    sign[best] = d[best] > 0 ? 1 : -1;
  }
  return { axis, sign };
}

export function poolingFactor(spacingMm: number, targetMm = WORKING_SPACING_MM): number {
  return Math.max(1, Math.round(targetMm / spacingMm));
}

export function buildWorkingGrid(volume: Volume, targetMm = WORKING_SPACING_MM, runner: ChunkRunner = ONE_THREAD): WorkingGrid {
  const { axis, sign } = canonicalAxes(volume);
  const factor: Vec3 = [0, 0, 0];
  const dims: Vec3 = [0, 0, 0];
  const spacingMm: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const s = axis[a];
    factor[a] = poolingFactor(volume.spacingMm[s], targetMm);
    dims[a] = Math.floor(volume.dims[s] / factor[a]);
    spacingMm[a] = volume.spacingMm[s] * factor[a];
  }
  if (dims[0] < 4 || dims[1] < 4 || dims[2] < 1) {
    throw new VbmdError('bad-input', `The volume (${volume.dims.join('x')} voxels) is too small to hold a spine.`);
  }
  const [nx, ny] = volume.dims;
  const strides: Vec3 = [1, nx, nx * ny];
  // Per canonical axis: the source memory offset of each fine position c*f+t (flips folded in), so the
  // pooling loop is table look-ups and adds only.
  const offsets = [0, 1, 2].map((a) => {
    const n = volume.dims[axis[a]];
    const t = new Int32Array(dims[a] * factor[a]);
    for (let i = 0; i < t.length; i++) t[i] = (sign[a] > 0 ? i : n - 1 - i) * strides[axis[a]];
    return t;
  });
  const hu = runner.float32(dims[0] * dims[1] * dims[2]);
  const pooling: GridPooling = {
    src: volume.hu,
    out: hu,
    dims,
    factor,
    offX: offsets[0],
    offY: offsets[1],
    offZ: offsets[2],
    // The usual storage (columns along patient x, left to right) reads each row as one run: no offset table per voxel.
    contiguousX: axis[0] === 0 && sign[0] > 0,
  };
  runner.run('poolGrid', pooling, chunkCount(dims[2], POOLED_SLICES_PER_CHUNK), poolGridChunk);
  return { hu, dims, spacingMm, sourceAxis: axis, sourceSign: sign, factor, source: volume };
}

/** Pooled slices per chunk of the working grid (a chunk is ~4 ms of a 512x512x290 study: fine enough to share). */
const POOLED_SLICES_PER_CHUNK = 4;

/** What one chunk of the pooling needs: the source, the grid it fills and the offset tables. */
export interface GridPooling {
  src: HuArray;
  out: Float32Array;
  dims: Vec3;
  factor: Vec3;
  offX: Int32Array;
  offY: Int32Array;
  offZ: Int32Array;
  contiguousX: boolean;
}

/**
 * Block means of the grid's pooled slices chunk*POOLED_SLICES_PER_CHUNK onwards. The pooling is the largest
 * single cost of the spine search on a 512x512x290 study.
 */
export function poolGridChunk(p: GridPooling, chunk: number): void {
  const { src, out, dims, offX, offY, offZ, contiguousX } = p;
  const [fx, fy, fz] = p.factor;
  const inv = 1 / (fx * fy * fz);
  const rowSum = new Float64Array(dims[0]);
  const zTo = Math.min(dims[2], (chunk + 1) * POOLED_SLICES_PER_CHUNK);
  for (let z = chunk * POOLED_SLICES_PER_CHUNK; z < zTo; z++) {
    let o = z * dims[0] * dims[1];
    for (let y = 0; y < dims[1]; y++) {
      rowSum.fill(0);
      for (let tz = 0; tz < fz; tz++) {
        const bz = offZ[z * fz + tz];
        for (let ty = 0; ty < fy; ty++) {
          const by = bz + offY[y * fy + ty];
          if (contiguousX) addRunsContiguous(src, by, fx, rowSum);
          else addRunsIndexed(src, by, offX, fx, rowSum);
        }
      }
      for (let x = 0; x < dims[0]; x++, o++) out[o] = rowSum[x] * inv;
    }
  }
}

/** rowSum[x] += the fx source values of pooled column x, the row starting at `base` in memory. */
function addRunsContiguous(src: ArrayLike<number>, base: number, fx: number, rowSum: Float64Array): void {
  let p = base;
  // Written out for the usual factors (0.55-1.1 mm pixels pool 5, 4 or 3 to one): a loop of 3-5 steps per pooled
  // voxel costs more than its sums (bench study, fx 4: 152 -> 94 ms). The same additions in the same order.
  const n = rowSum.length;
  if (fx === 3) {
    for (let x = 0; x < n; x++, p += 3) rowSum[x] += 0 + src[p] + src[p + 1] + src[p + 2];
    return;
  }
  if (fx === 4) {
    for (let x = 0; x < n; x++, p += 4) rowSum[x] += 0 + src[p] + src[p + 1] + src[p + 2] + src[p + 3];
    return;
  }
  if (fx === 5) {
    for (let x = 0; x < n; x++, p += 5) rowSum[x] += 0 + src[p] + src[p + 1] + src[p + 2] + src[p + 3] + src[p + 4];
    return;
  }
  for (let x = 0; x < rowSum.length; x++) {
    let acc = 0;
    for (let tx = 0; tx < fx; tx++) acc += src[p++];
    rowSum[x] += acc;
  }
}

/** As addRunsContiguous, for a flipped or permuted x axis: source offsets from the table. */
function addRunsIndexed(src: ArrayLike<number>, base: number, offX: Int32Array, fx: number, rowSum: Float64Array): void {
  let xi = 0;
  for (let x = 0; x < rowSum.length; x++) {
    let acc = 0;
    for (let tx = 0; tx < fx; tx++, xi++) acc += src[base + offX[xi]];
    rowSum[x] += acc;
  }
}

/** Fractional source voxel (i,j,k) of the centre of working voxel (x,y,z) (fractional allowed). */
export function workingToSourceVoxel(g: WorkingGrid, p: Vec3): Vec3 {
  const out: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const s = g.sourceAxis[a];
    const n = g.source.dims[s];
    const i = p[a] * g.factor[a] + (g.factor[a] - 1) / 2;
    out[s] = g.sourceSign[a] > 0 ? i : n - 1 - i;
  }
  return out;
}

export function workingToPatientMm(g: WorkingGrid, p: Vec3): Vec3 {
  const v = workingToSourceVoxel(g, p);
  return voxelToPatientMm(g.source, v[0], v[1], v[2]);
}

export function workingIndex(g: Pick<WorkingGrid, 'dims'>, x: number, y: number, z: number): number {
  return x + g.dims[0] * (y + g.dims[1] * z);
}
