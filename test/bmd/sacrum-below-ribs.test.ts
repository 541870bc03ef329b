import { describe, expect, it } from 'vitest';
import { locateVertebrae } from '../../src/bmd/spine/locate.js';
import { generatePhantom } from '../../src/phantom/index.js';

describe('the sacrum is not found under the ribs', () => {
  it('does not take the bottom of a contrast chest CT (T11-T12 beside the enhanced aorta) for the sacral alae', () => {
    // Hard phantom 20040 (C7-L1, contrast, arms down): at the body's depth the rib heads and the enhanced aorta
    // beside T11 and T12 span as wide as the alae. They were taken for the sacrum, left unnamed (two bodies
    // skipped) and every other name moved by four levels.
    const p = generatePhantom({ seed: 20040, preset: 'hard' });
    const loc = locateVertebrae(p.loaded);
    expect(loc.pieces.some((x) => x.sacral)).toBe(false);
    expect(loc.anchors.l5).toBeNull();
    expect(loc.warnings.join(' ')).toMatch(/not taken for the sacrum/);
    // Every fully covered body has a reported centre within 15 mm of its own.
    const covered = p.truth.levels.filter((l) => l.fullyCovered !== false);
    expect(covered.map((l) => l.level)).toEqual(expect.arrayContaining(['T11', 'T12']));
    for (const t of covered) {
      const nearest = Math.min(...loc.vertebrae.map((v) => Math.hypot(...v.centerMm.map((c, a) => c - t.centerMm[a]))));
      expect(nearest, t.level).toBeLessThan(15);
    }
    // And no name is given with confidence: the anchors in view do not agree.
    expect(Math.max(...loc.vertebrae.map((v) => v.labelConfidence))).toBeLessThan(0.8);
  });
});
