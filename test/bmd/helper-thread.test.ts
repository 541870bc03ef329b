import { afterAll, describe, expect, it } from 'vitest';
import { analyzeVolume } from '../../src/bmd/analyze.js';
import { buildWorkingGrid, WORKING_SPACING_MM } from '../../src/bmd/spine/working-grid.js';
import { HelperThread } from '../../src/bmd/parallel/helper-thread.js';
import { sharedFloat32 } from '../../src/imaging/shared-memory.js';
import type { LoadedVolume } from '../../src/imaging/volume.js';
import { generatePhantom } from '../../src/research/phantom/generate.js';

// The engine with a helper thread must give the report it gives on one thread, voxel for voxel.
describe('helper thread', () => {
  const p = generatePhantom({ seed: 31, levels: 'T11-L3', size: 192, pixelSpacingMm: 2, sliceThicknessMm: 1.5 });
  const hu = sharedFloat32(p.loaded.volume.hu.length);
  hu.set(p.loaded.volume.hu);
  const shared: LoadedVolume = { ...p.loaded, volume: { ...p.loaded.volume, hu } };
  const helper = new HelperThread();
  afterAll(() => helper.close());
  const strip = (r: ReturnType<typeof analyzeVolume>) => ({ ...r, timingsMs: {} });

  it('loads the engine code in its thread', async () => {
    expect(await helper.ready).toBe(true);
  });

  it('pools the working grid with the helper taking chunks, to the same values', async () => {
    await helper.ready;
    const alone = buildWorkingGrid(p.loaded.volume);
    // The helper takes chunks only when it picks the task up before this thread has taken them all.
    for (let tries = 0; tries < 20 && helper.helperChunks === 0; tries++) {
      expect(buildWorkingGrid(shared.volume, WORKING_SPACING_MM, helper).hu).toEqual(alone.hu);
    }
    expect(helper.helperChunks).toBeGreaterThan(0);
  });

  it('analyses a volume in shared memory to the same report as one thread does', async () => {
    await helper.ready;
    const before = helper.helperChunks;
    const one = strip(analyzeVolume(p.loaded));
    expect(one.levels.length).toBeGreaterThan(2);
    expect(strip(analyzeVolume(shared, { runner: helper }))).toEqual(one);
    expect(helper.helperChunks).toBeGreaterThan(before);
  });

  it('leaves a volume in ordinary memory to the calling thread (no copy), with the same report', async () => {
    await helper.ready;
    const before = helper.helperChunks;
    expect(strip(analyzeVolume(p.loaded, { runner: helper }))).toEqual(strip(analyzeVolume(p.loaded)));
    expect(helper.helperChunks).toBe(before);
  });

  it('gives the same values when the helper has not started yet (it is declined)', () => {
    const fresh = new HelperThread();
    try {
      expect(buildWorkingGrid(shared.volume, WORKING_SPACING_MM, fresh).hu).toEqual(buildWorkingGrid(p.loaded.volume).hu);
      expect(fresh.helperChunks).toBe(0);
    } finally {
      void fresh.close();
    }
  });
});
