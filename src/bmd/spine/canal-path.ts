import type { WorkingGrid } from './working-grid.js';

/**
 * One continuous canal through the slices, from per-slice canal candidates (find-spine.ts): a Viterbi path
 * that maximises slices matched minus in-plane jumps, then the longest run of it that is one canal.
 */
export interface CanalCandidate {
  /** Midline x of the profile where this candidate was found (working voxels). */
  x: number;
  y: number;
  /** Anterior edge of the canal (first low voxel), the posterior edge of the body. */
  front: number;
  /** Body anterior edge estimate (y index). */
  bodyFront: number;
  score: number;
  /**
   * Another canal-like gap lies up to 70 mm further posterior in the same profile: this one is then more
   * likely the fat plane between a contrast-filled aorta and the vertebral body than the canal itself.
   */
  shadowed?: boolean;
}

/** Chooses one candidate per slice (or none) maximising matches minus jumps: Viterbi over slices. */
export function chooseCanalPath(cands: CanalCandidate[][], mmPerVoxelY: number, mmPerVoxelZ: number): Int32Array {
  const nz = cands.length;
  const choice = new Int32Array(nz).fill(-1);
  // State per slice: candidate index, or -1 (none). Cost = -1 per matched slice + jump penalty.
  const jumpPenaltyPerMm = 0.08;
  const maxJumpMmPerMm = 1.0; // the canal moves at most ~1 mm in y per mm in z (steepest lordosis ~45 deg)
  const best: Float64Array[] = [];
  const back: Int32Array[] = [];
  for (let z = 0; z < nz; z++) {
    const m = cands[z].length;
    const b = new Float64Array(m + 1);
    const bk = new Int32Array(m + 1).fill(-1);
    for (let s = 0; s <= m; s++) {
      const self = s < m ? (cands[z][s].shadowed ? -0.3 : -1) : 0;
      if (z === 0) {
        b[s] = self;
        continue;
      }
      const prev = best[z - 1];
      const pm = cands[z - 1].length;
      let v = Infinity;
      let arg = -1;
      for (let t = 0; t <= pm; t++) {
        let c = prev[t];
        if (s < m && t < pm) {
          const dyMm =
            Math.abs(cands[z][s].y - cands[z - 1][t].y) * mmPerVoxelY + Math.abs(cands[z][s].x - cands[z - 1][t].x) * mmPerVoxelY;
          if (dyMm > maxJumpMmPerMm * mmPerVoxelZ + 2 * mmPerVoxelY) c += 2;
          else c += jumpPenaltyPerMm * dyMm;
        } else if (s < m !== t < pm) {
          c += 0.5;
        }
        if (c < v) {
          v = c;
          arg = t;
        }
      }
      b[s] = v + self;
      bk[s] = arg;
    }
    best.push(b);
    back.push(bk);
  }
  let s = 0;
  let v = Infinity;
  const last = best[nz - 1];
  for (let t = 0; t < last.length; t++) if (last[t] < v) {
    v = last[t];
    s = t;
  }
  for (let z = nz - 1; z >= 0; z--) {
    choice[z] = s < cands[z].length ? s : -1;
    if (z > 0) s = back[z][s];
  }
  return choice;
}

/** The canal moves at most this far in-plane between slices (mm per mm of z, plus a fixed allowance). */
const MAX_STEP_MM_PER_MM = 1.2;
const MAX_STEP_FIXED_MM = 6;
/** A run of slices without a canal candidate that the canal is carried across (a disc-level miss). */
const MAX_GAP_MM = 10;
/**
 * Longer runs without a candidate, up to most of a vertebra, are crossed only where the canal continues
 * nearly in line (at most ~27 degrees off the slice normal): at the upper thoracic spine the canal merges with
 * the fat behind it between the laminae for 15 mm at a time, and the track stopped there, losing T1-T3 (hard
 * phantom 20036, arms down). A path that jumps to another structure moves further than this. Only inside the
 * chosen path: the run is carried on past its ends over short gaps only (carried over long ones, it followed
 * soft tissue 20 mm below the last vertebra of default phantom 1026 and moved the whole column).
 */
const MAX_LONG_GAP_MM = 20;
const LONG_GAP_STEP_MM_PER_MM = 0.5;

/**
 * Across an excursion (below) the canal may go without a candidate of its own for up to a vertebral body's height
 * (lumbar bodies 24-28 mm: Panjabi et al., Spine 1992): a steeply tilted level, cut obliquely by the slices, shows
 * no body right in front of its canal, while something in front of it with bone before and behind reads like one.
 */
const MAX_EXCURSION_GAP_MM = 30;
/** The last slices of a run, at either end, over which a step of the canal's front ends the run (continuousRun). */
const FRONT_STEP_TAIL_MM = 10;
/** How far in front of or behind the canal's line a stretch must lie to be an excursion: twice a step's allowance. */
const EXCURSION_OFF_MM = 2 * MAX_STEP_FIXED_MM;

/** Slices a..b (inclusive) that have a chosen candidate. */
function chosenSlices(choice: Int32Array, a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, k) => a + k).filter((z) => choice[z] >= 0);
}

/**
 * Clears the choice over a stretch of slices that continues neither the chosen slices before it nor those after
 * it, where those two continue each other in line across it: an excursion (something canal-like beside, behind or
 * in front of the canal), not the canal leaving. Left in, it breaks the run, and the longer piece wins: with the
 * pedicles beside the bodies' cranial parts, as in patients, hard phantom 22017 lost L2-L4 to one candidate 21 mm
 * behind the lumbar canal between two slices without any; 22001 (a 69 degree lordosis, L1 tilted 33 degrees) had
 * no canal candidate over 24 mm at L1 and a stretch of six slices 39 mm in front of the canal, and lost L1 and L2.
 * Returns the slices after each excursion, whose link to the slice before it is then taken as continuing the canal.
 */
function dropExcursions(
  choice: Int32Array,
  cands: CanalCandidate[][],
  syMm: number,
  fits: (c: CanalCandidate, p: CanalCandidate, dz: number) => boolean,
  inLine: (c: CanalCandidate, p: CanalCandidate, dz: number) => boolean,
): Set<number> {
  const bridged = new Set<number>();
  const at = (z: number): CanalCandidate => cands[z][choice[z]];
  for (let changed = true; changed; ) {
    changed = false;
    // Stretches of chosen slices that continue each other, as [first, last] slice pairs.
    const stretches: [number, number][] = [];
    choice.forEach((c, z) => {
      if (c < 0) return;
      const cur = stretches[stretches.length - 1];
      if (cur && (bridged.has(z) || fits(at(z), at(cur[1]), z - cur[1]))) cur[1] = z;
      else stretches.push([z, z]);
    });
    for (let i = 1; i + 1 < stretches.length && !changed; i++) {
      const [before, [from, to], after] = [stretches[i - 1][1], stretches[i], stretches[i + 1][0]];
      const joined = fits(at(after), at(before), after - before);
      // A single slice between two that continue each other is a miss, wherever it lies; a longer stretch only where
      // each of its slices lies in front of or behind the canal: beside it, it is the canal read across its width.
      const lineY = (z: number): number => at(before).y + ((z - before) / (after - before)) * (at(after).y - at(before).y);
      const offLine = (z: number): boolean => Math.abs(at(z).y - lineY(z)) * syMm >= EXCURSION_OFF_MM;
      const excursion = (from === to && joined) || ((joined || inLine(at(after), at(before), after - before)) && chosenSlices(choice, from, to).every(offLine));
      if (!excursion) continue;
      for (let z = from; z <= to; z++) choice[z] = -1;
      bridged.add(after);
      changed = true;
    }
  }
  return bridged;
}

/**
 * The part of the chosen path that is one canal: the longest run of chosen slices with gaps of at most
 * ~10 mm (a disc-level miss) and no in-plane jump larger than the canal can make (the column bends at most
 * ~45 degrees). A path that leaves the spine for a while (a contrast-filled vessel or the sternum reading
 * like a canal over a stretch) is cut there; the run is then carried on, slice by slice, to the candidates
 * that continue it smoothly, so the spine beyond such a stretch is not lost. Changes `choice` in place.
 */
export function continuousRun(choice: Int32Array, cands: CanalCandidate[][], g: WorkingGrid): { a: number; b: number } {
  const nz = choice.length;
  const sy = g.spacingMm[1];
  const sx = g.spacingMm[0];
  const sz = g.spacingMm[2];
  const maxGap = Math.max(1, Math.round(MAX_GAP_MM / sz));
  const longGap = Math.max(maxGap, Math.round(MAX_LONG_GAP_MM / sz));
  /** In-plane distance between two candidates, mm. */
  const stepMm = (c: CanalCandidate, p: CanalCandidate): number => Math.hypot((c.x - p.x) * sx, (c.y - p.y) * sy);
  /** How far the canal may move over dz slices: freely over a short gap, nearly in line over a long one. */
  const allowedMm = (dz: number): number => MAX_STEP_FIXED_MM + MAX_STEP_MM_PER_MM * dz * sz;
  const inLineMm = (dz: number): number => MAX_STEP_FIXED_MM + LONG_GAP_STEP_MM_PER_MM * dz * sz;
  const fits = (c: CanalCandidate, p: CanalCandidate, dz: number): boolean =>
    dz <= maxGap + 1 ? stepMm(c, p) <= allowedMm(dz) : dz <= longGap + 1 && stepMm(c, p) <= inLineMm(dz);
  const inLine = (c: CanalCandidate, p: CanalCandidate, dz: number): boolean => dz * sz <= MAX_EXCURSION_GAP_MM + sz && stepMm(c, p) <= inLineMm(dz);
  const at = (z: number): CanalCandidate => cands[z][choice[z]];
  const bridged = dropExcursions(choice, cands, sy, fits, inLine);
  let bestA = -1;
  let bestB = -2;
  let runA = -1;
  let last = -100;
  for (let z = 0; z < nz; z++) {
    if (choice[z] < 0) continue;
    const broken = last < 0 || (!bridged.has(z) && !fits(at(z), at(last), z - last));
    if (broken) runA = z;
    last = z;
    if (z - runA > bestB - bestA) {
      bestA = runA;
      bestB = z;
    }
  }
  if (bestA < 0) return { a: -1, b: -2 };
  // The canal's front is the bodies' posterior wall. Where it steps further than the canal may move within the last
  // slices of a run, those slices read another gap at the run's end (hard phantom 20053: at the scan's bottom edge,
  // three slices of a gap whose front lay 15 mm behind the canal's took T11's centre 9 mm off its body). Only at an
  // end: further in, the wall does step back, at the sacral promontory (the TotalSegmentator example from L5 down).
  const frontSteps = (c: CanalCandidate, p: CanalCandidate, dz: number): boolean => Math.abs(c.front - p.front) * sy > allowedMm(dz);
  const tail = Math.max(1, Math.round(FRONT_STEP_TAIL_MM / sz));
  const inRun = chosenSlices(choice, bestA, bestB);
  for (let k = 0; k + 1 < inRun.length && inRun[k] - bestA < tail; k++) {
    const [z, next] = [inRun[k], inRun[k + 1]];
    if (frontSteps(at(next), at(z), next - z)) bestA = next;
  }
  for (let k = inRun.length - 1; k > 0 && bestB - inRun[k] < tail; k--) {
    const [z, prev] = [inRun[k], inRun[k - 1]];
    if (frontSteps(at(prev), at(z), z - prev)) bestB = prev;
  }
  for (let z = 0; z < nz; z++) if (z < bestA || z > bestB) choice[z] = -1;
  // Carry the run on in both directions through candidates that continue it.
  const carry = (from: number, dir: 1 | -1): number => {
    let end = from;
    for (let z = from + dir; z >= 0 && z < nz && Math.abs(z - end) <= maxGap + 1; z += dir) {
      const prev = at(end);
      let pick = -1;
      let bestD = Infinity;
      cands[z].forEach((c, i) => {
        const d = stepMm(c, prev);
        if (fits(c, prev, Math.abs(z - end)) && !frontSteps(c, prev, Math.abs(z - end)) && d < bestD) {
          bestD = d;
          pick = i;
        }
      });
      if (pick >= 0) {
        choice[z] = pick;
        end = z;
      }
    }
    return end;
  };
  return { a: carry(bestA, -1), b: carry(bestB, 1) };
}

