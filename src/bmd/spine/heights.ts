import type { SpineTrack } from './find-spine.js';
import type { LevelSegment } from './levels.js';
import type { WorkingGrid } from './working-grid.js';

/**
 * Anterior, middle and posterior body heights (mm), as in Genant's semiquantitative method (Genant et al.,
 * J Bone Miner Res 1993): each is the distance between the cranial and caudal endplates along a vertical
 * line through the anterior, middle and posterior thirds of the body. An endplate is located as the brightest
 * slice (cortical plate) near each end of the level in that column, so heights are in whole slices of the
 * working grid (~3 mm): the uncertainty is about one slice.
 */
export interface BodyHeightsMm {
  anterior: number;
  middle: number;
  posterior: number;
}

/** Heights plus the endplate slices found on the middle column (working z), for centring the ROI slab. */
export interface BodyHeightsResult {
  heightsMm: BodyHeightsMm;
  middleEndplatesZ: [number, number];
}

export function measureHeightsMm(g: WorkingGrid, t: SpineTrack, seg: LevelSegment): BodyHeightsResult | null {
  const [nx, ny, nz] = g.dims;
  const zMid = Math.round((seg.zFrom + seg.zTo) / 2);
  if (!t.found[zMid]) return null;
  const depthVox = t.bodyDepthMm[zMid] / g.spacingMm[1];
  const front = t.bodyY[zMid] - depthVox / 2;
  const len = seg.zTo - seg.zFrom + 1;
  const search = Math.max(1, Math.round(len * 0.35));
  let mid: [number, number] = [seg.zFrom, seg.zTo];
  const column = (yFrac: number): number => {
    const y = Math.round(front + yFrac * depthVox);
    const x = Math.round(t.bodyX[zMid]);
    if (y < 0 || y >= ny || x < 1 || x >= nx - 1) return NaN;
    const at = (z: number): number => {
      if (z < 0 || z >= nz) return -Infinity;
      let s = 0;
      for (let dx = -1; dx <= 1; dx++) s += g.hu[x + dx + nx * (y + ny * z)];
      return s / 3;
    };
    // Caudal endplate: brightest slice within [zFrom-1, zFrom+search]; cranial within [zTo-search, zTo+1].
    let lo = seg.zFrom;
    let v = -Infinity;
    for (let z = seg.zFrom - 1; z <= seg.zFrom + search; z++) if (at(z) > v) {
      v = at(z);
      lo = z;
    }
    let hi = seg.zTo;
    v = -Infinity;
    for (let z = seg.zTo + 1; z >= seg.zTo - search; z--) if (at(z) > v) {
      v = at(z);
      hi = z;
    }
    if (yFrac === 0.5) mid = [lo, hi];
    return (hi - lo + 1) * g.spacingMm[2];
  };
  const anterior = column(0.15);
  const middle = column(0.5);
  const posterior = column(0.85);
  if (![anterior, middle, posterior].every(Number.isFinite)) return null;
  return { heightsMm: { anterior, middle, posterior }, middleEndplatesZ: mid };
}
