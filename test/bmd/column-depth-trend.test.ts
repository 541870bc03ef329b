import { describe, expect, it } from 'vitest';
import { depthTrendPerMm, shallowerCaudally } from '../../src/bmd/spine/column-depth-trend.js';

/** Levels every `stepMm` along the column (caudal first) with the given depths. */
const column = (depthsMm: number[], stepMm = 25) => depthsMm.map((depthMm, k) => ({ sMm: k * stepMm, depthMm }));

describe('the column depth trend (is it a spine?)', () => {
  it('accepts bodies that grow deeper caudally, and a lumbar column of even depth', () => {
    // L3 up to T4: 33 -> 20 mm.
    const spine = column([33, 32, 31, 30, 28, 27, 26, 24, 23, 22, 21, 20]);
    expect(depthTrendPerMm(spine)).toBeLessThan(0);
    expect(shallowerCaudally(spine)).toBe(false);
    expect(shallowerCaudally(column([31, 33, 32, 31, 33, 32], 35))).toBe(false);
  });

  it('flags a column whose bodies grow shallower caudally (a track on the aorta, AMOS 0336 cropped on the heart)', () => {
    const track = column([12, 12, 12, 13, 12, 15, 19, 16, 17, 15, 17, 17, 15, 15, 29, 37, 36, 37], 20);
    expect(depthTrendPerMm(track)).toBeGreaterThan(0.02);
    expect(shallowerCaudally(track)).toBe(true);
  });

  it('does not judge a column too short to show a trend', () => {
    expect(depthTrendPerMm(column([15, 20, 25, 30], 30))).toBeNull();
    expect(shallowerCaudally(column([15, 40], 200))).toBe(false);
  });
});
