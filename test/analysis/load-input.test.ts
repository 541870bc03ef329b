import { mkdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { ds, newDicomUid } from '../../src/dicom/write-series.js';
import { PADDING_HU, patientMmToVoxel, voxelToPatientMm } from '../../src/imaging/volume.js';
import { isVbmdError } from '../../src/util/errors.js';
import { huAt, syntheticVolume, tempDir, writeSeries } from '../dicom/synthetic-series.js';

let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('load-input'));
});
afterAll(async () => {
  await cleanup();
});

/** Runs `fn`, expecting a VbmdError (never a crash or a plain Error); returns its message. */
async function vbmdMessage(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    expect(isVbmdError(e), `expected a VbmdError, got ${String(e)}`).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a rejection');
}

describe('loadInputPath: good series', () => {
  it('round-trips a written series: geometry from positions, HU, identity and acquisition metadata', async () => {
    const dir = join(root, 'good');
    const vol = syntheticVolume([64, 48, 20], [0.7, 0.8, 1.5], [-20, -30, -100]);
    // SliceThickness 3 mm on a 1.5 mm grid (overlapping reconstruction): spacing must come from positions.
    await writeSeries(dir, { sliceThicknessMm: 3, contrastAgent: 'IOHEXOL', manufacturer: 'GE MEDICAL SYSTEMS', manufacturerModelName: 'Revolution', seriesDescription: 'Chest 1.5' }, vol);
    const { volume, meta } = await loadInputPath(dir);
    expect(volume.dims).toEqual([64, 48, 20]);
    expect(volume.spacingMm[0]).toBeCloseTo(0.7, 6);
    expect(volume.spacingMm[1]).toBeCloseTo(0.8, 6);
    expect(volume.spacingMm[2]).toBeCloseTo(1.5, 6);
    expect(volume.originMm).toEqual([-20, -30, -100]);
    expect(volume.direction).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    for (const [i, j, k] of [[0, 0, 0], [63, 47, 19], [10, 20, 7], [5, 40, 13]]) {
      expect(volume.hu[i + 64 * (j + 48 * k)]).toBe(huAt(i, j, k));
    }
    expect(meta).toMatchObject({
      kind: 'dicom',
      patientId: 'SYN-1',
      accessionNumber: 'ACC-1',
      acquisitionDateTime: '2024-05-06T07:08:09',
      kvp: 120,
      manufacturer: 'GE MEDICAL SYSTEMS',
      manufacturerModelName: 'Revolution',
      contrastAgent: 'IOHEXOL',
      seriesDescription: 'Chest 1.5',
    });
    expect(meta.studyInstanceUid).toMatch(/^2\.25\.\d+$/);
    expect(meta.warnings).toEqual([]);
  });

  it('orders slices by position, not file name or instance number, for feet-first stacks', async () => {
    const dir = join(root, 'feet-first');
    // k runs towards the feet: the assembled volume must run head-wards (+z normal) and keep every
    // voxel at the same patient position with the same HU.
    const vol = syntheticVolume([32, 32, 12], [1, 1, 2], [0, 0, 50], [[1, 0, 0], [0, 1, 0], [0, 0, -1]]);
    await writeSeries(dir, {}, vol);
    const { volume } = await loadInputPath(dir);
    expect(volume.direction[2]).toEqual([0, 0, 1]);
    expect(volume.originMm[2]).toBeCloseTo(50 - 22, 6);
    for (const [i, j, k] of [[3, 4, 0], [31, 0, 11], [7, 9, 5]]) {
      const p = voxelToPatientMm(vol, i, j, k);
      const v = patientMmToVoxel(volume, p).map(Math.round) as [number, number, number];
      expect(volume.hu[v[0] + 32 * (v[1] + 32 * v[2])]).toBe(huAt(i, j, k));
    }
  });

  it('applies rescale slope/intercept and maps PixelPaddingValue to PADDING_HU', async () => {
    const dir = join(root, 'rescale');
    const vol = syntheticVolume([16, 16, 12]);
    vol.hu[5] = -3024; // stored -2000 with intercept -1024: the padding value below
    await writeSeries(dir, { rescaleSlope: 2, rescaleIntercept: -1000, pixelPaddingValue: -1012 }, vol);
    const { volume } = await loadInputPath(dir);
    // stored = round((HU + 1000) / 2): HU back within one step of 2
    for (const n of [0, 17, 300, 2000]) expect(Math.abs(volume.hu[n] - vol.hu[n])).toBeLessThanOrEqual(1);
    expect(volume.hu[5]).toBe(PADDING_HU);
  });

  it('skips non-DICOM files, says how many, and finds series in nested folders', async () => {
    const dir = join(root, 'mixed');
    await writeSeries(join(dir, 'a', 'b', 'series1'), {}, syntheticVolume([16, 16, 12]));
    await writeFile(join(dir, 'README.txt'), 'not dicom');
    await writeFile(join(dir, 'a', 'thumbs.db'), Buffer.alloc(300, 7));
    await writeFile(join(dir, 'a', 'DICOMDIR'), Buffer.alloc(10));
    const { volume, meta } = await loadInputPath(dir);
    expect(volume.dims).toEqual([16, 16, 12]);
    expect(meta.warnings?.join(' ')).toMatch(/3 non-DICOM file\(s\) .* were ignored/);
  });

  it('chooses the thin axial CT among several series and says why the others were skipped', async () => {
    const dir = join(root, 'multi');
    const study = newDicomUid();
    const thin = newDicomUid();
    await writeSeries(join(dir, 'thin'), { studyInstanceUid: study, seriesInstanceUid: thin, seriesNumber: 3, seriesDescription: 'Chest 1mm' }, syntheticVolume([16, 16, 40], [1, 1, 1]));
    await writeSeries(join(dir, 'thick'), { studyInstanceUid: study, seriesNumber: 2, seriesDescription: 'Chest 5mm', sliceThicknessMm: 5 }, syntheticVolume([16, 16, 12], [1, 1, 5]));
    await writeSeries(join(dir, 'scout'), { studyInstanceUid: study, seriesNumber: 1, seriesDescription: 'Topogram', imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] }, syntheticVolume([16, 16, 2]));
    await writeSeries(join(dir, 'mip'), { studyInstanceUid: study, seriesNumber: 4, seriesDescription: 'MIP', imageType: ['DERIVED', 'SECONDARY', 'AXIAL'] }, syntheticVolume([16, 16, 40]));
    const { meta } = await loadInputPath(dir);
    expect(meta.seriesInstanceUid).toBe(thin);
    const reasons = (meta.skippedSeries ?? []).map((s) => s.reason).join(' | ');
    expect(meta.skippedSeries, reasons).toHaveLength(3);
    expect(reasons).toMatch(/localizer/);
    expect(reasons).toMatch(/derived\/secondary/);
    expect(reasons).toMatch(/thicker \(5 mm\)/);
  });

  it('decodes a JPEG 2000 series (recompressed by gdcmconv, decoded in worker threads) to the same HU as the original', async () => {
    const dir = join(root, 'j2k-src');
    const out = join(root, 'j2k');
    await mkdir(out, { recursive: true });
    // 96x80 slices: large enough to go through the worker-thread decode pool.
    const files = await writeSeries(dir, {}, syntheticVolume([96, 80, 12]));
    for (const f of files) {
      const r = spawnSync('/usr/bin/gdcmconv', ['--j2k', f, join(out, f.split('/').pop()!)]);
      expect(r.status).toBe(0);
    }
    const a = await loadInputPath(dir);
    const b = await loadInputPath(out);
    expect(b.volume.dims).toEqual(a.volume.dims);
    expect(Buffer.compare(Buffer.from(a.volume.hu.buffer), Buffer.from(b.volume.hu.buffer))).toBe(0);
  });
});

describe('loadInputPath: bad input gives a clear VbmdError or a warning-bearing result', () => {
  it('missing path', async () => {
    expect(await vbmdMessage(() => loadInputPath(join(root, 'nope')))).toMatch(/does not exist/);
  });

  it('empty folder', async () => {
    const dir = join(root, 'empty');
    await mkdir(dir, { recursive: true });
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/empty folder/);
  });

  it('only non-DICOM files', async () => {
    const dir = join(root, 'junk');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'a.txt'), 'hello');
    await writeFile(join(dir, 'b.bin'), Buffer.alloc(4000, 1));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/No DICOM files found in .* among its 2 file\(s\)/);
  });

  it('truncated file (pixel data cut short) is named', async () => {
    const dir = join(root, 'truncated');
    const files = await writeSeries(dir, {}, syntheticVolume([32, 32, 12]));
    await truncate(files[4], 2000);
    const m = await vbmdMessage(() => loadInputPath(dir));
    expect(m).toContain(files[4]);
    expect(m).toMatch(/truncated/);
  });

  it('truncated file (header cut short) is ignored with a warning, leaving a gap that is reported', async () => {
    const dir = join(root, 'truncated-header');
    const files = await writeSeries(dir, {}, syntheticVolume([32, 32, 12]));
    await truncate(files[6], 400);
    const { meta } = await loadInputPath(dir);
    const w = meta.warnings?.join(' ') ?? '';
    expect(w).toMatch(/1 DICOM file\(s\) could not be read/);
    expect(w).toMatch(/missing 1 slice/);
  });

  it('one missing slice: filled by interpolation with a warning naming the gap, or rejected on request', async () => {
    const dir = join(root, 'missing');
    const files = await writeSeries(dir, {}, syntheticVolume([32, 32, 20]));
    await unlink(files[9]); // instance 10
    const { volume, meta } = await loadInputPath(dir);
    expect(volume.dims).toEqual([32, 32, 20]);
    expect(meta.warnings?.join(' ')).toMatch(/missing 1 slice \(1 between -92 mm \(instance 9\) and -90 mm \(instance 11\)\).*interpolation/);
    const n = 3 + 32 * (4 + 32 * 9);
    expect(volume.hu[n]).toBeCloseTo((huAt(3, 4, 8) + huAt(3, 4, 10)) / 2, 3);
    expect(await vbmdMessage(() => loadInputPath(dir, { missingSlices: 'reject' }))).toMatch(/missing 1 slice.*instance 9.*instance 11/);
  });

  it('several adjacent missing slices are rejected', async () => {
    const dir = join(root, 'missing3');
    const files = await writeSeries(dir, {}, syntheticVolume([16, 16, 20]));
    for (const f of files.slice(5, 8)) await unlink(f);
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/missing 3 slices .*send the complete series/);
  });

  it('two series interleaved under one SeriesInstanceUID (offset grids)', async () => {
    const dir = join(root, 'interleaved');
    const series = newDicomUid();
    const study = newDicomUid();
    await writeSeries(dir, { studyInstanceUid: study, seriesInstanceUid: series, fileNamePrefix: 'A' }, syntheticVolume([16, 16, 12], [1, 1, 2], [0, 0, 0]));
    await writeSeries(dir, { studyInstanceUid: study, seriesInstanceUid: series, fileNamePrefix: 'B' }, syntheticVolume([16, 16, 12], [1, 1, 2], [0, 0, 1]));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/two series interleaved/);
  });

  it('two series interleaved under one SeriesInstanceUID (same positions)', async () => {
    const dir = join(root, 'interleaved-same');
    const series = newDicomUid();
    const study = newDicomUid();
    await writeSeries(dir, { studyInstanceUid: study, seriesInstanceUid: series, fileNamePrefix: 'A' }, syntheticVolume([16, 16, 12]));
    await writeSeries(dir, { studyInstanceUid: study, seriesInstanceUid: series, fileNamePrefix: 'B', firstInstanceNumber: 13 }, syntheticVolume([16, 16, 12]));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/two series interleaved .*12 positions occur twice/);
  });

  it('localizer only', async () => {
    const dir = join(root, 'scout');
    await writeSeries(dir, { imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'], seriesDescription: 'Scout' }, syntheticVolume([16, 16, 2]));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/only a localizer/);
  });

  it('MR instead of CT', async () => {
    const dir = join(root, 'mr');
    await writeSeries(dir, { modality: 'MR', sopClassUid: '1.2.840.10008.5.1.4.1.1.4' }, syntheticVolume([16, 16, 12]));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/MR, not CT/);
  });

  it('unsupported transfer syntax is named (UID and name)', async () => {
    const dir = join(root, 'jpeg12');
    const out = join(root, 'jpeg12-out');
    await mkdir(out, { recursive: true });
    const files = await writeSeries(dir, {}, syntheticVolume([16, 16, 12]));
    for (const f of files) {
      const target = join(out, f.split('/').pop()!);
      expect(spawnSync('/usr/bin/gdcmconv', ['--jpeg', '--lossy', f, target]).status).toBe(0);
      // GDCM marks lossy output DERIVED (correctly); mark it ORIGINAL again so the series is chosen and
      // the transfer syntax itself is what fails.
      const b = await readFile(target);
      const d = dcmjs.data.DicomMessage.readFile(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
      d.dict['00080008'].Value = ['ORIGINAL', 'PRIMARY', 'AXIAL'];
      await writeFile(target, Buffer.from(d.write()));
    }
    const m = await vbmdMessage(() => loadInputPath(out));
    expect(m).toMatch(/1\.2\.840\.10008\.1\.2\.4\.51 \(JPEG Extended \(Process 2 & 4\)\)/);
    expect(m).toMatch(/Explicit VR Little Endian/);
  });

  it('gantry tilt (sheared stack) is rejected', async () => {
    const dir = join(root, 'tilt');
    const tan = Math.tan((20 * Math.PI) / 180);
    await writeSeries(dir, { gantryTiltDeg: 20, sliceAttributes: (k) => ({ ImagePositionPatient: ['0', ds(k * 2 * tan), ds(k * 2)] }) }, syntheticVolume([16, 16, 12], [1, 1, 2], [0, 0, 0]));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/gantry tilt \(20 degrees in the header, slices sheared by 20\.0 degrees\)/);
  });

  it('mixed image sizes in one series', async () => {
    const dir = join(root, 'sizes');
    const series = newDicomUid();
    const study = newDicomUid();
    await writeSeries(dir, { studyInstanceUid: study, seriesInstanceUid: series, fileNamePrefix: 'A' }, syntheticVolume([16, 16, 8], [1, 1, 1], [0, 0, 0]));
    await writeSeries(dir, { studyInstanceUid: study, seriesInstanceUid: series, fileNamePrefix: 'B', firstInstanceNumber: 9 }, syntheticVolume([32, 32, 8], [1, 1, 1], [0, 0, 8]));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/mixes image sizes \(16x16: 8, 32x32: 8 slices\)/);
  });

  it('mixed orientations in one series', async () => {
    const dir = join(root, 'orient');
    await writeSeries(dir, { sliceAttributes: (k) => (k === 3 ? { ImageOrientationPatient: ['1', '0', '0', '0', '0.98', '-0.2'] } : {}) }, syntheticVolume([16, 16, 12]));
    expect(await vbmdMessage(() => loadInputPath(dir))).toMatch(/mixes slice orientations/);
  });

  it('a single DICOM file cannot make a volume', async () => {
    const dir = join(root, 'single');
    const files = await writeSeries(dir, {}, syntheticVolume([16, 16, 12]));
    expect(await vbmdMessage(() => loadInputPath(files[0], { minSlices: 1 }))).toMatch(/single slice/);
    expect(await vbmdMessage(() => loadInputPath(files[0]))).toMatch(/too few slices \(1/);
  });

  it('a non-DICOM single file', async () => {
    const f = join(root, 'note.txt');
    await writeFile(f, 'x');
    expect(await vbmdMessage(() => loadInputPath(f))).toMatch(/neither a DICOM file nor a \.nii/);
  });

  it('leaves nothing behind on failure and the folder is reusable', async () => {
    const dir = join(root, 'retry');
    const files = await writeSeries(dir, {}, syntheticVolume([16, 16, 12]));
    const good = await readFile(files[2]);
    await truncate(files[2], 1500);
    await vbmdMessage(() => loadInputPath(dir));
    await writeFile(files[2], good);
    const { volume } = await loadInputPath(dir);
    expect(volume.dims).toEqual([16, 16, 12]);
    await rm(dir, { recursive: true });
  });
});
