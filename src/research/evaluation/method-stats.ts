import { categoryForVbmd } from '../../bmd/report.js';
import { CLASS_ORDER } from '../../model/contract.js';
import type { ClassProbabilities } from '../../model/infer-levels.js';
import { blandAltman, bootstrapCi, confusionMatrix, meanAbsoluteError, pearson, rocAuc, spearman } from './metrics.js';

/** A statistic with its percentile-bootstrap 95% CI. */
export interface WithCi {
  value: number;
  lower: number;
  upper: number;
}

/**
 * One method's row of the paper's table (Wang et al. 2024, "Statistical analysis"): agreement with the
 * reference and diagnostic accuracy at the ACR thresholds (ACR-SPR-SSR QCT practice parameter 2018:
 * osteoporosis < 80, low BMD <= 120 mg/cm3).
 */
export interface MethodStats {
  n: number;
  spearman: WithCi;
  pearson: WithCi;
  maeMgCm3: WithCi;
  biasMgCm3: WithCi;
  sdMgCm3: number;
  loaLowerMgCm3: WithCi;
  loaUpperMgCm3: WithCi;
  /** Score = -vBMD (lower density, more likely osteoporotic). */
  aucOsteoporosis: WithCi;
  aucLowBmd: WithCi;
  /** Model only: AUC of the class head's P(osteoporosis), and of P(osteopenia) + P(osteoporosis) for low BMD. */
  aucOsteoporosisClassHead?: WithCi;
  aucLowBmdClassHead?: WithCi;
  /** counts[truth][measured] in CLASS_ORDER, classes from the vBMD value and ACR thresholds. */
  confusion: number[][];
  accuracy: WithCi;
  /** Model only: the class head's argmax against the reference class. */
  classHeadConfusion?: number[][];
  classHeadAccuracy?: WithCi;
}

export const OSTEOPOROSIS_BELOW_MG_CM3 = 80;
export const LOW_BMD_AT_MOST_MG_CM3 = 120;

type Cls = (typeof CLASS_ORDER)[number];

function cls(v: number): Cls {
  const c = categoryForVbmd(v);
  if (c === 'indeterminate') throw new RangeError(`vBMD ${v} has no category`);
  return c;
}

function argmax(p: ClassProbabilities): Cls {
  let best: Cls = CLASS_ORDER[0];
  for (const c of CLASS_ORDER) if (p[c] > p[best]) best = c;
  return best;
}

export interface StatsOptions {
  resamples?: number;
  seed?: number;
}

/**
 * Agreement and accuracy of `measured` against `reference` (paired, mg/cm3), with bootstrap CIs over
 * vertebrae (resampling the same indices for every statistic of a method: same seed).
 */
export function methodStats(
  reference: readonly number[],
  measured: readonly number[],
  probabilities: readonly ClassProbabilities[] | null = null,
  options: StatsOptions = {},
): MethodStats {
  const n = reference.length;
  const boot = { resamples: options.resamples ?? 1000, seed: options.seed ?? 20240641 };
  const pick = <T>(a: readonly T[], idx: readonly number[]): T[] => idx.map((i) => a[i]);
  const ci = (whole: number, stat: (idx: readonly number[]) => number): WithCi => ({ value: whole, ...bootstrapCi(n, stat, boot) });
  const all = reference.map((_, i) => i);
  const stat = (f: (ref: number[], m: number[], p: ClassProbabilities[] | null) => number) => (idx: readonly number[]) =>
    f(pick(reference, idx), pick(measured, idx), probabilities ? pick(probabilities, idx) : null);
  const sp = stat((r, m) => spearman(m, r));
  const pe = stat((r, m) => pearson(m, r));
  const mae = stat((r, m) => meanAbsoluteError(m, r));
  const bias = stat((r, m) => blandAltman(m, r).bias);
  const lo = stat((r, m) => blandAltman(m, r).lowerLoa);
  const hi = stat((r, m) => blandAltman(m, r).upperLoa);
  const aucOp = stat((r, m) => rocAuc(m.map((v) => -v), r.map((v) => v < OSTEOPOROSIS_BELOW_MG_CM3)));
  const aucLow = stat((r, m) => rocAuc(m.map((v) => -v), r.map((v) => v <= LOW_BMD_AT_MOST_MG_CM3)));
  const acc = stat((r, m) => confusionMatrix(r.map(cls), m.map(cls), CLASS_ORDER).accuracy);
  const ba = blandAltman(measured, reference);
  const out: MethodStats = {
    n,
    spearman: ci(sp(all), sp),
    pearson: ci(pe(all), pe),
    maeMgCm3: ci(mae(all), mae),
    biasMgCm3: ci(ba.bias, bias),
    sdMgCm3: ba.sd,
    loaLowerMgCm3: ci(ba.lowerLoa, lo),
    loaUpperMgCm3: ci(ba.upperLoa, hi),
    aucOsteoporosis: ci(aucOp(all), aucOp),
    aucLowBmd: ci(aucLow(all), aucLow),
    confusion: confusionMatrix(reference.map(cls), measured.map(cls), CLASS_ORDER).counts,
    accuracy: ci(acc(all), acc),
  };
  if (probabilities) {
    const pOp = stat((r, _m, p) => rocAuc(p!.map((x) => x.osteoporosis), r.map((v) => v < OSTEOPOROSIS_BELOW_MG_CM3)));
    const pLow = stat((r, _m, p) => rocAuc(p!.map((x) => x.osteoporosis + x.osteopenia), r.map((v) => v <= LOW_BMD_AT_MOST_MG_CM3)));
    const pAcc = stat((r, _m, p) => confusionMatrix(r.map(cls), p!.map(argmax), CLASS_ORDER).accuracy);
    out.aucOsteoporosisClassHead = ci(pOp(all), pOp);
    out.aucLowBmdClassHead = ci(pLow(all), pLow);
    out.classHeadConfusion = confusionMatrix(reference.map(cls), probabilities.map(argmax), CLASS_ORDER).counts;
    out.classHeadAccuracy = ci(pAcc(all), pAcc);
  }
  return out;
}
