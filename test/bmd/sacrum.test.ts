import { describe, expect, it } from 'vitest';
import { sacralPieces } from '../../src/bmd/spine/sacrum.js';
import type { SpineSegment } from '../../src/bmd/spine/segments.js';
import type { StraightSpine } from '../../src/bmd/spine/straighten.js';
import { straightBlock } from '../support/straight-block.js';

/**
 * A straightened column at 1 mm (u -40..60, v -80..80 mm) of 25 mm pieces, caudal first, in soft tissue (40 HU):
 * a 40 mm wide body (250 HU) all along, and for the `sacral` lowest pieces bone on through alae at the body's
 * depth to 55 mm either side (the sacrum's base is 100-110 mm wide).
 */
function column(pieces: number, sacral: number): { st: StraightSpine; segments: SpineSegment[] } {
  const st = straightBlock(pieces * 25, (s, uMm, vMm) => {
    const body = Math.abs(uMm) <= 15 && Math.abs(vMm) <= 20;
    const ala = s < sacral * 25 && uMm >= -8 && uMm <= 12 && Math.abs(vMm) <= 55;
    return body || ala ? 250 : undefined;
  });
  const segments = Array.from({ length: pieces }, (_, k) => ({ sFrom: 25 * k, sTo: 25 * k + 25, caudalDisc: k > 0, cranialDisc: k < pieces - 1, caudalInferred: false, cranialInferred: false }));
  return { st, segments };
}

describe('the sacrum among the lowest pieces', () => {
  it('finds S1 above a sacrum and coccyx split into several pieces (a pelvis CT)', () => {
    const { st, segments } = column(9, 5);
    expect(sacralPieces(st, segments, new Float32Array(st.ns), segments.map(() => false))).toBe(4);
  });

  it('does not take a piece past the fourth for S1 when it or a level within four above bears a rib pair', () => {
    const { st, segments } = column(9, 6);
    // Rib heads beside the fifth and sixth pieces (a T12 and T11 that span as wide as alae).
    expect(sacralPieces(st, segments, new Float32Array(st.ns), segments.map((_, k) => k === 5 || k === 6))).toBe(3);
    // A rib pair traced on S1 itself (an iliac wing), among the four lowest: still the sacrum.
    const low = column(6, 2);
    expect(sacralPieces(low.st, low.segments, new Float32Array(low.st.ns), low.segments.map((_, k) => k === 1))).toBe(1);
  });

  it('finds none under a lumbar column without alae', () => {
    const { st, segments } = column(6, 0);
    expect(sacralPieces(st, segments, new Float32Array(st.ns), segments.map(() => false))).toBe(-1);
  });
});
