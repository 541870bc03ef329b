import { describe, expect, it } from 'vitest';
import { MS_PER_YEAR, rateOfChange } from '../../src/trend/rate-of-change.js';
import { declineRate } from '../../cds-hooks/decline-rate.js';
import { rateOfChange as appRate } from '../../smart-app/src/trend.js';

const T0 = Date.parse('2020-01-01T00:00:00Z');
const at = (years: number, v: number) => ({ tMs: T0 + years * MS_PER_YEAR, vbmdMgCm3: v });

describe('rate of change of summary vBMD', () => {
  it('fits only the last three years before the newest result', () => {
    // An old stable value (year 0: 200) is outside the window of the newest (year 6); within it 120 -> 100
    // over 2 years: -10 mg/cm3/yr, -8.33 %/yr of the fitted 120.
    const r = rateOfChange([at(0, 200), at(4, 120), at(5, 110), at(6, 100)])!;
    expect(r.count).toBe(3);
    expect(r.mgCm3PerYear).toBeCloseTo(-10, 9);
    expect(r.percentPerYear).toBeCloseTo((-10 / 120) * 100, 9);
    expect(r.fromMs).toBe(T0 + 4 * MS_PER_YEAR);
  });

  it('is the same number on the CDS card and in the SMART app', () => {
    const pts = [at(0, 131), at(0.8, 127), at(1.9, 118), at(2.7, 104)];
    const card = declineRate(pts.map((p) => ({ effectiveMs: p.tMs, vbmdMgCm3: p.vbmdMgCm3 })))!;
    const app = appRate(pts.map((p, i) => ({ ...p, observationId: `o${i}` })))!;
    expect(card.percentPerYear).toBe(app.percentPerYear);
    expect(card.mgCm3PerYear).toBe(app.mgCm3PerYear);
    expect(app.fastDecline).toBe(app.percentPerYear <= -5);
  });

  it('gives no rate for a non-positive fitted baseline', () => {
    expect(rateOfChange([at(0, 0), at(1, 5)])).toBeNull();
  });
});
