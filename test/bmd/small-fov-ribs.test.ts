import { describe, expect, it } from 'vitest';
import { locateVertebrae } from '../../src/bmd/spine/locate.js';
import { generatePhantom } from '../../src/phantom/index.js';

describe('ribs on a field of view centred on the heart', () => {
  it('does not read levels as rib-less where the field of view ends in front of the ribs, and still reports every body', () => {
    // Hard phantom 20035 (T1-L5, contrast, small field of view on the heart, 3 mm): beside T8-T11 the field of
    // view ends 25-35 mm behind the body centre, in front of where the ribs cross the lateral band. Those levels
    // were read as rib-less, the last-rib count fell on T7 ("T12" at 0.75, every name five levels off) and
    // L1-L4 were left unnamed.
    const p = generatePhantom({ seed: 20035, preset: 'hard' });
    const loc = locateVertebrae(p.loaded);
    const near = (level: string) => {
      const t = p.truth.levels.find((l) => l.level === level)!;
      return loc.pieces.find((x) => {
        const v = loc.vertebrae.find((y) => y.sFromMm === x.sFrom);
        return v && Math.hypot(...v.centerMm.map((c, a) => c - t.centerMm[a])) < 12;
      });
    };
    for (const level of ['T8', 'T9', 'T10', 'T11']) {
      const piece = near(level);
      expect(piece, level).toBeDefined();
      expect(piece!.bandLeft || piece!.bandRight, level).toBe(false);
    }
    expect(near('T7')!.name).not.toBe('T12');
    for (const level of ['L1', 'L2', 'L3', 'L4']) expect(near(level), level).toBeDefined();
    expect(Math.max(...loc.vertebrae.map((v) => v.labelConfidence))).toBeLessThan(0.8);
  });
});
