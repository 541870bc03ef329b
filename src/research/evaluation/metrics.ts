import { mulberry32 } from '../../util/prng.js';
/**
 * Agreement and diagnostic-accuracy statistics for vBMD against a reference (QCT or phantom truth), the
 * table of Wang et al. 2024 (J Bone Oncol, doi 10.1016/j.jbo.2024.100641, "Statistical analysis"):
 * Spearman and Pearson correlation, mean absolute error, Bland-Altman bias with 95% limits of agreement,
 * ROC AUC for a threshold class, and a 3-class confusion matrix. Pure functions over plain number arrays.
 */

function assertPaired(a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length) throw new RangeError(`paired samples differ in length (${a.length} vs ${b.length})`);
}

function mean(x: readonly number[]): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

/** Ranks 1..n with ties given their average rank (the usual convention for Spearman's rho). */
export function averageRanks(x: readonly number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
  const ranks = new Array<number>(x.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1][0] === order[start][0]) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[order[k][1]] = rank;
    start = end + 1;
  }
  return ranks;
}

/** Pearson's r; NaN when either sample has no variance (correlation is undefined, not 0). */
export function pearson(a: readonly number[], b: readonly number[]): number {
  assertPaired(a, b);
  if (a.length < 2) return Number.NaN;
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa === 0 || sbb === 0 ? Number.NaN : sab / Math.sqrt(saa * sbb);
}

/** Spearman's rho = Pearson's r of the average ranks (correct with ties, unlike 1 - 6Σd²/n(n²-1)). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  assertPaired(a, b);
  return pearson(averageRanks(a), averageRanks(b));
}

export function meanAbsoluteError(predicted: readonly number[], reference: readonly number[]): number {
  assertPaired(predicted, reference);
  let s = 0;
  for (let i = 0; i < predicted.length; i++) s += Math.abs(predicted[i] - reference[i]);
  return s / predicted.length;
}

export interface BlandAltman {
  /** mean of (predicted - reference) */
  bias: number;
  sd: number;
  /** bias -/+ 1.96 SD (Bland & Altman, Lancet 1986) */
  lowerLoa: number;
  upperLoa: number;
}

export function blandAltman(predicted: readonly number[], reference: readonly number[]): BlandAltman {
  assertPaired(predicted, reference);
  const d = predicted.map((p, i) => p - reference[i]);
  const bias = mean(d);
  let ss = 0;
  for (const v of d) ss += (v - bias) ** 2;
  const sd = d.length > 1 ? Math.sqrt(ss / (d.length - 1)) : 0;
  return { bias, sd, lowerLoa: bias - 1.96 * sd, upperLoa: bias + 1.96 * sd };
}

/**
 * Area under the ROC curve = P(score of a positive > score of a negative) + 0.5 P(tie), the Mann-Whitney
 * form, exact with ties. Higher score = more likely positive. NaN when one class is empty.
 */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number {
  assertPaired(scores, positive.map(Number));
  const ranks = averageRanks(scores);
  let nPos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < scores.length; i++) {
    if (positive[i]) {
      nPos++;
      rankSumPos += ranks[i];
    }
  }
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface RocPoint {
  threshold: number;
  falsePositiveRate: number;
  truePositiveRate: number;
}

/** ROC curve points from the strictest to the loosest threshold (for plots). */
export function rocCurve(scores: readonly number[], positive: readonly boolean[]): RocPoint[] {
  const nPos = positive.filter(Boolean).length;
  const nNeg = positive.length - nPos;
  const thresholds = [...new Set(scores)].sort((x, y) => y - x);
  const points: RocPoint[] = [{ threshold: Number.POSITIVE_INFINITY, falsePositiveRate: 0, truePositiveRate: 0 }];
  for (const t of thresholds) {
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < scores.length; i++) {
      if (scores[i] >= t) {
        if (positive[i]) tp++;
        else fp++;
      }
    }
    points.push({ threshold: t, falsePositiveRate: nNeg ? fp / nNeg : 0, truePositiveRate: nPos ? tp / nPos : 0 });
  }
  return points;
}

/** counts[truth][predicted] over the given class labels. */
export function confusionMatrix<C extends string>(
  truth: readonly C[],
  predicted: readonly C[],
  classes: readonly C[],
): { counts: number[][]; accuracy: number } {
  if (truth.length !== predicted.length) throw new RangeError('truth and predicted differ in length');
  const index = new Map(classes.map((c, i) => [c, i]));
  const counts = classes.map(() => classes.map(() => 0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = index.get(truth[i]);
    const p = index.get(predicted[i]);
    if (t === undefined || p === undefined) throw new RangeError(`unknown class at ${i}`);
    counts[t][p]++;
    if (t === p) correct++;
  }
  return { counts, accuracy: truth.length ? correct / truth.length : Number.NaN };
}

// Seeded (src/util/prng.ts) so bootstrap intervals are reproducible run to run.

/**
 * Percentile bootstrap 95% CI of a statistic over paired cases (Efron & Tibshirani 1993, ch. 13), resampling
 * case indices with replacement. Resamples where the statistic is undefined (NaN) are dropped.
 */
export function bootstrapCi(
  n: number,
  statistic: (indices: readonly number[]) => number,
  options: { resamples?: number; seed?: number; level?: number } = {},
): { lower: number; upper: number } {
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  const rand = mulberry32(options.seed ?? 1);
  const values: number[] = [];
  const idx = new Array<number>(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    const v = statistic(idx);
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return { lower: Number.NaN, upper: Number.NaN };
  values.sort((x, y) => x - y);
  const q = (p: number): number => values[Math.min(values.length - 1, Math.max(0, Math.round(p * (values.length - 1))))];
  const alpha = (1 - level) / 2;
  return { lower: q(alpha), upper: q(1 - alpha) };
}
