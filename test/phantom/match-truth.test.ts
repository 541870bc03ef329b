import { describe, expect, it } from 'vitest';
import { truthLevelNear } from '../../src/research/phantom/match-truth.js';
import type { PhantomTruth } from '../../src/research/phantom/types.js';

const truth = { levels: [{ level: 'L1', centerMm: [0, 0, 100] }, { level: 'L2', centerMm: [0, 0, 70] }] } as unknown as PhantomTruth;

describe('truthLevelNear', () => {
  it('matches by position, nearest body within 15 mm', () => {
    expect(truthLevelNear(truth, [1, 2, 88])?.level).toBe('L1');
    expect(truthLevelNear(truth, [0, 0, 80])?.level).toBe('L2');
    expect(truthLevelNear(truth, [0, 0, 40])).toBeNull();
  });
});
