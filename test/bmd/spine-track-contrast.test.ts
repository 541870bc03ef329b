import { describe, expect, it } from 'vitest';
import { findSpineTrack } from '../../src/bmd/spine/find-spine.js';
import { buildWorkingGrid, workingToPatientMm } from '../../src/bmd/spine/working-grid.js';
import { generatePhantom } from '../../src/phantom/index.js';

describe('the spine track beside a contrast-filled aorta and heart', () => {
  it('follows the column through the upper thoracic levels where the bone-column estimate jumps onto the enhanced vessels', () => {
    // Hard phantom 20112 (outside the evaluation seeds 20000-20059): at the upper thoracic levels the aorta and
    // heart outweigh the spine in the bone profile and the column estimate moves ~40 mm onto them; the track
    // used to end below T4, so T1-T4 were never found.
    const p = generatePhantom({ seed: 20112, preset: 'hard' });
    const g = buildWorkingGrid(p.loaded.volume);
    const track = findSpineTrack(g);
    const [bottomMm, topMm] = [track.zFirst, track.zLast].map((z) => workingToPatientMm(g, [0, 0, z])[2]);
    const covered = p.truth.levels.filter((l) => l.fullyCovered !== false);
    expect(covered.map((l) => l.level)).toEqual(expect.arrayContaining(['T1', 'T2', 'T3', 'T4']));
    const outside = covered.filter((l) => l.centerMm[2] > topMm || l.centerMm[2] < bottomMm).map((l) => l.level);
    expect(outside).toEqual([]);
  });
});
