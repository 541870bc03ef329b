import { describe, expect, it } from 'vitest';
import { findSpineTrack } from '../../src/bmd/spine/find-spine.js';
import { buildWorkingGrid, workingToPatientMm } from '../../src/bmd/spine/working-grid.js';
import { cropMm } from '../../src/research/evaluation/volume-edits.js';
import { generatePhantom } from '../../src/research/phantom/index.js';
import { levelsOffTrack } from '../support/track-coverage.js';

describe('the spine track in a field of view that cuts the trunk at the side', () => {
  it('follows the spine lying 30 mm from the field edge over every covered level', () => {
    // Hard phantom 20000 (C7-L1) in a 200 mm field 70 mm to one side of the spine and 30 mm in front of it: the
    // visible trunk's centre lies 70 mm from the spine, outside the bone-column search around it, and the track
    // used to start only inside T11 (the Philips chest CT in the same field: "levels" on the scapula, named at 0.9;
    // test/bmd/real-variants.test.ts philips/fov-200-edge).
    const p = generatePhantom({ seed: 20000, preset: 'hard' });
    const covered = p.truth.levels.filter((l) => l.fullyCovered !== false);
    const spineX = covered.reduce((s, l) => s + l.centerMm[0], 0) / covered.length;
    const spineY = covered.reduce((s, l) => s + l.centerMm[1], 0) / covered.length;
    const [cx, cy] = [spineX - 70, spineY - 30];
    const g = buildWorkingGrid(cropMm(p.loaded.volume, { minMm: [cx - 100, cy - 100, undefined], maxMm: [cx + 100, cy + 100, undefined] }));
    const track = findSpineTrack(g);
    expect(levelsOffTrack(g, track, covered)).toEqual([]);
    for (let z = track.zFirst; z <= track.zLast; z += 4) {
      expect(Math.abs(workingToPatientMm(g, [track.bodyX[z], track.bodyY[z], z])[0] - spineX)).toBeLessThan(15);
    }
  });
});
