import { describe, expect, it } from 'vitest';
import { ribsAtCaudalEdge, traceRibs, traceShortRibs } from '../../src/bmd/spine/ribs.js';
import type { StraightSpine } from '../../src/bmd/spine/straighten.js';

/**
 * A straightened chest at 1 mm: muscle (40 HU), rib pairs every 25 mm that leave the spine 25 mm out and descend
 * 0.15 mm per mm laterally (400 HU, 6 mm thick, 10-30 mm behind the body centre), and optionally a scapula's
 * medial border: a 5 mm bright stripe (500 HU) crossing the rib band (58-72 mm out) obliquely over 60 mm of s,
 * between and over the ribs, as it does beside T2-T5 (it lies lateral to the ribs' path to the spine).
 */
function chest(withScapula: boolean): StraightSpine {
  const ns = 200;
  const nu = 101;
  const nv = 161;
  const hu = new Float32Array(ns * nu * nv).fill(40);
  const set = (s: number, u: number, v: number, h: number): void => {
    if (s >= 0 && s < ns) hu[v + 80 + nv * (u + 40 + nu * s)] = Math.max(hu[v + 80 + nv * (u + 40 + nu * s)], h);
  };
  const ribsAt = [40, 65, 90, 115, 140, 165];
  for (const s0 of ribsAt) {
    for (let a = 25; a <= 80; a++) {
      const sc = Math.round(s0 - 0.15 * (a - 25));
      for (let ds = -3; ds <= 3; ds++) for (let u = 10; u <= 30; u++) for (const side of [1, -1]) set(sc + ds, u, side * a, 400);
    }
  }
  if (withScapula) {
    for (let s = 70; s <= 130; s++) {
      const centre = 61 + (s - 70) * 0.4; // 61 -> 85 mm out over 60 mm of s
      for (let a = Math.round(centre - 2); a <= Math.round(centre + 2); a++) for (let u = 25; u <= 50; u++) for (const side of [1, -1]) set(s, u, side * a, 500);
    }
  }
  return { hu, ns, nu, nv, uMinMm: -40, vMinMm: -80, stepMm: 1 };
}

describe('rib tracing on the straightened spine', () => {
  it('finds every rib of both sides on a plain chest', () => {
    const ribs = traceRibs(chest(false));
    expect(ribs.filter((r) => r.side === 'left')).toHaveLength(6);
    expect(ribs.filter((r) => r.side === 'right')).toHaveLength(6);
  });

  it('still finds the ribs that the scapula crosses in the band', () => {
    const ribs = traceRibs(chest(true));
    for (const side of ['left', 'right'] as const) {
      const crossings = ribs.filter((r) => r.side === side).map((r) => r.crossingS);
      expect(crossings).toHaveLength(6);
      for (const s0 of [90, 115]) expect(crossings.some((c) => Math.abs(c - (s0 - 0.15 * 40)) <= 4)).toBe(true);
    }
  });
});

describe('ribs that run out of the scan', () => {
  /** The plain chest with the scan ending at s = 165, through the neck of the top rib pair (leaving the spine at 165). */
  function cutAbove(): StraightSpine {
    const st = chest(false);
    st.hu.fill(NaN, 165 * st.nu * st.nv);
    return st;
  }

  it('marks the ribs whose climb to the spine meets the scan\'s top, and only those', () => {
    const ribs = traceRibs(cutAbove());
    const top = ribs.filter((r) => r.crossingS > 150);
    expect(top.map((r) => r.side).sort()).toEqual(['left', 'right']);
    expect(top.every((r) => r.runsOutOfScan)).toBe(true);
    expect(ribs.filter((r) => r.crossingS < 150 && r.runsOutOfScan)).toEqual([]);
  });

  it('marks none on a chest the scan covers', () => {
    expect(traceRibs(chest(false)).some((r) => r.runsOutOfScan)).toBe(false);
  });
});

describe('ribs cut off by the scan\'s caudal edge', () => {
  /** The plain chest with the scan starting at s = cutS (nothing below it). */
  function cutBelow(cutS: number): StraightSpine {
    const st = chest(false);
    st.hu.fill(NaN, 0, cutS * st.nu * st.nv);
    return st;
  }

  it('finds the lowest rib pair where the scan\'s edge cuts its crossing of the band, which the tracer cannot take', () => {
    // The lowest pair leaves the spine at s = 40 and crosses the band (58-72 mm out) at s 30-38.
    const st = cutBelow(32);
    expect(traceRibs(st).some((r) => r.crossingS < 45)).toBe(false);
    const edge = ribsAtCaudalEdge(st);
    expect(edge.map((r) => r.side).sort()).toEqual(['left', 'right']);
    for (const r of edge) expect(r.s).toBeGreaterThanOrEqual(32);
    for (const r of edge) expect(r.s).toBeLessThanOrEqual(37);
  });

  it('finds none where the lowest crossing is whole in view, or the edge cuts only an intercostal space', () => {
    expect(ribsAtCaudalEdge(chest(false))).toEqual([]);
    expect(ribsAtCaudalEdge(cutBelow(20))).toEqual([]);
    expect(ribsAtCaudalEdge(cutBelow(45))).toEqual([]);
  });
});

describe('short first ribs', () => {
  /** The plain chest with one more rib pair above, at s = 190, that turns forward 60 mm out (out of the slab). */
  function withShortFirstRib(): StraightSpine {
    const st = chest(false);
    const set = (s: number, u: number, v: number): void => {
      st.hu[v + 80 + st.nv * (u + 40 + st.nu * s)] = 400;
    };
    for (let a = 25; a <= 60; a++) for (let ds = -3; ds <= 3; ds++) for (let u = 10; u <= 30; u++) for (const side of [1, -1]) set(190 + ds, u, side * a);
    return st;
  }

  it('finds a first rib that never reaches the lateral band, and not the other ribs seen again near the spine', () => {
    const st = withShortFirstRib();
    // The lateral band misses it ...
    expect(traceRibs(st).some((r) => r.crossingS > 180)).toBe(false);
    // ... the inner band finds it on both sides.
    const short = traceShortRibs(st);
    for (const side of ['left', 'right'] as const) expect(short.some((r) => r.side === side && Math.abs(r.crossingS - 190) <= 2)).toBe(true);
    // Without it, nothing above the lateral ribs.
    expect(traceShortRibs(chest(false)).some((r) => r.crossingS > 180)).toBe(false);
  });
});

describe('bright bone-like things that stop short of the spine', () => {
  /**
   * The plain chest with, below its lowest ribs, a renal pelvis full of excreted contrast on each side: an ellipse
   * of 700 HU seen from behind, 46-68 mm out and 18 mm tall along s, 0-15 mm behind the body centre, with soft
   * tissue between it and the spine.
   */
  function withRenalPelves(): StraightSpine {
    const st = chest(false);
    for (let s = 6; s <= 24; s++) {
      for (let a = 46; a <= 68; a++) {
        if (((s - 15) / 9) ** 2 + ((a - 57) / 11) ** 2 > 1) continue;
        for (let u = 0; u <= 15; u++) for (const side of [1, -1]) st.hu[side * a + 80 + st.nv * (u + 40 + st.nu * s)] = 700;
      }
    }
    return st;
  }

  it('takes no rib where the bright thing in the band ends 6 mm before the costotransverse joint', () => {
    const ribs = traceRibs(withRenalPelves());
    expect(ribs.some((r) => r.crossingS < 30)).toBe(false);
    // The ribs themselves are all still found.
    expect(ribs).toHaveLength(12);
  });
});

describe('crossings that join another rib', () => {
  it('takes a crossing whose trace climbs onto the rib above as that rib, not as a rib ending a level higher', () => {
    const st = chest(false);
    // Bone crossing the band level at s = 121 (13 mm under the crossing of the rib that leaves the spine at
    // s = 140), then climbing medially from 58 to 49 mm out onto that rib (at s 136.4 there), as a trace from a
    // lower crossing does when it jumps to the rib above.
    for (let a = 49; a <= 75; a++) {
      const sc = a >= 58 ? 121 : Math.round(121 + ((58 - a) / 9) * 15.4);
      for (let ds = -3; ds <= 3; ds++) for (let u = 10; u <= 30; u++) st.hu[a + 80 + st.nv * (u + 40 + st.nu * (sc + ds))] = 400;
    }
    const left = traceRibs(st).filter((r) => r.side === 'left');
    // Still one rib per level on that side, and none carried above the rib it joined.
    expect(left).toHaveLength(6);
    expect(left.filter((r) => r.headS > 145 && r.headS < 160)).toEqual([]);
  });
});
