import type { LevelEvidence } from './level-evidence.js';

/**
 * Inferred boundaries (no disc seen) that other bones show to part two vertebrae, so that a count carried across
 * them needs no discount (labels.ts levelConfidence).
 */

/** The longest level, over its column's trend, whose ribs or processes can confirm the boundaries beside it (below). */
const LONGEST_RIB_CONFIRMED = 1.15;

/**
 * Whether the bones beside an inferred boundary, between levels j and j+1, show that it parts two vertebrae: the
 * ribs (ribsConfirmBoundary) or the transverse processes, one pair each, a level apart. Neither level may be
 * long, nor hold a traced rib left over: a long level may hold two bodies behind a missed disc, and the second
 * body's ribs then go to a neighbour or are left over, its processes unseen.
 */
export function boundaryConfirmed(ev: LevelEvidence[], j: number): boolean {
  const pair = [ev[j], ev[j + 1]];
  if (pair.some((e) => e.unassignedRib || !((e.lengthOverTrend ?? NaN) <= LONGEST_RIB_CONFIRMED))) return false;
  return ribsConfirmBoundary(ev, j) || ev[j].cranialPartedByProcesses === true;
}

/**
 * Whether the ribs show that an inferred boundary, between two regular levels j and j+1 (boundaryConfirmed),
 * parts two vertebrae: each bears its own rib on the same side (one rib per level and side, ribs.ts), in a run
 * with ribs on that side on the levels either side of the pair too. A
 * body split in two would leave one of its halves without a rib there; so the count across it needs no
 * discount (AMOS 0336: T6 is short and its discs too thin to see at 4 mm, and T1-T5, named right, stayed at
 * 0.33 below the last rib's count). A missed disc is not ruled out this way: the DP (ribs.ts) moves the hidden
 * level's ribs to a neighbour or leaves them over (AMOS 0336 cropped to a 200 mm field: T7-T8 read as one
 * 35 mm level, and every name above it went one level low at 0.92-0.95 when this check was missing).
 */
function ribsConfirmBoundary(ev: LevelEvidence[], j: number): boolean {
  const run = [j - 1, j, j + 1, j + 2].filter((k) => k >= 0 && k < ev.length && !ev[k].stub);
  const side = (has: (e: LevelEvidence) => boolean, band: (e: LevelEvidence) => boolean): boolean =>
    has(ev[j]) && has(ev[j + 1]) && run.every((k) => has(ev[k]) || !band(ev[k]));
  return side((e) => e.ribLeft, (e) => e.bandLeft) || side((e) => e.ribRight, (e) => e.bandRight);
}
