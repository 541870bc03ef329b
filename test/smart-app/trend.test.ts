import { describe, expect, it } from 'vitest';
import type { VbmdStudy } from '../../smart-app/src/model.js';
import { buildTrend, contextReferences, latestByLevel, latestStudy, linearFit, MS_PER_YEAR, rateOfChange, studyForContext } from '../../smart-app/src/trend.js';

const T0 = Date.UTC(2020, 0, 1);
const year = (y: number): number => T0 + y * MS_PER_YEAR;

function study(id: string, tMs: number, vbmd: number | null, levels: [string, number | null, boolean][] = []): VbmdStudy {
  return {
    observationId: id,
    effective: new Date(tMs).toISOString(),
    effectiveMs: tMs,
    vbmdMgCm3: vbmd,
    unit: 'mg/cm3',
    category: 'indeterminate',
    basis: 'lumbar',
    basisText: '',
    levels: levels.map(([level, v, included]) => ({ level, vbmdMgCm3: v, included })),
    summaryLevels: [],
    notes: [],
    uncalibrated: false,
    contrastEnhanced: false,
    status: 'final',
  };
}

describe('linearFit', () => {
  it('recovers an exact line: 150 mg/cm3 falling 10 per year', () => {
    const fit = linearFit([0, 1, 2, 3].map((y) => ({ tMs: year(y), vbmdMgCm3: 150 - 10 * y })));
    expect(fit?.slopePerYear).toBeCloseTo(-10, 10);
    expect(fit?.interceptAtT0).toBeCloseTo(150, 10);
  });

  it('gives the least-squares slope of noisy points (hand-computed)', () => {
    // x = 0,1,2 years; y = 100, 96, 86: mean x 1, mean y 94; Sxy = (-1)(6) + 0 + (1)(-8) = -14; Sxx = 2.
    const fit = linearFit([{ tMs: year(0), vbmdMgCm3: 100 }, { tMs: year(1), vbmdMgCm3: 96 }, { tMs: year(2), vbmdMgCm3: 86 }]);
    expect(fit?.slopePerYear).toBeCloseTo(-7, 10);
    expect(fit?.interceptAtT0).toBeCloseTo(101, 10);
  });

  it('is null for one point or for all points at the same time', () => {
    expect(linearFit([{ tMs: year(0), vbmdMgCm3: 100 }])).toBeNull();
    expect(linearFit([{ tMs: year(0), vbmdMgCm3: 100 }, { tMs: year(0), vbmdMgCm3: 90 }])).toBeNull();
  });
});

describe('rateOfChange', () => {
  const pts = (pairs: [number, number][]) => pairs.map(([y, v], i) => ({ tMs: year(y), vbmdMgCm3: v, observationId: `o${i}` }));

  it('reports mg/cm3/year and %/year relative to the fitted baseline, and flags fast decline', () => {
    const r = rateOfChange(pts([[0, 100], [1, 96], [2, 86]]));
    expect(r?.mgCm3PerYear).toBeCloseTo(-7, 10);
    expect(r?.percentPerYear).toBeCloseTo((-7 / 101) * 100, 10); // -6.93 %/yr
    expect(r?.studies).toBe(3);
    expect(r?.fastDecline).toBe(true);
  });

  it('does not flag a slow decline (-2 %/yr)', () => {
    const r = rateOfChange(pts([[0, 150], [1, 147], [2, 144]]));
    expect(r?.percentPerYear).toBeCloseTo(-2, 10);
    expect(r?.fastDecline).toBe(false);
  });

  it('uses only the last 3 years before the latest study', () => {
    // Stable 200 for years 0-4, then 180 -> 150 over years 5-7: only years >= 4 count.
    const r = rateOfChange(pts([[0, 200], [1, 200], [2, 200], [3, 200], [4, 190], [5, 180], [6, 165], [7, 150]]));
    expect(r?.studies).toBe(4);
    // x = 0..3 from year 4, y = 190,180,165,150: mean x 1.5, mean y 171.25, Sxy = -67.5, Sxx = 5 -> -13.5/yr
    expect(r?.mgCm3PerYear).toBeCloseTo(-13.5, 10);
    expect(r?.fromMs).toBe(year(4));
  });

  it('gives no rate from one study or from studies under half a year apart', () => {
    expect(rateOfChange(pts([[0, 100]]))).toBeNull();
    expect(rateOfChange(pts([[0, 100], [0.3, 80]]))).toBeNull();
    expect(rateOfChange([])).toBeNull();
  });
});

describe('buildTrend / latestByLevel / latestStudy', () => {
  const studies = [
    study('b', year(1), 110, [['L1', 112, true], ['L2', 108, true], ['L3', 40, false]]),
    study('a', year(0), 130, [['T12', 128, true], ['L1', 132, true]]),
    study('c', year(2), null, []),
    study('d', year(3), 95, [['T11', 97, true], ['T12', 93, true]]),
  ];

  it('orders the summary series by date, skips studies without a value and keeps included levels only', () => {
    const t = buildTrend(studies);
    expect(t.summary.map((p) => p.observationId)).toEqual(['a', 'b', 'd']);
    expect(t.summary.map((p) => p.vbmdMgCm3)).toEqual([130, 110, 95]);
    expect(t.withoutValue).toBe(1);
    expect(t.levels.map((l) => l.level)).toEqual(['T11', 'T12', 'L1', 'L2']);
    expect(t.levels.find((l) => l.level === 'T12')?.points.map((p) => p.vbmdMgCm3)).toEqual([128, 93]);
    expect(t.levels.find((l) => l.level === 'L3')).toBeUndefined();
  });

  it('takes each level from its most recent study that measured it', () => {
    expect(latestByLevel(studies).map((l) => [l.level, l.vbmdMgCm3, l.observationId])).toEqual([
      ['T11', 97, 'd'],
      ['T12', 93, 'd'],
      ['L1', 112, 'b'],
      ['L2', 108, 'b'],
    ]);
  });

  it('finds the latest study and the one a launch context names', () => {
    expect(latestStudy(studies)?.observationId).toBe('d');
    expect(latestStudy([])).toBeNull();
    const withRef = [{ ...studies[0], imagingStudy: { reference: 'ImagingStudy/s1' } }, studies[1]];
    expect(studyForContext(withRef, 'ImagingStudy/s1')?.observationId).toBe('b');
    expect(studyForContext(withRef, 'ImagingStudy/zz')).toBeNull();
    expect(studyForContext(withRef, undefined)).toBeNull();
    expect(studyForContext(withRef, ['Observation/nope', 'Observation/a'])?.observationId).toBe('a');
  });

  it('reads context references from fhirContext and a CDS appContext, ignoring junk', () => {
    expect(
      contextReferences({
        fhirContext: [{ reference: 'ImagingStudy/s1' }, { reference: 'Encounter/e1' }, { reference: 42 }, 'x'],
        appContext: JSON.stringify({ observation: 'Observation/o9', other: 'Observation/zz' }),
      }),
    ).toEqual(['ImagingStudy/s1', 'Observation/o9']);
    expect(contextReferences({ appContext: '{not json' })).toEqual([]);
    expect(contextReferences(undefined)).toEqual([]);
  });

  it('handles 0 studies and 10 years of 40 studies', () => {
    expect(buildTrend([]).summary).toEqual([]);
    const many = Array.from({ length: 40 }, (_, i) => study(`s${i}`, year(i / 4), 160 - i));
    const t = buildTrend(many);
    expect(t.summary).toHaveLength(40);
    const r = rateOfChange(t.summary);
    expect(r?.mgCm3PerYear).toBeCloseTo(-4, 8);
  });
});
