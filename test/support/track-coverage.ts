import type { SpineTrack } from '../../src/bmd/spine/find-spine.js';
import { workingToPatientMm, type WorkingGrid } from '../../src/bmd/spine/working-grid.js';

/** The levels whose centre lies above or below the slices the spine track spans (patient z, mm). */
export function levelsOffTrack(g: WorkingGrid, track: SpineTrack, levels: { level: string; centerMm: readonly number[] }[]): string[] {
  const [bottomMm, topMm] = [track.zFirst, track.zLast].map((z) => workingToPatientMm(g, [0, 0, z])[2]);
  return levels.filter((l) => l.centerMm[2] > topMm || l.centerMm[2] < bottomMm).map((l) => l.level);
}
