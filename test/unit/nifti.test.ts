import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { parseNifti, readNiftiFile } from '../../src/imaging/nifti.js';
import { voxelToPatientMm } from '../../src/imaging/volume.js';
import { TOTALSEG_DIR, totalsegAvailable } from '../support/shared-data.js';

/** A minimal NIfTI-1 file: int16 voxels, sform with 2 mm voxels, RAS origin (10, 20, 30). */
function tinyNifti(dims: [number, number, number], values: number[]): Buffer {
  const hdr = Buffer.alloc(352);
  hdr.writeInt32LE(348, 0);
  hdr.writeInt16LE(3, 40);
  dims.forEach((d, i) => hdr.writeInt16LE(d, 42 + 2 * i));
  hdr.writeInt16LE(1, 48);
  hdr.writeInt16LE(4, 70); // datatype int16
  hdr.writeInt16LE(16, 72);
  [1, 2, 2, 2].forEach((v, i) => hdr.writeFloatLE(v, 76 + 4 * i));
  hdr.writeFloatLE(352, 108); // vox_offset
  hdr.writeFloatLE(1, 112); // scl_slope
  hdr.writeFloatLE(-1000, 116); // scl_inter
  hdr.writeInt16LE(2, 254); // sform_code
  [2, 0, 0, 10].forEach((v, i) => hdr.writeFloatLE(v, 280 + 4 * i));
  [0, 2, 0, 20].forEach((v, i) => hdr.writeFloatLE(v, 296 + 4 * i));
  [0, 0, 2, 30].forEach((v, i) => hdr.writeFloatLE(v, 312 + 4 * i));
  hdr.write('n+1\0', 344, 'latin1');
  const img = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => img.writeInt16LE(v, 2 * i));
  return Buffer.concat([hdr, img]);
}

describe('NIfTI reader', () => {
  it('applies scl_slope/inter and turns the RAS affine into LPS', () => {
    const file = gzipSync(tinyNifti([2, 2, 2], [1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700]));
    const { volume } = parseNifti(file, 'tiny.nii.gz');
    expect(volume.dims).toEqual([2, 2, 2]);
    expect(volume.spacingMm).toEqual([2, 2, 2]);
    expect(Array.from(volume.hu)).toEqual([0, 100, 200, 300, 400, 500, 600, 700]);
    // RAS (10,20,30) is LPS (-10,-20,30); voxel (1,0,0) is 2 mm to the patient's right = -2 in L.
    expect(voxelToPatientMm(volume, 0, 0, 0)).toEqual([-10, -20, 30]);
    expect(voxelToPatientMm(volume, 1, 1, 1)).toEqual([-12, -22, 32]);
  });

  it('rejects a truncated file with a sentence naming it', () => {
    const whole = tinyNifti([4, 4, 4], new Array(64).fill(0));
    expect(() => parseNifti(whole.subarray(0, 400), 'cut.nii')).toThrow(/cut\.nii is truncated/);
    expect(() => parseNifti(Buffer.from('hello world, not an image at all'.repeat(20)), 'x.nii')).toThrow(/not a NIfTI/);
  });

  it.runIf(totalsegAvailable())('reads the real TotalSegmentator CT', async () => {
    const { volume } = await readNiftiFile(`${TOTALSEG_DIR}/example_ct.nii.gz`);
    expect(volume.dims).toEqual([122, 101, 112]);
    expect(volume.spacingMm.map((s) => Math.round(s * 1000) / 1000)).toEqual([3, 3, 3]);
  });
});
