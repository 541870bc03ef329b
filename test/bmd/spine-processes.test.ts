import { describe, expect, it } from 'vitest';
import type { BodySizeAlongSpine } from '../../src/bmd/spine/body-outline.js';
import { segmentsFromDiscChain } from '../../src/bmd/spine/segments.js';
import type { StraightSpine } from '../../src/bmd/spine/straighten.js';
import { straightBlock } from '../support/straight-block.js';
import {
  boundariesPartedByProcesses,
  checkDiscsAgainstProcesses,
  discShareOfGap,
  oneLevelGaps,
  pairedProcessLevelsMm,
  processCentresMm,
  processProfiles,
  spacingWithProcessGaps,
} from '../../src/bmd/spine/transverse-processes.js';

const spacing = (mm: number) => (): number => mm;
/** Snapping that finds no disc-score peak: the target itself. */
const noPeak = (t: number): number => t;

/**
 * A straightened block (1 mm, u -40..60, v -80..80) of muscle, with a 36 x 28 mm body column (centre u 0) and a
 * transverse process pair, bone 8 mm thick, on each level at `processesMm` (each side's bar reaches 40 mm out
 * from the column, 16-26 mm behind the body centre).
 */
function blockWithProcesses(ns: number, processesMm: number[], { leftOnly = false } = {}): { st: StraightSpine; size: BodySizeAlongSpine } {
  const st = straightBlock(ns, (s, uMm, vMm) => {
    const onBar = processesMm.some((p) => Math.abs(s - p) <= 4) && uMm >= 16 && uMm <= 26 && Math.abs(vMm) >= 10 && Math.abs(vMm) <= 40;
    if (onBar && (!leftOnly || vMm > 0)) return 600;
    if (Math.abs(uMm) <= 14 && Math.abs(vMm) <= 18) return 200;
    return undefined;
  });
  const fill = (x: number): Float32Array => new Float32Array(ns).fill(x);
  return { st, size: { depthMm: fill(28), widthMm: fill(36), uCenterMm: fill(0), vCenterMm: fill(0) } };
}

describe('transverse processes along the straightened spine', () => {
  it('finds one bar per level on each side, at its centre, and pairs them into levels', () => {
    const levels = [30, 62, 95, 129];
    const { st, size } = blockWithProcesses(160, levels);
    const [left, right] = processProfiles(st, size).map((p) => processCentresMm(p, st.stepMm, spacing(32)));
    expect(left).toEqual(levels);
    expect(right).toEqual(levels);
    expect(pairedProcessLevelsMm(left, right, spacing(32))).toEqual(levels);
  });

  it('pairs no level where only one side shows a process, and none where the two sides are a third of a level apart', () => {
    const { st, size } = blockWithProcesses(160, [30, 62, 95], { leftOnly: true });
    const [left, right] = processProfiles(st, size).map((p) => processCentresMm(p, st.stepMm, spacing(32)));
    expect(left).toEqual([30, 62, 95]);
    expect(right).toEqual([]);
    expect(pairedProcessLevelsMm([30, 62], [41, 62], spacing(32))).toEqual([62]);
  });

  it('takes a run longer than a process is thick (a sacral ala, an iliac crest) for no process', () => {
    const p = new Float32Array(120);
    for (let s = 10; s < 18; s++) p[s] = 0.8; // 8 mm: a process
    for (let s = 40; s < 80; s++) p[s] = 0.8; // 40 mm: an ala
    expect(processCentresMm(p, 1, spacing(32))).toEqual([13.5]);
  });

  it('trusts a gap as one level only next to a gap that agrees and near the disc spacing', () => {
    // 30 mm levels, then a missed process (60 mm gap), then two more.
    expect(oneLevelGaps([0, 30, 61, 121, 151, 181], spacing(30))).toEqual([true, true, false, true, true]);
    // Half-level "processes" (rib heads at the discs): gaps agree with each other but are too short for the spacing.
    expect(oneLevelGaps([0, 15, 30, 45, 60], spacing(30))).toEqual([false, false, false, false]);
    // A lone gap has no neighbour to agree with.
    expect(oneLevelGaps([0, 30], spacing(30))).toEqual([false]);
  });

  it('trusts lumbar gaps (no rib near) up to 1.75 x a disc period that reads short, and no further', () => {
    // Lumbar processes 36 mm apart against a disc period of 22 mm (hard phantom 20054: endplates gave the profile
    // peaks between the discs). Near ribs the bound stays at GAP_SPLIT_RATIO: T12's processes are the ones missed.
    const levels = [0, 36, 73, 110, 146];
    expect(oneLevelGaps(levels, spacing(22))).toEqual([false, false, false, false]);
    expect(oneLevelGaps(levels, spacing(22), () => true)).toEqual([true, true, true, true]);
    // Two levels with one pair of processes unseen read about 2 x the period: still not one level.
    expect(oneLevelGaps([0, 30, 60, 120, 150, 180], spacing(30), () => true)).toEqual([true, true, false, true, true]);
    // And the false disc inside a lumbar body is made one with its neighbour only where the gap is rib-free.
    const discs = [18, 50, 62, 91, 128];
    expect(checkDiscsAgainstProcesses(discs, levels, spacing(22), noPeak).discs).toEqual(discs);
    expect(checkDiscsAgainstProcesses(discs, levels, spacing(22), noPeak, () => true).discs).toEqual([18, 54.5, 91, 128]);
  });

  it('puts agreeing lumbar process gaps in for a disc period that reads short, and leaves the thorax to the profile', () => {
    // 1 mm samples; processes 36-38 mm apart over s 40-190 (the lumbar spine), a disc period read at 24 mm.
    const period = new Float32Array(300).fill(24);
    const levels = [40, 77, 114, 151, 188];
    const lumbar = spacingWithProcessGaps(period, levels, 1, () => true);
    expect(lumbar[95]).toBe(37);
    expect(lumbar[20]).toBe(24); // more than half a gap below the lowest level: untouched
    expect(lumbar[200]).toBe(37); // half a gap above the highest: the last gap's length
    expect(lumbar[230]).toBe(24);
    // The same gaps beside ribs may each hold two thoracic levels with a pair unseen: the profile's period stands.
    expect(spacingWithProcessGaps(period, levels, 1, () => false)).toBe(period);
    // Gaps near the period already, or that disagree with each other (a process missed), change nothing.
    expect(spacingWithProcessGaps(period, [40, 65, 90, 115], 1, () => true)).toBe(period);
    expect(spacingWithProcessGaps(period, [40, 77, 150, 187 + 60], 1, () => true)).toBe(period);
  });

  it('leaves a chain with one disc in the middle of every gap as it is', () => {
    const r = checkDiscsAgainstProcesses([15, 45, 76, 105], [0, 30, 61, 91, 121], spacing(30), noPeak);
    expect(r.discs).toEqual([15, 45, 76, 105]);
    expect(r.inferred.size).toBe(0);
  });

  it('makes two discs between neighbouring levels one (a false disc inside a body), keeping a seen disc near the middle', () => {
    const r = checkDiscsAgainstProcesses([15, 40, 52, 76], [0, 30, 61, 91], spacing(30), (t) => (Math.abs(t - 45.5) < 6 ? 44 : t));
    expect(r.discs).toEqual([15, 44, 76]);
    expect([...r.inferred]).toEqual([44]);
    const kept = checkDiscsAgainstProcesses([15, 38, 46, 76], [0, 30, 61, 91], spacing(30), () => 45);
    expect(kept.discs).toEqual([15, 46, 76]);
    expect(kept.inferred.size).toBe(0);
  });

  it('adds the disc missed between two levels, and moves one that sits against a process', () => {
    const missed = checkDiscsAgainstProcesses([15, 76, 105], [0, 30, 61, 91, 121], spacing(30), noPeak);
    expect(missed.discs).toEqual([15, 45.5, 76, 105]);
    expect([...missed.inferred]).toEqual([45.5]);
    const moved = checkDiscsAgainstProcesses([15, 58, 76], [0, 30, 61, 91], spacing(30), noPeak);
    expect(moved.discs).toEqual([15, 45.5, 76]);
  });

  it('reads where the discs lie between processes from the study, as where the processes sit high (the thorax)', () => {
    // Processes at 0.85 of 30 mm levels, as the Philips chest CT's thoracic ones (0.55-0.91): each disc lies at 0.15
    // of the gap above a process level, outside the middle half where a mid-body process would put it.
    const levels = [25.5, 55.5, 85.5, 115.5, 145.5];
    expect(discShareOfGap([30, 60, 90, 120], levels, [true, true, true, true])).toBeCloseTo(0.15);
    // Too few gaps with one disc say nothing: the anatomical prior.
    expect(discShareOfGap([30], levels, [true, true, true, true])).toBe(0.4);
    const kept = checkDiscsAgainstProcesses([30, 60, 90, 120], levels, spacing(30), noPeak);
    expect(kept.discs).toEqual([30, 60, 90, 120]);
    expect(kept.inferred.size).toBe(0);
    // A disc read 1 mm below a process level belongs to the gap above it, not to the gap below as a second disc.
    const below = checkDiscsAgainstProcesses([30, 60, 84.5, 120], levels, spacing(30), noPeak);
    expect(below.discs).toEqual([30, 60, 84.5, 120]);
    expect(below.inferred.size).toBe(0);
    // A disc read just outside where the check looks (the gap below holds two levels, so no check claims it) is
    // not joined by a placed one 8 mm away: that would cut a sliver counted as a level.
    const sliver = checkDiscsAgainstProcesses([30, 60, 82, 120, 150], [25.5, 85.5, 115.5, 145.5, 175.5], spacing(30), noPeak);
    expect(sliver.discShare).toBeCloseTo(0.15);
    expect(sliver.discs).toEqual([30, 60, 82, 120, 150]);
    expect(sliver.inferred.size).toBe(0);
    // A missed disc is put where the others lie in their gaps, not mid-way.
    const missed = checkDiscsAgainstProcesses([30, 60, 120], levels, spacing(30), noPeak);
    expect(missed.discs).toEqual([30, 60, 90, 120]);
    expect([...missed.inferred]).toEqual([90]);
    // And a piece is parted by its processes where they sit, high in it.
    const pieces = [30, 60, 90, 120].map((sFrom) => ({ sFrom, sTo: sFrom + 30 }));
    expect(boundariesPartedByProcesses(pieces, [55.5, 85.5, 115.5, 145.5], [true, true, true], kept.discShare)).toEqual([true, true, true, false]);
    expect(boundariesPartedByProcesses(pieces, [55.5, 85.5, 115.5, 145.5], [true, true, true], 0.5)).toEqual([false, false, false, false]);
  });

  it('changes nothing across a gap that holds two levels (a process missed between them)', () => {
    const r = checkDiscsAgainstProcesses([15, 45, 76, 105, 136], [0, 30, 61, 121, 151], spacing(30), noPeak);
    expect(r.discs).toEqual([15, 45, 76, 105, 136]);
  });

  it('keeps a disc gap with one process level inside from being split for its length', () => {
    const r = checkDiscsAgainstProcesses([17, 55, 91], [0, 36, 73, 110], spacing(36), noPeak);
    expect(r.oneLevel(17, 55)).toBe(true);
    expect(r.oneLevel(0, 73)).toBe(false);
    // The disc spacing read short (25 mm, as in a degenerated lumbar spine): 38 mm is over 1.45 x 25, yet one level.
    const split = segmentsFromDiscChain([17, 55, 91], 0, 110, spacing(25), new Float32Array(120), 1);
    const kept = segmentsFromDiscChain([17, 55, 91], 0, 110, spacing(25), new Float32Array(120), 1, { oneLevel: r.oneLevel });
    expect(split.length).toBeGreaterThan(kept.length);
    expect(kept.map((sg) => [sg.sFrom, sg.sTo])).toEqual([
      [0, 17],
      [17, 55],
      [55, 91],
      [91, 110],
    ]);
  });

  it('parts two pieces by their processes only where each holds its own pair, mid-piece, a level from the next', () => {
    const pieces = [
      { sFrom: 0, sTo: 30 },
      { sFrom: 30, sTo: 61 },
      { sFrom: 61, sTo: 91 },
      { sFrom: 91, sTo: 150 },
    ];
    expect(boundariesPartedByProcesses(pieces, [15, 45.5, 76, 106, 136], [true, true, true, true])).toEqual([true, true, false, false]);
    // The gap between the two levels is not one level: no parting there.
    expect(boundariesPartedByProcesses(pieces, [15, 45.5, 76], [true, false])).toEqual([true, false, false, false]);
    // A process level at the end of its piece (within a quarter of the piece from its disc) parts nothing.
    expect(boundariesPartedByProcesses(pieces, [15, 34, 76], [true, true])).toEqual([false, false, false, false]);
  });
});
