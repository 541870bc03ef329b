import { describe, expect, it } from 'vitest';
import { scanGoesOnAbove } from '../../src/bmd/spine/locate.js';
import type { Centerline } from '../../src/bmd/spine/centerline.js';
import type { Volume } from '../../src/imaging/volume.js';

/** 20 x 20 x 100 voxels of 1 mm, z from 0 (first slice) to 99 mm. */
const volume: Volume = {
  hu: new Int16Array(20 * 20 * 100),
  dims: [20, 20, 100],
  spacingMm: [1, 1, 1],
  originMm: [0, 0, 0],
  direction: [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ],
};

/** A straight column up the middle of the volume, from z = 5 mm to `topMm`. */
function column(topMm: number): Centerline {
  const n = Math.round(topMm - 5) + 1;
  const pointMm = new Float64Array(3 * n);
  for (let s = 0; s < n; s++) pointMm.set([10, 10, 5 + s], 3 * s);
  const along = (v: [number, number, number]): Float64Array => Float64Array.from({ length: 3 * n }, (_, i) => v[i % 3]);
  return { n, stepMm: 1, pointMm, tangent: along([0, 0, 1]), lr: along([1, 0, 0]), ap: along([0, 1, 0]) };
}

describe('where the column ends', () => {
  it('tells a column lost inside the scan from one that reaches the top of it', () => {
    expect(scanGoesOnAbove(volume, column(60))).toBe(true);
    // Within half a level (15 mm) of the top slice: the scan's edge, not a lost track.
    expect(scanGoesOnAbove(volume, column(90))).toBe(false);
  });
});
