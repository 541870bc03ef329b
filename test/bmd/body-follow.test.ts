import { describe, expect, it } from 'vitest';
import { canalOutOfView, followBodies, type BodyTrackArrays } from '../../src/bmd/spine/body-follow.js';
import { findSpineTrack } from '../../src/bmd/spine/find-spine.js';
import { buildWorkingGrid, workingToPatientMm, type WorkingGrid } from '../../src/bmd/spine/working-grid.js';
import { generatePhantom } from '../../src/research/phantom/index.js';
import { levelsOffTrack } from '../support/track-coverage.js';

/** A working grid (3 mm voxels) of soft tissue with a column of bone-like bodies, discs every `levelSlices`. */
function column(o: { nx: number; ny: number; nz: number; bodyY: number; levelSlices: number }): WorkingGrid {
  const hu = new Float32Array(o.nx * o.ny * o.nz).fill(40);
  for (let z = 0; z < o.nz; z++) {
    const disc = z % o.levelSlices === 0;
    for (let y = o.bodyY - 5; y <= o.bodyY + 5; y++) {
      for (let x = o.nx / 2 - 6; x <= o.nx / 2 + 6; x++) if (y >= 0 && y < o.ny) hu[x + o.nx * (y + o.ny * z)] = disc ? 80 : 220;
    }
  }
  const dims: [number, number, number] = [o.nx, o.ny, o.nz];
  return { hu, dims, spacingMm: [3, 3, 3], sourceAxis: [0, 1, 2], sourceSign: [1, 1, 1], factor: [1, 1, 1], source: null as never };
}

function trackUpTo(g: WorkingGrid, zEnd: number, bodyY: number): BodyTrackArrays {
  const nz = g.dims[2];
  const t: BodyTrackArrays = {
    found: new Uint8Array(nz),
    bodyX: new Float32Array(nz).fill(NaN),
    bodyY: new Float32Array(nz).fill(NaN),
    bodyDepthMm: new Float32Array(nz).fill(NaN),
    bodyWidthMm: new Float32Array(nz).fill(NaN),
  };
  for (let z = 0; z <= zEnd; z++) {
    t.found[z] = 1;
    t.bodyX[z] = g.dims[0] / 2;
    t.bodyY[z] = bodyY;
    t.bodyDepthMm[z] = 33;
    t.bodyWidthMm[z] = 39;
  }
  return t;
}

describe('following the vertebral bodies past the end of the canal track', () => {
  it('goes on along the bodies, across the discs, where the field ends just behind them', () => {
    // Bodies centred 8 voxels (24 mm) in front of the field's posterior edge: their back wall ~8 mm from it.
    const g = column({ nx: 40, ny: 30, nz: 60, bodyY: 21, levelSlices: 8 });
    const t = trackUpTo(g, 20, 21);
    expect(canalOutOfView(g, t, 20)).toBe(true);
    expect(followBodies(g, t, 20, 1)).toBe(59);
    expect(Array.from(t.found.subarray(21)).every((f) => f === 1)).toBe(true);
    expect(Math.max(...Array.from(t.bodyY.subarray(21)).map((y) => Math.abs(y - 21)))).toBeLessThanOrEqual(1);
  });

  it('goes on where the field cuts the posterior cortex off but not the part the ROI measures', () => {
    // The back wall (5.5 voxels behind the centre) lies past the field's last row; 0.3 of the depth (3.3 voxels) does not.
    const g = column({ nx: 40, ny: 26, nz: 60, bodyY: 21, levelSlices: 8 });
    expect(followBodies(g, trackUpTo(g, 20, 21), 20, 1)).toBe(59);
    // One row fewer and the measured part itself is cut: the follow stops at once.
    const cut = column({ nx: 40, ny: 25, nz: 60, bodyY: 21, levelSlices: 8 });
    expect(followBodies(cut, trackUpTo(cut, 20, 21), 20, 1)).toBe(20);
  });

  it('leaves a track alone where the field holds the canal behind the body (it ended for another reason)', () => {
    const g = column({ nx: 40, ny: 40, nz: 60, bodyY: 12, levelSlices: 8 });
    const t = trackUpTo(g, 20, 12);
    expect(canalOutOfView(g, t, 20)).toBe(false);
    expect(followBodies(g, t, 20, 1)).toBe(20);
    expect(t.found[21]).toBe(0);
  });

  it('stops where the bodies end (more than a disc of no bone)', () => {
    const g = column({ nx: 40, ny: 30, nz: 60, bodyY: 21, levelSlices: 8 });
    for (let z = 40; z < 60; z++) g.hu.fill(40, z * 40 * 30, (z + 1) * 40 * 30);
    expect(followBodies(g, trackUpTo(g, 20, 21), 20, 1)).toBe(39);
  });

  it('finds the upper thoracic bodies of a heart-centred field whose edge cuts the mid-thoracic canal away', () => {
    // Hard phantom 22020 (C7-L4): the kyphosis takes the canal out of the field above T9, and T1-T8 were never
    // found (eight bodies unreported).
    const p = generatePhantom({ seed: 22020, preset: 'hard' });
    const g = buildWorkingGrid(p.loaded.volume);
    const track = findSpineTrack(g);
    const covered = p.truth.levels.filter((l) => l.fullyCovered !== false);
    expect(levelsOffTrack(g, track, covered)).toEqual([]);
    // Each body's centre in the plane lies on the track at its own height.
    const zOf = (zMm: number): number => {
      let best = track.zFirst;
      for (let z = track.zFirst; z <= track.zLast; z++) {
        if (Math.abs(workingToPatientMm(g, [0, 0, z])[2] - zMm) < Math.abs(workingToPatientMm(g, [0, 0, best])[2] - zMm)) best = z;
      }
      return best;
    };
    for (const l of covered) {
      const z = zOf(l.centerMm[2]);
      const c = workingToPatientMm(g, [track.bodyX[z], track.bodyY[z], z]);
      expect(Math.hypot(c[0] - l.centerMm[0], c[1] - l.centerMm[1]), l.level).toBeLessThan(10);
    }
  });
});
