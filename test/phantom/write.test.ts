import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { generatePhantom, phantomTruth, writePhantom } from '../../src/research/phantom/index.js';

describe('writePhantom', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vbmd-phantom-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a DICOM series that loads back voxel for voxel, plus a valid truth.json', async () => {
    const p = generatePhantom({ seed: 31, size: 64, pixelSpacingMm: 5, sliceThicknessMm: 4, levels: 'L1-L2', kvp: 140, contrast: true });
    const w = await writePhantom(dir, p);
    const [, , slices] = p.loaded.volume.dims;
    expect((await readdir(w.dicomDir)).filter((f) => f.endsWith('.dcm'))).toHaveLength(slices);
    const truth = phantomTruth.parse(JSON.parse(await readFile(w.truthPath, 'utf8')));
    expect(truth).toEqual(JSON.parse(JSON.stringify(p.truth)));

    const back = await loadInputPath(dir);
    expect(back.volume.dims).toEqual(p.loaded.volume.dims);
    back.volume.spacingMm.forEach((s, a) => expect(s).toBeCloseTo(p.loaded.volume.spacingMm[a], 4));
    back.volume.originMm.forEach((o, a) => expect(o).toBeCloseTo(p.loaded.volume.originMm[a], 3));
    let maxDiff = 0;
    for (let q = 0; q < back.volume.hu.length; q++) maxDiff = Math.max(maxDiff, Math.abs(back.volume.hu[q] - p.loaded.volume.hu[q]));
    expect(maxDiff).toBe(0);
    expect(back.meta.kvp).toBe(140);
    expect(back.meta.manufacturer).toBe(p.truth.scanner.manufacturer);
    expect(back.meta.manufacturerModelName).toBe(p.truth.scanner.model);
    expect(back.meta.studyInstanceUid).toBe(p.loaded.meta.studyInstanceUid);
    expect(back.meta.contrastAgent).toBeTruthy();
  });

  it('writes a hard-preset study (int16 volume, values clipped at 1023) that loads back voxel for voxel', async () => {
    const out = join(dir, 'hard');
    const p = generatePhantom({ seed: 20077, preset: 'hard', size: 64, sliceThicknessMm: 5, hard: { always: ['clip', 'screws'] } });
    expect(p.loaded.volume.hu).toBeInstanceOf(Int16Array);
    const w = await writePhantom(out, p);
    const truth = phantomTruth.parse(JSON.parse(await readFile(w.truthPath, 'utf8')));
    expect(truth.hard?.clipMaxHu).toBe(1023);
    const back = await loadInputPath(out);
    expect(back.volume.dims).toEqual(p.loaded.volume.dims);
    let maxDiff = 0;
    let maxHu = -Infinity;
    for (let q = 0; q < back.volume.hu.length; q++) {
      maxDiff = Math.max(maxDiff, Math.abs(back.volume.hu[q] - p.loaded.volume.hu[q]));
      maxHu = Math.max(maxHu, back.volume.hu[q]);
    }
    expect(maxDiff).toBe(0);
    expect(maxHu).toBeLessThanOrEqual(1023);
  });
});
