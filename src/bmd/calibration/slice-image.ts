import type { HuArray, Volume } from '../../imaging/volume.js';

/**
 * One axial slice of the volume as tissue sampling sees it (tissue-sampling.ts): raw and 3x3-smoothed HU, the
 * outside of the body (flood-filled from the image border), and each voxel's distance to the other side of
 * the skin. Whole-slice passes, run cold six times an analysis, so the inner loops are written out.
 */
export interface SliceView {
  cols: number;
  rows: number;
  /** raw HU of the slice */
  raw: HuArray;
  /** 3x3 mean */
  smooth: Float32Array;
  /** LPS x,y offsets per unit i and j (mm) */
  di: [number, number];
  dj: [number, number];
  pxMm: number;
}

export function sliceView(v: Volume, k: number): SliceView {
  const [cols, rows] = v.dims;
  const plane = cols * rows;
  const raw = v.hu.subarray(k * plane, (k + 1) * plane);
  const smooth = new Float32Array(plane);
  // Inside the border: the nine neighbours added in the same order as below (so the same float sums), without
  // the bounds tests, which cost more than the sums.
  for (let j = 1; j < rows - 1; j++) {
    for (let i = 1; i < cols - 1; i++) {
      const q = j * cols + i;
      const up = q - cols;
      const down = q + cols;
      const s =
        0 + raw[up - 1] + raw[up] + raw[up + 1] + raw[q - 1] + raw[q] + raw[q + 1] + raw[down - 1] + raw[down] + raw[down + 1];
      smooth[q] = s / 9;
    }
  }
  // The border: the neighbours that exist (first and last row, then first and last column).
  const edge = (i: number, j: number): void => {
    let s = 0;
    let n = 0;
    for (let b = -1; b <= 1; b++) {
      const jj = j + b;
      if (jj < 0 || jj >= rows) continue;
      for (let a = -1; a <= 1; a++) {
        const ii = i + a;
        if (ii < 0 || ii >= cols) continue;
        s += raw[jj * cols + ii];
        n++;
      }
    }
    smooth[j * cols + i] = s / n;
  };
  for (let i = 0; i < cols; i++) {
    edge(i, 0);
    if (rows > 1) edge(i, rows - 1);
  }
  for (let j = 1; j < rows - 1; j++) {
    edge(0, j);
    if (cols > 1) edge(cols - 1, j);
  }
  const [sx, sy] = v.spacingMm;
  const [d0, d1] = v.direction;
  return { cols, rows, raw, smooth, di: [d0[0] * sx, d0[1] * sx], dj: [d1[0] * sy, d1[1] * sy], pxMm: Math.sqrt(sx * sy) };
}

/** Outside-the-body mask (flood fill from the image border through smoothed HU < -400) and the body's voxel count. */
export function outsideMask(s: SliceView): { outside: Uint8Array; bodyVoxels: number } {
  const { cols, rows, smooth } = s;
  const out = new Uint8Array(cols * rows);
  const stack = new Int32Array(cols * rows);
  let sp = 0;
  const seed = (idx: number): void => {
    if (out[idx] === 0 && smooth[idx] < -400) {
      out[idx] = 1;
      stack[sp++] = idx;
    }
  };
  for (let i = 0; i < cols; i++) {
    seed(i);
    seed((rows - 1) * cols + i);
  }
  for (let j = 0; j < rows; j++) {
    seed(j * cols);
    seed(j * cols + cols - 1);
  }
  // The fill's inner steps are written out (no helper call per neighbour): this runs once per slice, cold.
  const last = cols * rows - cols;
  while (sp > 0) {
    const idx = stack[--sp];
    const i = idx % cols;
    let n = idx - 1;
    if (i > 0 && out[n] === 0 && smooth[n] < -400) {
      out[n] = 1;
      stack[sp++] = n;
    }
    n = idx + 1;
    if (i < cols - 1 && out[n] === 0 && smooth[n] < -400) {
      out[n] = 1;
      stack[sp++] = n;
    }
    n = idx - cols;
    if (idx >= cols && out[n] === 0 && smooth[n] < -400) {
      out[n] = 1;
      stack[sp++] = n;
    }
    n = idx + cols;
    if (idx < last && out[n] === 0 && smooth[n] < -400) {
      out[n] = 1;
      stack[sp++] = n;
    }
  }
  let outsideCount = 0;
  for (let q = 0; q < out.length; q++) outsideCount += out[q];
  return { outside: out, bodyVoxels: cols * rows - outsideCount };
}

/**
 * Chamfer (3-4) distance in mm from every voxel to the nearest voxel on the other side of `mask` (0 or 1): for
 * an outside voxel the gap to the body, for a body voxel its depth under the skin. Both maps in one pass pair,
 * with the same sums as two separate transforms (a voxel of the other side counts as distance 0).
 */
export function distanceToOtherSide(mask: Uint8Array, cols: number, rows: number, pxMm: number): Float32Array {
  const d = new Float32Array(cols * rows).fill(1e9);
  const a = pxMm;
  const b = pxMm * Math.SQRT2;
  // A neighbour n offers (its distance if on the same side, else 0) + step. Written out, no helper call per
  // neighbour: this runs on a whole slice, cold, six times an analysis. The minimum does not depend on the
  // order the neighbours are taken in, so the sums are those of the two-transform definition.
  for (let j = 0; j < rows; j++) {
    const row = j * cols;
    for (let i = 0; i < cols; i++) {
      const idx = row + i;
      const m = mask[idx];
      let v = d[idx];
      let n = idx - 1;
      if (i > 0) v = Math.min(v, (mask[n] === m ? d[n] : 0) + a);
      if (j > 0) {
        n = idx - cols;
        v = Math.min(v, (mask[n] === m ? d[n] : 0) + a);
        n = idx - cols - 1;
        if (i > 0) v = Math.min(v, (mask[n] === m ? d[n] : 0) + b);
        n = idx - cols + 1;
        if (i < cols - 1) v = Math.min(v, (mask[n] === m ? d[n] : 0) + b);
      }
      d[idx] = v;
    }
  }
  for (let j = rows - 1; j >= 0; j--) {
    const row = j * cols;
    for (let i = cols - 1; i >= 0; i--) {
      const idx = row + i;
      const m = mask[idx];
      let v = d[idx];
      let n = idx + 1;
      if (i < cols - 1) v = Math.min(v, (mask[n] === m ? d[n] : 0) + a);
      if (j < rows - 1) {
        n = idx + cols;
        v = Math.min(v, (mask[n] === m ? d[n] : 0) + a);
        n = idx + cols + 1;
        if (i < cols - 1) v = Math.min(v, (mask[n] === m ? d[n] : 0) + b);
        n = idx + cols - 1;
        if (i > 0) v = Math.min(v, (mask[n] === m ? d[n] : 0) + b);
      }
      d[idx] = v;
    }
  }
  return d;
}
