import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCtSeries } from '../../src/dicom/write-series.js';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { readNiftiFile } from '../../src/imaging/nifti.js';
import { patientMmToVoxel, voxelToPatientMm, type LoadedVolume } from '../../src/imaging/volume.js';
import { TOTALSEG_DIR, totalsegAvailable } from '../support/shared-data.js';
import { tempDir } from '../dicom/synthetic-series.js';

/**
 * Real anatomy through the DICOM path: the TotalSegmentator example CT (NIfTI, HU) written as a CT series
 * by writeCtSeries and read back by loadInputPath lands every voxel at the same LPS position with the
 * same HU. The data stay in ../shared; without them the test is skipped with a message.
 */
const available = totalsegAvailable();
let root: string;
let cleanup: (() => Promise<void>) | undefined;
let nifti: LoadedVolume;

beforeAll(async () => {
  if (!available) return;
  ({ dir: root, cleanup } = await tempDir('real-ct'));
  nifti = await readNiftiFile(join(TOTALSEG_DIR, 'example_ct.nii.gz'));
});
afterAll(async () => {
  await cleanup?.();
});

describe.skipIf(!available)('real CT through DICOM', () => {
  it('NIfTI -> DICOM series -> volume keeps geometry and HU', async () => {
    const files = await writeCtSeries(join(root, 'dicom'), nifti.volume, { patientId: 'TOTALSEG-EXAMPLE', kvp: 120 });
    expect(files).toHaveLength(nifti.volume.dims[2]);
    const { volume, meta } = await loadInputPath(join(root, 'dicom'));
    expect(meta.warnings).toEqual([]);
    const src = nifti.volume;
    expect(volume.dims).toEqual(src.dims);
    for (let a = 0; a < 3; a++) expect(volume.spacingMm[a]).toBeCloseTo(src.spacingMm[a], 4);
    let checked = 0;
    for (let k = 0; k < src.dims[2]; k += 5)
      for (let j = 0; j < src.dims[1]; j += 9)
        for (let i = 0; i < src.dims[0]; i += 11) {
          const q = patientMmToVoxel(volume, voxelToPatientMm(src, i, j, k));
          const [x, y, z] = q.map((v) => Math.round(v));
          expect(Math.abs(q[0] - x) + Math.abs(q[1] - y) + Math.abs(q[2] - z)).toBeLessThan(0.01);
          const want = Math.round(src.hu[i + src.dims[0] * (j + src.dims[1] * k)]); // HU are integers in range
          expect(volume.hu[x + volume.dims[0] * (y + volume.dims[1] * z)]).toBe(want);
          checked++;
        }
    expect(checked).toBeGreaterThan(1000);
  });
});
