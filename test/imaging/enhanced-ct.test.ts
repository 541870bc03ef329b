import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { sharedDecodePool } from '../../src/dicom/codecs/decode-pool.js';
import { parseDicomFrames, parseDicomFramesAsync } from '../../src/dicom/parse.js';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { readNiftiFile } from '../../src/imaging/nifti.js';
import { patientMmToVoxel, voxelToPatientMm, type Vec3, type Volume } from '../../src/imaging/volume.js';
import { isVbmdError } from '../../src/util/errors.js';
import { dciodvfy } from '../support/dicom-validators.js';
import { withoutUids } from '../dicom/no-uid.js';
import { writeEnhancedCt } from '../dicom/enhanced-ct.js';
import { huAt, syntheticVolume, tempDir, writeSeries } from '../dicom/synthetic-series.js';

/**
 * Enhanced CT Image Storage (one multi-frame object, geometry in functional groups) reads as a volume:
 * the same voxels at the same patient positions as dcm2niix reads from the same file, whether geometry
 * and rescale are shared or per frame, native or JPEG 2000 (one fragment per frame), with or without UIDs.
 */
let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('enhanced-ct'));
});
afterAll(async () => {
  await sharedDecodePool().close();
  await cleanup();
});

const DIRECTION: [Vec3, Vec3, Vec3] = [[0.8, 0.6, 0], [-0.6, 0.8, 0], [0, 0, -1]];

function gdcmJ2k(src: string, dst: string): void {
  const r = spawnSync('/usr/bin/gdcmconv', ['--j2k', src, dst], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`gdcmconv --j2k (Debian package libgdcm-tools) failed: ${r.error?.message ?? r.stderr}`);
}

/** Every sampled voxel of `ours` holds `hu(i,j,k of truth)` at the same patient position in `truth`. */
function expectSameVoxels(ours: Volume, truth: Volume): void {
  let checked = 0;
  for (let k = 0; k < ours.dims[2]; k += 2)
    for (let j = 0; j < ours.dims[1]; j += 5)
      for (let i = 0; i < ours.dims[0]; i += 7) {
        const q = patientMmToVoxel(truth, voxelToPatientMm(ours, i, j, k));
        const [a, b, c] = q.map((x) => Math.round(x));
        for (const [x, y] of [[q[0], a], [q[1], b], [q[2], c]]) expect(Math.abs(x - y)).toBeLessThan(0.01);
        expect(ours.hu[i + ours.dims[0] * (j + ours.dims[1] * k)]).toBe(huAt(a, b, c));
        checked++;
      }
  expect(checked).toBeGreaterThan(100);
}

describe('Enhanced CT Image Storage', () => {
  const truth = syntheticVolume([40, 30, 12], [0.8, 0.9, 1.5], [-15, 22, 60], DIRECTION);

  it('the test object is a valid Enhanced CT Image (dciodvfy) and dcm2niix reads it as we do', async () => {
    const dir = join(root, 'shared');
    await writeEnhancedCt(join(dir, 'dicom', 'enhanced.dcm'), truth);
    const check = dciodvfy(join(dir, 'dicom', 'enhanced.dcm'));
    expect(check.iod).toBe('EnhancedCTImage');
    expect(check.errors).toEqual([]);

    const { volume, meta } = await loadInputPath(join(dir, 'dicom'));
    expect(volume.dims).toEqual([40, 30, 12]);
    expect(volume.spacingMm[2]).toBeCloseTo(1.5, 6);
    expectSameVoxels(volume, truth);
    expect(meta).toMatchObject({ kvp: 120, patientId: 'ENH-1', accessionNumber: 'ACC-E', acquisitionDateTime: '2024-05-06T07:08:09' });
    expect(meta.warnings).toEqual([]);

    const r = spawnSync('/usr/bin/dcm2niix', ['-z', 'n', '-f', 'out', '-o', dir, join(dir, 'dicom')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const nii = (await readdir(dir)).find((f) => f.endsWith('.nii'));
    const theirs = (await readNiftiFile(join(dir, nii!))).volume;
    expect([...theirs.dims].sort()).toEqual([...volume.dims].sort());
    expectSameVoxels(theirs, truth);
  });

  it('geometry and rescale repeated per frame (slope 2, intercept -1000) read the same', async () => {
    const dir = join(root, 'per-frame');
    await writeEnhancedCt(join(dir, 'e.dcm'), truth, { shared: false, rescaleSlope: 2, rescaleIntercept: -1000, frameOrder: [3, 0, 11, 5, 1, 10, 2, 9, 4, 8, 6, 7] });
    expect(dciodvfy(join(dir, 'e.dcm')).errors).toEqual([]);
    const frames = parseDicomFrames(await readFile(join(dir, 'e.dcm')), 'e.dcm');
    expect(frames.map((f) => f.frameNumber)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(frames[0]).toMatchObject({ rescaleSlope: 2, rescaleIntercept: -1000, numberOfFrames: 12 });
    const { volume } = await loadInputPath(dir);
    // stored = round((HU + 1000) / 2): HU back within one step of 2 at the right place
    for (const [i, j, k] of [[0, 0, 0], [39, 29, 11], [7, 13, 5]]) {
      const q = patientMmToVoxel(truth, voxelToPatientMm(volume, i, j, k)).map(Math.round);
      expect(Math.abs(volume.hu[i + 40 * (j + 30 * k)] - huAt(q[0], q[1], q[2]))).toBeLessThanOrEqual(1);
    }
  });

  it('JPEG 2000 multi-frame (gdcmconv, one fragment per frame), with its UIDs emptied, reads as the native one, said so', async () => {
    const dir = join(root, 'j2k');
    await writeEnhancedCt(join(root, 'j2k-src', 'e.dcm'), truth);
    await mkdir(dir, { recursive: true });
    gdcmJ2k(join(root, 'j2k-src', 'e.dcm'), join(dir, 'e.dcm'));
    await writeFile(join(dir, 'e.dcm'), withoutUids(await readFile(join(dir, 'e.dcm')), 'empty'));
    const frames = await parseDicomFramesAsync(await readFile(join(dir, 'e.dcm')), 'e.dcm');
    expect(frames[0].transferSyntaxUid).toBe('1.2.840.10008.1.2.4.90');
    expect(frames[0].substitutedUids).toEqual(['study', 'series', 'instance']);
    const { volume, meta } = await loadInputPath(dir);
    expectSameVoxels(volume, truth);
    expect(meta.seriesInstanceUid).toMatch(/^2\.25\.\d+$/);
    expect(meta.warnings?.join(' ')).toMatch(/no Study Instance UID, Series Instance UID, SOP Instance UID/);
  });

  it('a folder scan counts frames, so series choice does not call a one-instance series too short', async () => {
    const scan = await new FolderDicomSource(join(root, 'shared', 'dicom')).scan();
    expect(scan.series).toHaveLength(1);
    expect(scan.series[0]).toMatchObject({ instanceCount: 1, frameCount: 12, orientation: 'axial', sopClassUid: '1.2.840.10008.5.1.4.1.1.2.1' });
    expect(scan.series[0].extentMm).toBeCloseTo(11 * 1.5 + 1.5, 6);
  });

  it('a header longer than the scan probe (150 frames: ~45 KB of functional groups) is scanned from a longer prefix', async () => {
    const dir = join(root, 'long');
    const long = syntheticVolume([16, 16, 150], [1, 1, 1], [0, 0, 0]);
    await writeEnhancedCt(join(dir, 'e.dcm'), long);
    const bytes = await readFile(join(dir, 'e.dcm'));
    expect(bytes.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]))).toBeGreaterThan(16 * 1024);
    const scan = await new FolderDicomSource(dir).scan();
    expect(scan.unreadable).toEqual([]);
    expect(scan.series[0]).toMatchObject({ instanceCount: 1, frameCount: 150 });
    const { volume } = await loadInputPath(dir);
    expect(volume.dims).toEqual([16, 16, 150]);
    expectSameVoxels(volume, long);
  });

  it('frames whose Per-frame Functional Groups do not match NumberOfFrames are refused as corrupt', async () => {
    const dir = join(root, 'bad-count');
    await writeEnhancedCt(join(dir, 'e.dcm'), truth);
    const bytes = await readFile(join(dir, 'e.dcm'));
    // NumberOfFrames "12" -> "13": the pixel data and the functional groups now disagree with it.
    const at = bytes.indexOf(Buffer.from([0x28, 0x00, 0x08, 0x00, 0x49, 0x53]));
    expect(bytes.toString('latin1', at + 8, at + 10)).toBe('12');
    bytes.write('13', at + 8, 'latin1');
    await writeFile(join(dir, 'e.dcm'), bytes);
    const err = await loadInputPath(dir).then(() => undefined, (e: unknown) => e);
    expect(isVbmdError(err), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/13 frames/);
    expect((err as Error).message).toMatch(/corrupt/);
  });

  it('multi-frame CT without per-frame positions is refused with the reason (frames cannot be placed)', async () => {
    const dir = join(root, 'legacy');
    await writeSeries(dir, { extraAttributes: { NumberOfFrames: '3' } }, syntheticVolume([8, 8, 1]));
    const err = await loadInputPath(dir).then(() => undefined, (e: unknown) => e);
    expect(isVbmdError(err), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/multi-frame image \(3 frames\) without per-frame positions/);
  });
});
