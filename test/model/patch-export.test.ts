import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PATCH_VOXELS } from '../../src/model/contract.js';
import { openPatchWriter, parseCsv, readManifest, type ExportedSample } from '../../src/research/training-data/export-patches.js';

const dir = mkdtempSync(join(tmpdir(), 'vbmd-patches-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const VOX = PATCH_VOXELS ** 3;

function sample(seed: number): ExportedSample {
  return {
    source: 'phantom', seed, input: `phantom:seed=${seed}`, level: 'L1', locatedLevel: 'L1', labelConfidence: 0.9, centerMm: [0, 0, 0],
    truthVbmdMgCm3: 100, classIndex: 1, hasMask: true, maskVoxels: 1, truthMaskMeanMgCm3: 100, lesion: null, fracture: false, contrast: false,
    kvp: 120, noiseHu: 10, sliceThicknessMm: 1, pixelSpacingMm: 0.8, calibration: { method: 'phantom', slope: 1.2, intercept: 5 },
    trueCalibration: { slope: 1.2, intercept: 5 }, defaultCalibration: null, geometricVbmdMgCm3: 101, geometricIncluded: true, exclusionReason: null, partialCoverage: false,
  };
}

describe('patch writer', () => {
  it('appends density, mask and index in step and resumes after an interrupted study', () => {
    const w = openPatchWriter(dir);
    const density = new Float32Array(VOX).fill(7.5);
    const mask = new Uint8Array(VOX).fill(1);
    w.append([{ sample: sample(5), density, mask }, { sample: sample(5), density, mask }]);
    w.close();
    expect(statSync(join(dir, 'density.f32')).size).toBe(2 * VOX * 4);
    expect(new Float32Array(readFileSync(join(dir, 'density.f32')).buffer.slice(0, 8))[1]).toBe(7.5);
    // A crash after the binaries but before the index line: reopening truncates back to the index.
    appendFileSync(join(dir, 'mask.u8'), new Uint8Array(VOX));
    const w2 = openPatchWriter(dir);
    expect(w2.count).toBe(2);
    expect(w2.seedsDone.has(5)).toBe(true);
    w2.close();
    expect(statSync(join(dir, 'mask.u8')).size).toBe(2 * VOX);
    expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).patchVoxels).toBe(PATCH_VOXELS);
  });
});

describe('site manifest', () => {
  it('parses quoted CSV fields and validates rows', () => {
    expect(parseCsv('input,level,qct_vbmd\r\n"/scans/a, b",l1,95.5\n/s/c.nii.gz,T12,140\n')).toEqual([
      { input: '/scans/a, b', level: 'l1', qct_vbmd: '95.5' },
      { input: '/s/c.nii.gz', level: 'T12', qct_vbmd: '140' },
    ]);
    const good = join(dir, 'm.csv');
    writeFileSync(good, 'input,level,qct_vbmd\n/scans/a,l1,95.5\n');
    expect(readManifest(good)).toEqual([{ input: '/scans/a', level: 'L1', qct_vbmd: 95.5 }]);
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'input,level,qct_vbmd\n/scans/a,X9,95\n');
    expect(() => readManifest(bad)).toThrow(/row 2/);
    expect(() => readManifest(join(dir, 'missing.csv'))).toThrow(/cannot be read/);
  });
});
