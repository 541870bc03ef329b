import { describe, expect, it } from 'vitest';
import { analyzeVolume } from '../../src/bmd/analyze.js';
import { generatePhantom } from '../../src/research/phantom/generate.js';

/**
 * The Genant screen on phantoms with a known wedge: the fractured level and only it is called, an intact
 * spine has no call, and slices too thick to grade heights give a warning instead of a guess.
 */
describe('vertebral fracture screen', () => {
  const analyse = (seed: number, sliceThicknessMm: number, fractures: { level: 'L1' | 'T12'; heightLossFraction: number }[]) =>
    analyzeVolume(generatePhantom({ seed, levels: 'T10-L4', size: 192, sliceThicknessMm, fractures }).loaded);

  it('calls a 31% anterior wedge of L1 at 1.5 mm slices, and no other level', () => {
    const r = analyse(23, 1.5, [{ level: 'L1', heightLossFraction: 0.31 }]);
    const called = r.levels.filter((l) => l.exclusionReason === 'fracture').map((l) => l.level);
    expect(called).toEqual(['L1']);
    const l1 = r.levels.find((l) => l.level === 'L1')!;
    expect(1 - l1.heightsMm!.anterior / l1.heightsMm!.posterior).toBeGreaterThan(0.2);
  });

  it('calls nothing on an intact spine, whose measured heights stay under the 20% grade-1 cut-off', () => {
    const r = analyse(24, 1.5, []);
    expect(r.levels.filter((l) => l.exclusionReason === 'fracture')).toEqual([]);
    const measured = r.levels.filter((l) => l.heightsMm);
    expect(measured.length).toBeGreaterThanOrEqual(3);
    for (const l of measured) expect(Math.abs(1 - l.heightsMm!.anterior / l.heightsMm!.posterior), l.level).toBeLessThan(0.2);
  });

  it('does not grade heights on 5 mm slices, and says so', () => {
    const r = analyse(25, 5, [{ level: 'L1', heightLossFraction: 0.37 }]);
    expect(r.levels.filter((l) => l.exclusionReason === 'fracture')).toEqual([]);
    expect(r.qc.warnings.some((w) => /too coarse to grade vertebral height loss/.test(w))).toBe(true);
  });
});
