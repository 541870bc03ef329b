import type { LevelResult, ReportSummary, VertebraLevel } from './report.js';
import { VERTEBRA_LEVELS, categoryForVbmd } from './report.js';

/**
 * ACR-SPR-SSR practice parameter for QCT (2018): the mean trabecular vBMD of two lumbar vertebrae, L1-L2
 * preferred, classified > 120 normal, 80-120 low BMD, < 80 osteoporosis. Fallbacks, each labelled by basis:
 * another adjacent-most lumbar pair (lumbar); from a chest CT the two most caudal included levels
 * (thoracic-extrapolated: thoracic trabecular BMD runs higher than lumbar, so this is an approximation);
 * one level only (single-level); none (indeterminate).
 */
export function summarize(levels: LevelResult[]): ReportSummary {
  const ok = levels.filter((l) => l.included && l.vbmd !== null);
  const by = new Map<VertebraLevel, LevelResult>(ok.map((l) => [l.level, l]));
  const pair = (a: VertebraLevel, b: VertebraLevel): ReportSummary | null => {
    const la = by.get(a);
    const lb = by.get(b);
    if (!la || !lb) return null;
    const v = round1(((la.vbmd as number) + (lb.vbmd as number)) / 2);
    return { vbmd: v, levels: [a, b], basis: 'lumbar', category: categoryForVbmd(v) };
  };
  const l1l2 = pair('L1', 'L2');
  if (l1l2) return l1l2;
  const lumbar = ok.filter((l) => l.level.startsWith('L')).sort((a, b) => idx(a.level) - idx(b.level));
  if (lumbar.length >= 2) {
    // The most cranial available pair (closest to L1-L2).
    const p = pair(lumbar[0].level, lumbar[1].level);
    if (p) return p;
  }
  const sorted = [...ok].sort((a, b) => idx(a.level) - idx(b.level));
  if (sorted.length >= 2) {
    const a = sorted[sorted.length - 2];
    const b = sorted[sorted.length - 1];
    const v = round1(((a.vbmd as number) + (b.vbmd as number)) / 2);
    const lumbarPair = a.level.startsWith('L') && b.level.startsWith('L');
    return { vbmd: v, levels: [a.level, b.level], basis: lumbarPair ? 'lumbar' : 'thoracic-extrapolated', category: categoryForVbmd(v) };
  }
  if (sorted.length === 1) {
    const v = sorted[0].vbmd as number;
    return { vbmd: v, levels: [sorted[0].level], basis: 'single-level', category: categoryForVbmd(v) };
  }
  return { vbmd: null, levels: [], basis: 'none', category: 'indeterminate' };
}

function idx(l: VertebraLevel): number {
  return VERTEBRA_LEVELS.indexOf(l);
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
