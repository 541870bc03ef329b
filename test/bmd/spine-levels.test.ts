import { describe, expect, it } from 'vitest';
import { rejectDepthOutliers } from '../../src/bmd/spine/find-spine.js';
import { segmentsFromDiscs } from '../../src/bmd/spine/levels.js';

describe('level separation rules', () => {
  it('drops an open end too short to hold most of a body, keeps one that does', () => {
    // 3 mm slices; whole levels 7-8 slices long.
    const keep = segmentsFromDiscs([5, 13, 21], 0, 26, 3);
    expect(keep.map((s) => [s.zFrom, s.zTo])).toEqual([[0, 4], [6, 12], [14, 20], [22, 26]]);
    expect(keep[0]).toMatchObject({ cranialDisc: false, caudalDisc: true });
    // A 9 mm stub under a 24 mm level is an endplate and part of a disc at the scan edge, not a vertebra.
    const stub = segmentsFromDiscs([3, 12, 21], 0, 23, 3);
    expect(stub.map((s) => [s.zFrom, s.zTo])).toEqual([[4, 11], [13, 20]]);
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
