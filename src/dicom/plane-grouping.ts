import { sliceKey, type DicomSliceHeader } from './slice.js';
import { acquisitionSeriesUid } from './substitute-uids.js';

/** One header per image plane: a file copied twice into the folder is one instance, not a duplicate position. */
export function uniquePlanes(hs: DicomSliceHeader[]): DicomSliceHeader[] {
  const seen = new Set<string>();
  return hs.filter((h) => {
    const key = sliceKey(h);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/**
 * A series whose UID was substituted (substitute-uids.ts) groups by attributes that do not include
 * Acquisition Number. When its planes collide in position and their Acquisition Numbers separate them
 * into collision-free stacks (two acquisitions exported without UIDs), each acquisition becomes its own
 * series; otherwise it stays whole (step-and-shoot CT numbers each rotation, and assembly reports real
 * collisions).
 */
export function splitByAcquisition(hs: DicomSliceHeader[]): DicomSliceHeader[][] {
  if (!hs[0].substitutedUids?.includes('series')) return [hs];
  const planes = uniquePlanes(hs);
  if (!hasCollisions(planes)) return [hs];
  const byAcq = new Map<number | undefined, DicomSliceHeader[]>();
  for (const h of planes) {
    const g = byAcq.get(h.acquisitionNumber);
    if (g) g.push(h);
    else byAcq.set(h.acquisitionNumber, [h]);
  }
  if (byAcq.size < 2 || [...byAcq.values()].some(hasCollisions)) return [hs];
  return [...byAcq.entries()].map(([acq, g]) => {
    const uid = acquisitionSeriesUid(g[0].seriesInstanceUid, acq);
    return g.map((h) => ({ ...h, seriesInstanceUid: uid }));
  });
}

function hasCollisions(hs: DicomSliceHeader[]): boolean {
  const at = new Set<string>();
  for (const h of hs) {
    if (!h.imagePositionMm) continue;
    const key = h.imagePositionMm.map((x) => Math.round(x * 100)).join(',');
    if (at.has(key)) return true;
    at.add(key);
  }
  return false;
}
