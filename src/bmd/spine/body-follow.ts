import type { WorkingGrid } from './working-grid.js';

/**
 * Carrying the spine track on along the vertebral bodies alone, where the field of view cuts the spinal canal
 * away. A reconstruction centred on the heart or the abdominal organs can end just behind the bodies; with the
 * thoracic kyphosis the mid-thoracic canal leaves such a field first, and the canal track (find-spine.ts) ends
 * there although the bodies go on in view (hard phantom 22020: T1-T8 never found, eight bodies unreported).
 *
 * Only from a track end where the canal is out of view (the field's posterior edge close behind the body), so a
 * track that ends for another reason (the sacral canal flattening, the scan's own top or bottom) is left as it
 * is. The bodies are followed slice by slice as the bone under a window centred on the last body centre, its
 * centre moving at most one working voxel per slice, and the follow stops where that window is no longer mostly
 * bone over more than a disc's height, or where the body's measurable part leaves the field.
 */

/**
 * The canal lies right behind the body and is 15-20 mm deep in the thorax and lumbar spine (Panjabi et al., Spine
 * 1991/1992); with the laminae behind it, a field edge this close behind the body's posterior wall leaves no
 * canal to find.
 */
const CANAL_OUT_OF_VIEW_MM = 30;
/** Cancellous bone of the body at ~3 mm voxels; discs, soft tissue and fat read below it. */
const CANCELLOUS_BONE_HU = 100;
/** Share of the window over bone for a slice to count as body (a disc, partial-volumed, reads under it). */
const BODY_FILL = 0.5;
/** Slices under that share bridged in a row: a disc and its endplates, not a lost body. */
const MAX_MISS_MM = 12;
/** Window half-size as a share of the body's width and depth: inside the cortex, clear of a beside aorta. */
const WINDOW_SHARE = 0.35;

/** Share of the body's depth behind its centre that must lie in the field for the body to be measured. */
const MEASURABLE_DEPTH_SHARE = 0.3;

export interface BodyTrackArrays {
  found: Uint8Array;
  bodyX: Float32Array;
  bodyY: Float32Array;
  bodyDepthMm: Float32Array;
  bodyWidthMm: Float32Array;
}

/** Whether the field's posterior edge lies within CANAL_OUT_OF_VIEW_MM behind the body at slice z. */
export function canalOutOfView(g: WorkingGrid, t: BodyTrackArrays, z: number): boolean {
  const posteriorWall = t.bodyY[z] + t.bodyDepthMm[z] / 2 / g.spacingMm[1];
  return (g.dims[1] - 1 - posteriorWall) * g.spacingMm[1] < CANAL_OUT_OF_VIEW_MM;
}

/** Share of the elliptic window around (x0, y0) at slice z over CANCELLOUS_BONE_HU, and the bone's centroid. */
function boneInWindow(g: WorkingGrid, z: number, x0: number, y0: number, rx: number, ry: number): { fill: number; cx: number; cy: number } {
  const [nx, ny] = g.dims;
  const base = z * nx * ny;
  let n = 0;
  let bone = 0;
  let sx = 0;
  let sy = 0;
  for (let y = Math.ceil(y0 - ry); y <= Math.floor(y0 + ry); y++) {
    for (let x = Math.ceil(x0 - rx); x <= Math.floor(x0 + rx); x++) {
      if (((x - x0) / rx) ** 2 + ((y - y0) / ry) ** 2 > 1) continue;
      n++;
      if (x < 0 || y < 0 || x >= nx || y >= ny) continue;
      if (g.hu[base + x + nx * y] >= CANCELLOUS_BONE_HU) {
        bone++;
        sx += x;
        sy += y;
      }
    }
  }
  return { fill: n > 0 ? bone / n : 0, cx: bone > 0 ? sx / bone : x0, cy: bone > 0 ? sy / bone : y0 };
}

/**
 * Follows the bodies from track slice `from` in direction `dir` (+1 superior, -1 inferior) while the canal is
 * out of view there; fills the arrays for the slices it keeps and returns the last one (from itself if none).
 */
export function followBodies(g: WorkingGrid, t: BodyTrackArrays, from: number, dir: 1 | -1): number {
  if (!canalOutOfView(g, t, from)) return from;
  const [nx, ny, nz] = g.dims;
  const [sx, sy, sz] = g.spacingMm;
  const widthMm = t.bodyWidthMm[from];
  const depthMm = t.bodyDepthMm[from];
  const rx = Math.max(1, (WINDOW_SHARE * widthMm) / sx);
  const ry = Math.max(1, (WINDOW_SHARE * depthMm) / sy);
  const maxMiss = Math.max(1, Math.round(MAX_MISS_MM / sz));
  let x = t.bodyX[from];
  let y = t.bodyY[from];
  let last = from;
  let misses = 0;
  for (let z = from + dir; z >= 0 && z < nz; z += dir) {
    const w = boneInWindow(g, z, x, y, rx, ry);
    if (w.fill < BODY_FILL) {
      if (++misses > maxMiss) break;
      continue;
    }
    misses = 0;
    // One voxel per slice at most: the column bends ~1 mm per mm at the steepest lordosis, and a bright vessel
    // beside the body cannot pull the window off it at once.
    x += Math.max(-1, Math.min(1, w.cx - x));
    y += Math.max(-1, Math.min(1, w.cy - y));
    // The body's measurable part leaving the field: the trabecular ROI reaches 0.2 of the depth behind the centre
    // (src/bmd/roi/trabecular-roi.ts), so the follow goes on while 0.3 of it is in view, a posterior cortex cut
    // off or not (AMOS 0336 with the edge 20 mm behind the deepest body: T1-T12 found only so).
    if (x - rx < 0 || x + rx > nx - 1 || y + (MEASURABLE_DEPTH_SHARE * depthMm) / sy > ny - 1) break;
    for (let k = last + dir; k !== z + dir; k += dir) {
      t.found[k] = 1;
      const f = (k - last) / (z - last);
      t.bodyX[k] = t.bodyX[last] + f * (x - t.bodyX[last]);
      t.bodyY[k] = t.bodyY[last] + f * (y - t.bodyY[last]);
      t.bodyDepthMm[k] = depthMm;
      t.bodyWidthMm[k] = widthMm;
    }
    last = z;
  }
  return last;
}
