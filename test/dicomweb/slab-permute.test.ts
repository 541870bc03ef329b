import { describe, expect, it } from 'vitest';
import { permuteSlabsInPlace } from '../../src/dicom/dicomweb/slab-permute.js';

describe('permuteSlabsInPlace', () => {
  it('puts every slab where the permutation says, for cycles, fixed points and reversal', () => {
    for (const target of [[0, 1, 2, 3], [3, 2, 1, 0], [1, 2, 0, 4, 3], [2, 0, 1, 3, 5, 4, 6], [0]]) {
      const slab = 3;
      const data = new Float32Array(target.length * slab);
      for (let a = 0; a < target.length; a++) data.fill(a + 0.5, a * slab, (a + 1) * slab);
      permuteSlabsInPlace(data, slab, target);
      for (let a = 0; a < target.length; a++) {
        expect(Array.from(data.subarray(target[a] * slab, (target[a] + 1) * slab))).toEqual([a + 0.5, a + 0.5, a + 0.5]);
      }
    }
  });

  it('rejects a target that is not a permutation', () => {
    expect(() => permuteSlabsInPlace(new Float32Array(6), 2, [0, 0, 1])).toThrow(/not a permutation/);
    expect(() => permuteSlabsInPlace(new Float32Array(6), 2, [0, 1, 3])).toThrow(/not a permutation/);
  });
});
