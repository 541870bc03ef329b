import { describe, expect, it } from 'vitest';
import { evaluateCase, labelStats, summarize, type CaseRecord, type LevelRecord } from '../../src/research/evaluation/eval-phantoms.js';

function level(reported: string, truth: string | null, confidence: number, vbmd = 100, truthVbmd = 102): LevelRecord {
  return { reported: reported as LevelRecord['reported'], truth: truth as LevelRecord['truth'], confidence, included: true, vbmd, geometric: vbmd + 1, defaultCalVbmd: vbmd, truthVbmd: truth ? truthVbmd : null };
}

function record(seed: number, levels: LevelRecord[], over: Partial<CaseRecord> = {}): CaseRecord {
  return {
    seed,
    levelsText: 'T10-L3',
    contrast: false,
    contrastFlagged: false,
    features: [],
    tags: [],
    levels,
    truthBodies: ['T11', 'T12', 'L1', 'L2'],
    skipped: [],
    calibrationMethod: 'phantomless-internal',
    summary: { vbmd: 100, levels: ['L1', 'L2'], category: 'osteopenia' },
    truthSummary: 102,
    analyzeMs: 10,
    ...over,
  };
}

describe('hard-phantom evaluation metrics', () => {
  it('counts confident wrong labels, skipped bodies and per-feature numbers', () => {
    const a = record(1, [level('T11', 'T11', 0.9), level('T12', 'T12', 0.9), level('L1', 'L2', 0.85), level('L2', 'L3', 0.5)], { features: ['girdle'], skipped: ['L1'] });
    const b = record(2, [level('T11', 'T11', 0.95), level('T12', null, 0.3)], { features: ['fractures'], tags: ['fov:full'] });
    const s = labelStats([a, b]);
    expect(s.levelsFound).toBe(6);
    expect(s.correct).toBe(3);
    expect(s.labelAccuracy).toBeCloseTo(0.5, 6);
    expect(s.confident).toBe(4);
    expect(s.confidentWrong).toBe(1);
    expect(s.confidentWrongFraction).toBeCloseTo(0.25, 6);
    expect(s.truthBodies).toBe(8);
    expect(s.skippedBodies).toBe(1);
    const sum = summarize([a, b]);
    expect(sum.byFeature.girdle.labelAccuracy).toBeCloseTo(0.5, 6);
    expect(sum.byFeature.fractures.confidentWrong).toBe(0);
    expect(sum.byFeature['fov:full'].cases).toBe(1);
    // MAE over included levels with a truth match, model value and geometric ROI side by side.
    expect(sum.knownCal.n).toBe(5);
    expect(sum.knownCal.maeMgCm3).toBeCloseTo(2, 6);
    expect(sum.knownCalGeometric.maeMgCm3).toBeCloseTo(1, 6);
  });

  it('evaluates one hard study end to end: every truth body either found or listed as skipped', async () => {
    const r = await evaluateCase(20701, 'hard', 160, null);
    expect(r.features.length).toBeGreaterThan(0);
    expect(r.tags).toEqual(expect.arrayContaining([expect.stringMatching(/^range:/), expect.stringMatching(/^fov:/)]));
    expect(r.truthBodies.length).toBeGreaterThan(3);
    for (const s of r.skipped) expect(r.truthBodies).toContain(s);
    for (const l of r.levels) {
      expect(l.confidence).toBeGreaterThanOrEqual(0);
      expect(l.confidence).toBeLessThanOrEqual(1);
    }
  }, 120_000);
});
