import { describe, expect, it } from 'vitest';
import { locateVertebrae, type SpineLocation } from '../../src/bmd/spine/locate.js';
import { generatePhantom, type Phantom } from '../../src/research/phantom/index.js';

/**
 * Hard phantoms on which the levels went wrong in ways a reader would not err, each kept as it was found in
 * `vbmd eval-phantoms --preset hard --seed 20000` (what each case showed is said in its test).
 */
function located(seed: number): { p: Phantom; loc: SpineLocation; pieceAt: (level: string) => SpineLocation['pieces'][number] | undefined } {
  const p = generatePhantom({ seed, preset: 'hard' });
  const loc = locateVertebrae(p.loaded);
  // The piece whose reported centre lies within 12 mm of the true body centre of `level`.
  const pieceAt = (level: string) => {
    const t = p.truth.levels.find((l) => l.level === level)!;
    return loc.pieces.find((x) => {
      const v = loc.vertebrae.find((y) => y.sFromMm === x.sFrom);
      return v !== undefined && Math.hypot(...v.centerMm.map((c, a) => c - t.centerMm[a])) < 12;
    });
  };
  return { p, loc, pieceAt };
}

const maxConfidence = (loc: SpineLocation): number => Math.max(...loc.vertebrae.map((v) => v.labelConfidence));

describe('levels on hard phantoms', () => {
  it('does not take the bottom of a contrast chest CT (T11-T12 beside the enhanced aorta) for the sacral alae', () => {
    // 20040 (C7-L1, contrast, arms down): at the body's depth the rib heads and the enhanced aorta beside T11
    // and T12 span as wide as the alae. They were taken for the sacrum, left unnamed (two bodies skipped) and
    // every other name moved by four levels.
    const { p, loc, pieceAt } = located(20040);
    expect(loc.pieces.some((x) => x.sacral)).toBe(false);
    expect(loc.anchors.l5).toBeNull();
    expect(loc.warnings.join(' ')).toMatch(/not taken for the sacrum/);
    const covered = p.truth.levels.filter((l) => l.fullyCovered !== false).map((l) => l.level);
    expect(covered).toEqual(expect.arrayContaining(['T11', 'T12']));
    for (const level of covered) expect(pieceAt(level), level).toBeDefined();
    // The anchors left in view do not agree: no name is given with confidence.
    expect(maxConfidence(loc)).toBeLessThan(0.8);
  });

  it('does not read levels as rib-less where a field of view on the heart ends in front of the ribs, and reports every body', () => {
    // 20035 (T1-L5, contrast, small field of view on the heart, 3 mm): beside T8-T11 the field of view ends
    // 25-35 mm behind the body centre, in front of where the ribs cross the lateral band. Those levels read as
    // rib-less, the last-rib count fell on T7 ("T12" at 0.75, every name five levels off) and L1-L4 went unnamed.
    const { loc, pieceAt } = located(20035);
    for (const level of ['T8', 'T9', 'T10', 'T11']) {
      expect(pieceAt(level), level).toBeDefined();
      expect(pieceAt(level)!.bandLeft || pieceAt(level)!.bandRight, level).toBe(false);
    }
    expect(pieceAt('T7')!.name).not.toBe('T12');
    for (const level of ['L1', 'L2', 'L3', 'L4']) expect(pieceAt(level), level).toBeDefined();
    expect(maxConfidence(loc)).toBeLessThan(0.8);
  });

  it('does not read T12 as rib-less when the scan ends above where its twelfth ribs cross the band', () => {
    // 20051 (C7-T12, contrast, 3 mm): the scan ends just below the T12 body; the twelfth ribs, which cross the
    // lateral band 10-13 mm below their body, are out of view. T12 read as rib-less, the last-rib count fell
    // on T11 and outweighed the first rib: every name one level off. That count was then made weak (the rule is
    // unit-tested in spine-levels.test.ts). Since the phantom's pedicles sit where patients have them (pedicleRaise in
    // src/research/phantom/anatomy-vertebra.ts), T12's left rib ends higher and is traced in view: no level below T12 is seen
    // rib-less, so no last-rib count is made at all. Either way the names follow the first rib, uncertain.
    const { loc, pieceAt } = located(20051);
    expect(pieceAt('T12')!.ribDescentInView).toBe(false);
    expect(loc.anchors.t12 === null || /twelfth rib would cross the rib band out of view/.test(loc.warnings.join(' '))).toBe(true);
    for (const level of ['T1', 'T6', 'T11', 'T12']) expect(pieceAt(level)!.name, level).toBe(level);
    expect(maxConfidence(loc)).toBeLessThan(0.8);
  });

  it('finds the lumbar discs where the disc profile reads two periods to every three levels', () => {
    // 20054 (T9-L5, degeneration, small field of view): the profile's period read 23-25 mm over L5-L1, where the
    // levels are 30-37 mm apart. The disc chain, held to it, went through weak peaks at mid-body of L3 and L2 and
    // skipped the discs between them: L2 and L3 were three pieces and the lumbar names a level off. The transverse
    // processes (29-38 mm apart, no rib near) now give the chain its spacing there.
    const { p, loc, pieceAt } = located(20054);
    for (const t of p.truth.levels.filter((l) => l.fullyCovered !== false)) {
      expect(pieceAt(t.level), t.level).toBeDefined();
      expect(pieceAt(t.level)!.name, t.level).toBe(t.level);
    }
    expect(loc.pieces.filter((x) => x.caudalDisc && x.cranialDisc).length).toBe(p.truth.levels.filter((l) => l.fullyCovered !== false).length);
  });
});
