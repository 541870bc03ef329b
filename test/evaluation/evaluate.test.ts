import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EvalRow } from '../../src/research/evaluation/collect.js';
import { acceptanceChecks, evaluateRows, evaluationMarkdown, writeEvaluation } from '../../src/research/evaluation/evaluate.js';
import { methodStats } from '../../src/research/evaluation/method-stats.js';

function row(i: number, reference: number, model: number, geometric: number, extra: Partial<EvalRow> = {}): EvalRow {
  return {
    caseId: `phantom:seed=${900000 + (i >> 3)}`, level: 'L1', calibration: 'site', calibrationMethod: 'phantom', reference, geometric, model, reported: model,
    regression: model, probabilities: { normal: reference > 120 ? 0.9 : 0.05, osteopenia: 0.05, osteoporosis: reference < 80 ? 0.9 : 0.05 },
    included: true, exclusionReason: null, lesion: null, fracture: false, contrast: false, ...extra,
  };
}

describe('methodStats', () => {
  it('gives perfect agreement for identical values', () => {
    const ref = [50, 70, 90, 110, 130, 150];
    const s = methodStats(ref, ref, null, { resamples: 200 });
    expect(s.spearman.value).toBe(1);
    expect(s.maeMgCm3.value).toBe(0);
    expect(s.biasMgCm3.value).toBe(0);
    expect(s.loaLowerMgCm3.value).toBe(0);
    expect(s.aucOsteoporosis.value).toBe(1);
    expect(s.aucLowBmd.value).toBe(1);
    expect(s.accuracy.value).toBe(1);
    expect(s.confusion).toEqual([[2, 0, 0], [0, 2, 0], [0, 0, 2]]);
  });

  it('gives a constant offset as bias with zero-width limits', () => {
    const ref = [50, 70, 90, 110, 130, 150];
    const s = methodStats(ref, ref.map((v) => v + 5), null, { resamples: 200 });
    expect(s.biasMgCm3.value).toBeCloseTo(5, 10);
    expect(s.loaUpperMgCm3.value).toBeCloseTo(5, 10);
    expect(s.maeMgCm3.value).toBeCloseTo(5, 10);
    // 80 + 5 and 120 + 5: the reference 70 reads 75 (still osteoporosis); 110 reads 115 (still osteopenia).
    expect(s.accuracy.value).toBe(1);
  });
});

describe('evaluateRows and the acceptance checks', () => {
  const rows: EvalRow[] = [];
  for (let i = 0; i < 320; i++) {
    const ref = 40 + (i * 37) % 160;
    const lesion = i % 10 === 0;
    // Model within +-2; geometric misses lesions by +60 (a blastic focus in its ROI).
    rows.push(row(i, ref, ref + ((i % 5) - 2), ref + ((i % 3) - 1) + (lesion ? 60 : 0), lesion ? { lesion: 'blastic' } : {}));
  }
  rows.push(row(999, 100, 130, 100, { contrast: true }));
  const res = evaluateRows(rows, 'site', { resamples: 200 });

  it('computes the same vertebrae for every method, subsets and the disagreement percentiles', () => {
    const main = res.subsets[0];
    expect(main.rows).toBe(320);
    expect(main.methods.model!.n).toBe(320);
    expect(main.methods.geometric!.n).toBe(320);
    expect(res.subsets.find((s) => s.name === 'lesion-bearing')!.rows).toBe(32);
    expect(res.subsets.find((s) => s.name === 'contrast-enhanced')!.rows).toBe(1);
    expect(res.disagreementP95MgCm3).toBeLessThanOrEqual(3);
  });

  it('says which acceptance points hold', () => {
    const checks = acceptanceChecks([res]);
    const byWhat = Object.fromEntries(checks.map((c) => [c.what, c.holds]));
    expect(byWhat['model Spearman r']).toBe(true);
    expect(byWhat['model better than geometric ROI on lesion-bearing levels (MAE)']).toBe(true);
    expect(checks[0].holds).toBe(false); // no fracture rows in this set
  });

  it('writes the table, JSON, rows and plots', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vbmd-eval-'));
    try {
      const e = { model: { name: 'fake', version: '0', sha256: 'f'.repeat(64) }, set: 'test', generatedAt: 'now', bootstrapResamples: 200, results: [res], acceptance: acceptanceChecks([res]) };
      const files = await writeEvaluation(dir, e, rows);
      expect(new Set(await readdir(dir))).toEqual(new Set(files));
      expect(files).toContain('roc-osteoporosis-site.svg');
      expect(files).toContain('bland-altman-model-site-lesion.svg');
      const svg = await readFile(join(dir, 'scatter-site.svg'), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.match(/<circle/g)!.length).toBe(2 * 320);
      expect(evaluationMarkdown(e)).toContain('| model (mean over predicted ROI) | 320 |');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
