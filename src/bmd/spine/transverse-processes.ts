import { median } from '../median.js';
import type { BodySizeAlongSpine } from './body-outline.js';
import { MAX_DISC_SPACING_MM, MIN_DISC_SPACING_MM, spacingAtMm } from './disc-chain.js';
import { GAP_SPLIT_RATIO } from './segments.js';
import type { StraightSpine } from './straighten.js';

/**
 * The transverse processes: a count of the levels that does not depend on seeing the discs. Every mobile
 * vertebra has one pair, at the junction of its pedicles and laminae (Gray's Anatomy), level with its own body;
 * on a coronal slab just behind the bodies they are bars either side of the column, one pair per level
 * (lumbar: flat plates 20-30 mm long; thoracic: shorter, carrying the rib tubercles). A disc the profile missed
 * (degenerated, fused) leaves two pairs on one piece; a false disc inside a body (a fracture line, a Schmorl
 * node, a spacing read too short) leaves a piece with none. On real CT the lumbar processes stand out this way:
 * on AMOS 0336 (a public abdomen CT, not held here) each lumbar pair lies within 4 mm of its body's centre, on
 * the TotalSegmentator example within 10 mm. Thoracic ones are fainter and often missed (the Philips chest CT):
 * a level missed only leaves its gaps unchecked.
 */

/** The band beside the body searched for the processes, mm past its half width (past the facet columns). */
const BAND_FROM_MM = 4;
const BAND_TO_MM = 16;
/** How far behind the body's posterior wall the processes are looked for, mm. */
const BEHIND_WALL_MM = 14;
/** A process is mostly cortex: over this HU (cancellous bone of a young spine reaches ~250, fat and muscle stay under 100). */
const BONE_HU = 150;
/** Share of the band's columns with bone for a sample to lie on a process. */
const ON_PROCESS = 0.3;
/** A process is 5-15 mm thick along the column; a longer run is an ala, a crest or ribs running together. */
const MIN_RUN_MM = 2;
const MAX_RUN_OF_SPACING = 0.7;
/** Left and right processes of one level lie at the same height along the column, within this share of a level. */
const PAIR_OF_SPACING = 0.3;
/**
 * A gap between process levels is a level when a gap next to it agrees within these ratios (spacing changes a
 * few % per level: Panjabi et al.; a missed process doubles a gap, a spurious one halves two).
 */
const NEIGHBOUR_RATIO: [number, number] = [0.8, 1.25];
/**
 * And when it lies within these multiples of the disc-derived spacing: under it a rib head at a disc or a split
 * process; over it, where the disc chain itself would split a gap (GAP_SPLIT_RATIO), it may hold two levels
 * with one level's processes unseen. T12's are short and often missed, and the longer lumbar gap below then
 * passes for one level next to the thoracic ones (fresh hard phantoms 22013 and 22019: at 1.55-1.6 x the disc
 * spacing, the two seen discs in it were made one and T12 and L1 read as one level). Where the disc profile's own
 * period reads short, this would give up the check; over rib-free gaps the bound below takes those cases back.
 */
const GAP_OF_EXPECTED: [number, number] = [0.75, GAP_SPLIT_RATIO];
/**
 * Over a gap with no rib near it (the lumbar spine), the upper bound is this instead. Lumbar processes are long and
 * are not missed as T12's are, so a gap that agrees with its neighbours is one level even where the disc profile's
 * period reads short: endplates, sclerosis or a lesion give it peaks between the discs (hard phantom 20054: lumbar
 * process gaps of 30-37 mm against a disc period of 22-25 mm; a false disc split L1, L4 was not found and four
 * names were a level off). Two levels with a pair of processes unseen would still read about 2 x the period, and
 * disagree with their neighbours. (21035, with a 21 mm period, keeps its false discs: its L5 processes run into
 * the alae and its L1 pair sits 9 mm apart, so no two neighbouring gaps agree.)
 */
const RIB_FREE_GAP_OF_EXPECTED_MAX = 1.75;
/**
 * Where the one disc between two process levels a level apart lies in their gap (0 at the caudal level's processes,
 * 1 at the cranial one's), when the study itself does not say (discShareOfGap). The processes arise at the pedicles,
 * beside the body's cranial part rather than its middle (Gray's Anatomy): on the Philips chest CT the thoracic ones
 * the profile finds lie at 0.55-0.91 of their level from its caudal end, on the TotalSegmentator example the lumbar
 * ones at 0.5-0.77, on AMOS 0336 (a public abdomen CT, not held here) within 4 mm of the body's centre. So the disc
 * lies at 0.1-0.5 of the gap; where it lies in one study, its seen discs say.
 */
const DISC_SHARE_PRIOR = 0.4;
/** Seen discs at these shares of their gap inform the estimate; one elsewhere is a false disc or a missed process. */
const DISC_SHARE_PLAUSIBLE: [number, number] = [0.05, 0.7];
/**
 * How far a disc may lie from that share, and a level's processes from theirs in its piece, as a share of the gap or
 * the piece: a quarter, as when both were taken to lie mid-way.
 */
const OFF_SHARE = 0.25;
const nearShare = (xMm: number, fromMm: number, toMm: number, share: number): boolean => Math.abs(xMm - (fromMm + share * (toMm - fromMm))) <= OFF_SHARE * (toMm - fromMm);

/**
 * Where this study's discs lie between the process levels either side (DISC_SHARE_PRIOR): the median share over the
 * one-level gaps that hold exactly one seen disc at a plausible share, given two or more such gaps.
 */
export function discShareOfGap(discsMm: readonly number[], levelsMm: readonly number[], oneLevel: readonly boolean[]): number {
  const shares: number[] = [];
  oneLevel.forEach((isLevel, i) => {
    const [p, q] = [levelsMm[i], levelsMm[i + 1]];
    const inside = discsMm.filter((d) => d > p && d < q);
    const share = inside.length === 1 ? (inside[0] - p) / (q - p) : NaN;
    if (isLevel && share >= DISC_SHARE_PLAUSIBLE[0] && share <= DISC_SHARE_PLAUSIBLE[1]) shares.push(share);
  });
  return shares.length < 2 ? DISC_SHARE_PRIOR : median(shares);
}

/**
 * Per sample along the column and per side (0: left, v > 0; 1: right), the share of the band's columns with
 * bone somewhere behind the body's wall; NaN where most of the band is outside the scan.
 */
export function processProfiles(st: StraightSpine, size: BodySizeAlongSpine): [Float32Array, Float32Array] {
  const out: [Float32Array, Float32Array] = [new Float32Array(st.ns).fill(NaN), new Float32Array(st.ns).fill(NaN)];
  const uIndex = (uMm: number): number => Math.round((uMm - st.uMinMm) / st.stepMm);
  for (let s = 0; s < st.ns; s++) {
    const depth = Number.isFinite(size.depthMm[s]) ? size.depthMm[s] : 28;
    const width = Number.isFinite(size.widthMm[s]) ? size.widthMm[s] : 36;
    const u0 = Math.max(0, uIndex(size.uCenterMm[s] + depth / 2));
    const u1 = Math.min(st.nu - 1, uIndex(size.uCenterMm[s] + depth / 2 + BEHIND_WALL_MM));
    for (const [side, sign] of [[0, 1], [1, -1]] as const) {
      let seen = 0;
      let bone = 0;
      let columns = 0;
      for (let off = width / 2 + BAND_FROM_MM; off <= width / 2 + BAND_TO_MM; off += st.stepMm) {
        columns++;
        const v = Math.round((size.vCenterMm[s] + sign * off - st.vMinMm) / st.stepMm);
        if (v < 0 || v >= st.nv) continue;
        let max = -Infinity;
        for (let u = u0; u <= u1; u++) {
          const h = st.hu[v + st.nv * (u + st.nu * s)];
          if (h > max) max = h;
        }
        if (max === -Infinity) continue; // every sample NaN: outside the scan
        seen++;
        if (max > BONE_HU) bone++;
      }
      if (seen >= columns / 2) out[side][s] = bone / seen;
    }
  }
  return out;
}

/** Centres (mm along the column) of the runs on a process in one side's profile, each no longer than a process is thick. */
export function processCentresMm(profile: Float32Array, stepMm: number, expectedMm: (sMm: number) => number): number[] {
  const out: number[] = [];
  let from = -1;
  for (let s = 0; s <= profile.length; s++) {
    const on = s < profile.length && profile[s] > ON_PROCESS;
    if (on && from < 0) from = s;
    if (on || from < 0) continue;
    const lengthMm = (s - from) * stepMm;
    const centreMm = ((from + s - 1) / 2) * stepMm;
    if (lengthMm >= MIN_RUN_MM && lengthMm <= MAX_RUN_OF_SPACING * expectedMm(centreMm)) out.push(centreMm);
    from = -1;
  }
  return out;
}

/** Levels (mm along the column, ascending) where a left and a right process pair up, each the other's nearest. */
export function pairedProcessLevelsMm(leftMm: number[], rightMm: number[], expectedMm: (sMm: number) => number): number[] {
  const nearest = (x: number, ys: number[]): number => ys.reduce((b, y) => (Math.abs(y - x) < Math.abs(b - x) ? y : b), Infinity);
  const out: number[] = [];
  for (const l of leftMm) {
    const r = nearest(l, rightMm);
    if (nearest(r, leftMm) !== l || Math.abs(r - l) > PAIR_OF_SPACING * expectedMm((l + r) / 2)) continue;
    out.push((l + r) / 2);
  }
  return out.sort((a, b) => a - b);
}

/**
 * Which gaps between consecutive process levels are one level each: a neighbouring gap agrees with it
 * (NEIGHBOUR_RATIO), and it lies inside the range a disc spacing can take and near the disc-derived spacing
 * (GAP_OF_EXPECTED).
 */
export function oneLevelGaps(levelsMm: readonly number[], expectedMm: (sMm: number) => number, ribFree: (fromMm: number, toMm: number) => boolean = () => false): boolean[] {
  const gaps = levelsMm.slice(1).map((x, i) => x - levelsMm[i]);
  const agrees = (g: number, h: number | undefined): boolean => h !== undefined && g >= NEIGHBOUR_RATIO[0] * h && g <= NEIGHBOUR_RATIO[1] * h;
  return gaps.map((g, i) => {
    const e = expectedMm((levelsMm[i] + levelsMm[i + 1]) / 2);
    const max = ribFree(levelsMm[i], levelsMm[i + 1]) ? RIB_FREE_GAP_OF_EXPECTED_MAX : GAP_OF_EXPECTED[1];
    const plausible = g >= MIN_DISC_SPACING_MM && g <= MAX_DISC_SPACING_MM && g >= GAP_OF_EXPECTED[0] * e && g <= max * e;
    return plausible && (agrees(g, gaps[i - 1]) || agrees(g, gaps[i + 1]));
  });
}

/**
 * Per piece (caudal first), whether its boundary with the next piece parts two vertebrae by their processes: each
 * of the two holds its own process level where its processes lie (1 - discShare of the piece from its caudal end),
 * and the gap between those two levels is one level.
 */
export function boundariesPartedByProcesses(
  pieces: readonly { sFrom: number; sTo: number }[],
  levelsMm: readonly number[],
  oneLevelGap: readonly boolean[],
  discShare = DISC_SHARE_PRIOR,
): boolean[] {
  const own = pieces.map((pc) => {
    const inside = levelsMm.flatMap((p, i) => (p > pc.sFrom && p < pc.sTo ? [i] : []));
    return inside.length === 1 && nearShare(levelsMm[inside[0]], pc.sFrom, pc.sTo, 1 - discShare) ? inside[0] : -1;
  });
  return pieces.map((_, k) => k + 1 < pieces.length && own[k] >= 0 && own[k + 1] === own[k] + 1 && oneLevelGap[own[k]]);
}

export interface ProcessCheckedDiscs {
  /** Discs, mm along the column, ascending. */
  discs: number[];
  /** Discs placed from the processes rather than seen (mm, as in `discs`). */
  inferred: Set<number>;
  /** Per gap between consecutive process levels, whether it is one level (oneLevelGaps). */
  oneLevelGap: boolean[];
  /** Where this study's discs lie in those gaps (discShareOfGap). */
  discShare: number;
  /**
   * Whether the disc gap [fromMm, toMm] is one level: one process level inside, one-level gaps to the process
   * levels either side, and each end within OFF_SHARE of where a disc lies in its gap.
   */
  oneLevel: (fromMm: number, toMm: number) => boolean;
}

/**
 * Exactly one disc between two process levels a level apart, near where this study's discs lie in such gaps
 * (discShareOfGap): two or more there
 * (a false disc) become one, none (a missed disc) gets one, one near a process (a false disc inside a body
 * whose own disc was missed: hard phantom 20013, 3 mm from T7's processes) is moved. The disc is where `snapMm`
 * puts that point between the two levels (the disc score's best peak near it); an existing disc within 2 mm
 * of that is kept as seen, anything else is marked inferred, so counting across it is discounted like any
 * boundary not seen.
 */
export function checkDiscsAgainstProcesses(
  discsMm: number[],
  levelsMm: number[],
  expectedMm: (sMm: number) => number,
  snapMm: (targetMm: number, reachMm: number) => number,
  ribFree: (fromMm: number, toMm: number) => boolean = () => false,
): ProcessCheckedDiscs {
  const ok = oneLevelGaps(levelsMm, expectedMm, ribFree);
  const share = discShareOfGap(discsMm, levelsMm, ok);
  let discs = [...discsMm];
  const inferred = new Set<number>();
  const nearGap = (d: number, j: number): boolean => j >= 0 && j < ok.length && ok[j] && nearShare(d, levelsMm[j], levelsMm[j + 1], share);
  ok.forEach((isLevel, i) => {
    if (!isLevel) return;
    const [p, q] = [levelsMm[i], levelsMm[i + 1]];
    // The discs near where this gap's disc lies, and the others inside it. Where the processes sit high in their
    // levels (the thorax), a disc may be read just caudal of the caudal level's processes, outside the gap: it is
    // this gap's disc, and not a second disc in the gap below.
    const near = discs.filter((d) => nearGap(d, i));
    const candidates = discs.filter((d) => near.includes(d) || (d > p && d < q && !nearGap(d, i - 1) && !nearGap(d, i + 1)));
    if (near.length === 1 && candidates.length === 1) return;
    const at = snapMm(p + share * (q - p), 0.2 * (q - p));
    const seen = candidates.find((d) => Math.abs(d - at) <= 2);
    // A disc placed nearer than any disc spacing to one that stays would cut a sliver that is no vertebra, and
    // counting across it moves every name beyond (hard phantom 20019 with its processes at the pedicles: a disc
    // seen 1 mm outside where the check looked, another placed 4 mm from it, and 8 names a level off at 0.85).
    if (seen === undefined && discs.some((d) => !candidates.includes(d) && Math.abs(d - at) < MIN_DISC_SPACING_MM)) return;
    discs = [...discs.filter((d) => !candidates.includes(d)), seen ?? at];
    if (seen === undefined) inferred.add(at);
  });
  discs.sort((a, b) => a - b);
  // Neither end further than OFF_SHARE past where a disc lies in its gap, towards the levels either side of the one
  // process level inside.
  const oneLevel = (fromMm: number, toMm: number): boolean => {
    const i = levelsMm.findIndex((p) => p > fromMm && p < toMm);
    if (i < 1 || i + 1 >= levelsMm.length || !ok[i - 1] || !ok[i]) return false;
    const [before, at, after] = [levelsMm[i - 1], levelsMm[i], levelsMm[i + 1]];
    return fromMm >= before + (share - OFF_SHARE) * (at - before) && toMm <= at + (share + OFF_SHARE) * (after - at);
  };
  return { discs, inferred, oneLevelGap: ok, discShare: share, oneLevel };
}

/**
 * Lumbar process gaps that read this much longer than the disc profile's period override it. Neighbouring levels
 * differ by a few % (Panjabi et al.), so a one-level gap 20% over the period says the period is wrong, not the gap.
 */
const PROCESS_GAP_OVER_PERIOD = 1.2;

/**
 * The disc spacing with the lumbar process gaps put in where the disc profile's period reads short. Endplates,
 * sclerosis or a lesion give the profile peaks between the discs, and its period then halves or reads 2/3 of a level:
 * the disc chain, held to that period, walks through weak peaks in the bodies and skips the strong discs between
 * them (hard phantom 20054: process gaps of 29-38 mm over L5-L1 against a period of 23-25 mm; two false discs at
 * mid-body of L3 and L2, and every lumbar name a level off). Only rib-free gaps that are one level by oneLevelGaps
 * count: lumbar processes are long and seldom missed, whereas a thoracic gap can hold two levels with one short pair
 * unseen. Each gap's length applies over the gap and half a gap either side, as the chain's gaps straddle process
 * levels. Returns `spacingMm` itself when no gap qualifies.
 */
export function spacingWithProcessGaps(
  spacingMm: Float32Array,
  levelsMm: readonly number[],
  stepMm: number,
  ribFree: (fromMm: number, toMm: number) => boolean,
): Float32Array {
  const expected = spacingAtMm(spacingMm, stepMm);
  const ok = oneLevelGaps(levelsMm, expected, ribFree);
  let out = spacingMm;
  ok.forEach((isLevel, i) => {
    const [p, q] = [levelsMm[i], levelsMm[i + 1]];
    const gapMm = q - p;
    if (!isLevel || !ribFree(p, q) || gapMm < PROCESS_GAP_OVER_PERIOD * expected((p + q) / 2)) return;
    if (out === spacingMm) out = Float32Array.from(spacingMm);
    const from = Math.max(0, Math.round((p - gapMm / 2) / stepMm));
    const to = Math.min(out.length - 1, Math.round((q + gapMm / 2) / stepMm));
    for (let s = from; s <= to; s++) out[s] = Math.max(out[s], gapMm);
  });
  return out;
}
