import { describe, expect, it } from 'vitest';
import { analyzeVolume } from '../../src/bmd/analyze.js';
import { generatePhantom } from '../../src/research/phantom/generate.js';

// Seeds 1..99 are test seeds; eval-phantoms uses 1000+.
describe('determinism', () => {
  it('analyses the same input to the same report, apart from timings (no randomness, no order effects)', () => {
    const options = { seed: 23, levels: 'T11-L3', size: 96, pixelSpacingMm: 3.8, sliceThicknessMm: 2 };
    const strip = (r: ReturnType<typeof analyzeVolume>) => ({ ...r, timingsMs: {} });
    const a = generatePhantom(options);
    const first = strip(analyzeVolume(a.loaded));
    const second = strip(analyzeVolume(a.loaded));
    expect(first.levels.length).toBeGreaterThan(0);
    expect(second).toEqual(first);
    // The generator is seeded too: the same options give the same voxels, hence the same report.
    const b = generatePhantom(options);
    expect(Buffer.from(b.loaded.volume.hu.buffer).equals(Buffer.from(a.loaded.volume.hu.buffer))).toBe(true);
    expect(strip(analyzeVolume(b.loaded))).toEqual(first);
  });
});
