import { describe, expect, it } from 'vitest';
import { irregularLevels } from '../../src/bmd/spine/segments.js';

// Each level's length over the column's trend, caudal first (segments.ts lengthOverTrend).
describe('which levels are too long or short for a count across them to be sure', () => {
  it('flags a missed disc, a split body and a fracture', () => {
    expect(irregularLevels([1, 1, 2.0, 1, 1])).toEqual([false, false, true, false, false]);
    expect(irregularLevels([1, 0.5, 0.5, 1, 1])).toEqual([false, true, true, false, false]);
    expect(irregularLevels([1, 0.7, 1, 1])).toEqual([false, true, false, false]);
  });

  it('does not flag one disc found a few mm from its place: a long and a short level that make two', () => {
    // The Philips chest CT rotated 5 deg about its long axis: T5 1.32, T4 0.76 of the trend.
    expect(irregularLevels([1.07, 1.02, 0.97, 0.96, 0.98, 0.99, 1.32, 0.76, 0.96, 1.03, 1.0])).toEqual(Array(11).fill(false));
    expect(irregularLevels([1, 0.68, 1.38, 1])).toEqual([false, false, false, false]);
    // Leaning 3 deg to one side: two such pairs in a row (T8 1.26 with T7 0.66, T6 1.27 with T5 0.69).
    expect(irregularLevels([1.02, 0.85, 0.99, 1.26, 0.66, 1.27, 0.69, 1.02, 1.0])).toEqual(Array(9).fill(false));
  });

  it('still flags a long and short pair that makes more or less than two levels, or lies beside a third', () => {
    // A long level beside one so short that the two make 1.75 levels, not two (a fracture beside a long level).
    expect(irregularLevels([1, 1.3, 0.45, 1])).toEqual([false, true, true, false]);
    // Three irregular levels in a row: the pair's sum says nothing.
    expect(irregularLevels([1, 1.3, 0.7, 1.3, 1])).toEqual([false, true, true, true, false]);
    // Nor a regular level paired with the irregular level on each side of it (three levels making 3.4).
    expect(irregularLevels([1, 1.3, 0.8, 1.3, 1])).toEqual([false, false, false, true, false]);
  });

  it('leaves levels cut by the scan (NaN) unflagged', () => {
    expect(irregularLevels([NaN, 1.4, 0.6, NaN])).toEqual([false, false, false, false]);
  });
});
