import { describe, expect, it } from 'vitest';
import {
  averageRanks, blandAltman, bootstrapCi, confusionMatrix, meanAbsoluteError, pearson, rocAuc, rocCurve, spearman,
} from '../../src/research/evaluation/metrics.js';

describe('rank statistics', () => {
  it('gives tied values their average rank', () => {
    expect(averageRanks([10, 20, 20, 30])).toEqual([1, 2.5, 2.5, 4]);
    expect(averageRanks([5, 5, 5])).toEqual([2, 2, 2]);
  });

  it('computes Spearman with ties as Pearson of average ranks', () => {
    // x ranks [1, 2.5, 2.5, 4], y ranks [1, 2, 3, 4]: r = 4.5 / sqrt(4.5 * 5) = 0.948683...
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(0.9486833, 6);
    expect(spearman([1, 2, 3, 4], [10, 100, 1000, 10000])).toBe(1);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBe(-1);
  });

  it('says correlation is undefined for a constant sample', () => {
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(spearman([7, 7, 7], [1, 2, 3])).toBeNaN();
  });

  it('matches a hand-computed Pearson r', () => {
    // x=[1,2,3], y=[2,4,5]: sxy=3, sxx=2, syy=4.6667 -> r = 3/sqrt(9.3333) = 0.98198
    expect(pearson([1, 2, 3], [2, 4, 5])).toBeCloseTo(0.981981, 5);
  });
});

describe('agreement', () => {
  it('computes MAE and Bland-Altman bias and limits', () => {
    const pred = [102, 98, 105, 95];
    const ref = [100, 100, 100, 100];
    expect(meanAbsoluteError(pred, ref)).toBe(3.5);
    const ba = blandAltman(pred, ref);
    expect(ba.bias).toBe(0);
    // differences 2,-2,5,-5: sample SD = sqrt(58/3)
    expect(ba.sd).toBeCloseTo(Math.sqrt(58 / 3), 10);
    expect(ba.upperLoa).toBeCloseTo(1.96 * Math.sqrt(58 / 3), 10);
    expect(ba.lowerLoa).toBeCloseTo(-1.96 * Math.sqrt(58 / 3), 10);
  });
});

describe('ROC', () => {
  it('is 1 for a perfect score, 0 for a reversed one, 0.5 for a constant one', () => {
    const pos = [true, true, false, false];
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], pos)).toBe(1);
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], pos)).toBe(0);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], pos)).toBe(0.5);
  });

  it('counts ties between classes as one half', () => {
    // pairs (pos,neg): (3,1) win, (3,2) win, (2,1) win, (2,2) tie -> (3 + 0.5)/4
    expect(rocAuc([3, 2, 1, 2], [true, true, false, false])).toBe(0.875);
  });

  it('is undefined with one class only, and the curve runs from (0,0) to (1,1)', () => {
    expect(rocAuc([1, 2], [true, true])).toBeNaN();
    const curve = rocCurve([0.9, 0.4, 0.3], [true, false, true]);
    expect(curve[0]).toMatchObject({ falsePositiveRate: 0, truePositiveRate: 0 });
    expect(curve.at(-1)).toMatchObject({ falsePositiveRate: 1, truePositiveRate: 1 });
  });
});

describe('classification', () => {
  it('builds a 3-class confusion matrix', () => {
    const classes = ['normal', 'osteopenia', 'osteoporosis'] as const;
    const { counts, accuracy } = confusionMatrix(
      ['normal', 'normal', 'osteopenia', 'osteoporosis'],
      ['normal', 'osteopenia', 'osteopenia', 'osteoporosis'],
      classes,
    );
    expect(counts).toEqual([[1, 1, 0], [0, 1, 0], [0, 0, 1]]);
    expect(accuracy).toBe(0.75);
  });
});

describe('bootstrap', () => {
  it('is reproducible for a seed and brackets the statistic', () => {
    const x = Array.from({ length: 50 }, (_, i) => i);
    const meanOf = (idx: readonly number[]) => idx.reduce((s, i) => s + x[i], 0) / idx.length;
    const a = bootstrapCi(x.length, meanOf, { seed: 7, resamples: 500 });
    const b = bootstrapCi(x.length, meanOf, { seed: 7, resamples: 500 });
    expect(a).toEqual(b);
    expect(a.lower).toBeLessThan(24.5);
    expect(a.upper).toBeGreaterThan(24.5);
    // a constant statistic has a zero-width interval
    expect(bootstrapCi(10, () => 3, { resamples: 50 })).toEqual({ lower: 3, upper: 3 });
  });
});
