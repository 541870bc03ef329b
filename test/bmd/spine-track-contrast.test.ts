import { describe, expect, it } from 'vitest';
import { findSpineTrack } from '../../src/bmd/spine/find-spine.js';
import { buildWorkingGrid } from '../../src/bmd/spine/working-grid.js';
import { generatePhantom } from '../../src/research/phantom/index.js';
import { levelsOffTrack } from '../support/track-coverage.js';

describe('the spine track beside a contrast-filled aorta and heart', () => {
  it('follows the column through the upper thoracic levels where the bone-column estimate jumps onto the enhanced vessels', () => {
    // Hard phantom 20112 (outside the evaluation seeds 20000-20059): at the upper thoracic levels the aorta and
    // heart outweigh the spine in the bone profile and the column estimate moves ~40 mm onto them; the track
    // used to end below T4, so T1-T4 were never found.
    const p = generatePhantom({ seed: 20112, preset: 'hard' });
    const g = buildWorkingGrid(p.loaded.volume);
    const track = findSpineTrack(g);
    const covered = p.truth.levels.filter((l) => l.fullyCovered !== false);
    expect(covered.map((l) => l.level)).toEqual(expect.arrayContaining(['T1', 'T2', 'T3', 'T4']));
    expect(levelsOffTrack(g, track, covered)).toEqual([]);
  });
});
