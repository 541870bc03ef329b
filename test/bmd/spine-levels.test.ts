import { describe, expect, it } from 'vitest';
import { rejectDepthOutliers } from '../../src/bmd/spine/find-spine.js';
import { chooseDiscs, isEndStub, ownBodySlices, segmentsFromDiscs } from '../../src/bmd/spine/levels.js';

describe('level separation rules', () => {
  it('calls an open end too short to hold most of a body a stub, not one that does', () => {
    // 3 mm slices; whole levels 7-8 slices long.
    const keep = segmentsFromDiscs([5, 13, 21], 0, 26, 3);
    expect(keep.map((s) => [s.zFrom, s.zTo])).toEqual([[0, 4], [6, 12], [14, 20], [22, 26]]);
    // z runs superior: the lowest piece has its disc on top and the column end below.
    expect(keep[0]).toMatchObject({ cranialDisc: true, caudalDisc: false });
    expect(keep[3]).toMatchObject({ cranialDisc: false, caudalDisc: true });
    expect(isEndStub(keep[0], keep[1])).toBe(false);
    expect(isEndStub(keep[3], keep[2])).toBe(false);
    // A 9 mm piece under a 24 mm level is an endplate and part of a disc at the scan edge, not a vertebra
    // (kept as a segment so the sacrum test can still look at it, but never named).
    const stub = segmentsFromDiscs([3, 12, 21], 0, 23, 3);
    expect(stub.map((s) => [s.zFrom, s.zTo])).toEqual([[0, 2], [4, 11], [13, 20]]);
    expect(isEndStub(stub[0], stub[1])).toBe(true);
    expect(isEndStub(stub[1], stub[0])).toBe(false);
  });

  it('keeps a faint disc inside a regular chain but not a faint dip at its end (the real end disc at the scan edge)', () => {
    // 3 mm slices, discs every 8 slices; the one at 28 is faint (thin disc) but on the regular spacing.
    const score = new Float32Array(60);
    for (const z of [12, 20, 36, 44, 52]) score[z] = 200;
    score[28] = 30;
    score[5] = 30; // faint dip 7 slices under the first disc: regular enough, but only one neighbour holds it
    expect(chooseDiscs(score, 0, 59, 3)).toEqual([12, 20, 28, 36, 44, 52]);
  });

  it('rejects a run of body depths far off the smooth trend along the column (contrast aorta read as cortex)', () => {
    const d = new Float32Array(80).fill(NaN);
    for (let z = 0; z < 80; z++) d[z] = 8 - z * 0.03 + (z % 3) * 0.2; // ~8 voxels caudally, thinning cranially
    for (let z = 40; z < 58; z++) d[z] = 14;
    rejectDepthOutliers(d, 0, 79);
    for (let z = 40; z < 58; z++) expect(d[z], `z ${z}`).toBeNaN();
    const kept = [...d].filter(Number.isFinite).length;
    expect(kept).toBe(80 - 18);
  });
});

describe('ownBodySlices', () => {
  const track = (ys: number[], depthMm = 30) => {
    const n = ys.length;
    const f = (v: number) => new Float32Array(n).fill(v);
    return {
      found: new Uint8Array(n).fill(1), bodyX: f(50), bodyY: Float32Array.from(ys), bodyDepthMm: f(depthMm), bodyWidthMm: f(45),
      canalY: f(70), touchesEdge: new Uint8Array(n), zFirst: 0, zLast: n - 1,
    };
  };
  it('drops end slices that show the neighbouring body set well behind (tilted L5/S1 disc), keeps a straight body whole', () => {
    // 3 mm voxels, depth 30 mm: slices 0-2 sit 8 voxels (24 mm) dorsal, the sacrum under a tilted disc.
    const tilted = track([68, 68, 68, 61, 60.5, 60, 60, 59.5, 59, 59, 58.5, 58]);
    expect(ownBodySlices(tilted, { zFrom: 0, zTo: 11, cranialDisc: true, caudalDisc: true }, 3)).toEqual({ zFrom: 3, zTo: 11 });
    // Lordosis drifts the centre a few mm over a level: nothing is dropped.
    const straight = track([62, 61.5, 61, 60.5, 60, 59.5, 59, 58.5, 58, 57.5, 57, 56.5]);
    expect(ownBodySlices(straight, { zFrom: 0, zTo: 11, cranialDisc: true, caudalDisc: true }, 3)).toEqual({ zFrom: 0, zTo: 11 });
  });
});
