import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { sharedDecodePool } from '../../src/dicom/codecs/decode-pool.js';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { readNiftiFile } from '../../src/imaging/nifti.js';
import { withoutUids } from '../dicom/no-uid.js';
import { syntheticVolume, tempDir, writeSeries } from '../dicom/synthetic-series.js';

/**
 * Folders of CT files whose Study, Series and SOP Instance UIDs are empty or missing: grouped into series
 * as dcm2niix groups them, read with substitute UIDs that are stable, and reported as such. The first case
 * mirrors a Siemens PET/CT export: a 20-slice CT series compressed with JPEG 2000 (lossless) beside a PET
 * series, every UID empty.
 */
let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('no-uid'));
});
afterAll(async () => {
  await sharedDecodePool().close();
  await cleanup();
});

/** Writes a series, optionally compresses it with gdcmconv, then empties (or removes) its UIDs. */
async function noUidSeries(dir: string, meta: Parameters<typeof writeSeries>[1], vol = syntheticVolume([96, 80, 20]), o: { j2k?: boolean; mode?: 'empty' | 'absent' } = {}): Promise<string[]> {
  // Written with UIDs outside every folder the tests read, then copied in without them.
  const staging = join(root, 'staging', dir.slice(root.length).replace(/\//g, '_'));
  const files = await writeSeries(staging, meta, vol);
  await mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (const f of files) {
    const dst = join(dir, basename(f));
    if (o.j2k) {
      const r = spawnSync('/usr/bin/gdcmconv', ['--j2k', f, dst], { encoding: 'utf8' });
      if (r.error || r.status !== 0) throw new Error(`gdcmconv --j2k (Debian package libgdcm-tools) failed: ${r.error?.message ?? r.stderr}`);
    } else await cp(f, dst);
    await writeFile(dst, withoutUids(await readFile(dst), o.mode ?? 'empty'));
    out.push(dst);
  }
  return out;
}

const PET_CT = { manufacturer: 'SIEMENS', manufacturerModelName: 'Biograph128', patientId: 'PETCT-1', acquisitionDateTime: '2024-03-01T10:00:00' };

describe('series without UIDs', () => {
  it('a PET/CT export (JPEG 2000 CT, 20 slices, PET beside it, every UID empty) reads as one CT series with substitute UIDs, said so', async () => {
    const dir = join(root, 'petct');
    const vol = syntheticVolume([96, 80, 20]);
    await noUidSeries(join(dir, 'CT'), { ...PET_CT, seriesNumber: 2, seriesDescription: 'CT 3.0 B30f' }, vol, { j2k: true });
    await noUidSeries(join(dir, 'PT'), { ...PET_CT, seriesNumber: 3, modality: 'PT', seriesDescription: 'PET AC' }, syntheticVolume([32, 32, 20]));
    const { volume, meta } = await loadInputPath(dir);
    expect(volume.dims).toEqual([96, 80, 20]);
    // The same HU as the original files (JPEG 2000 lossless).
    for (let n = 0; n < vol.hu.length; n += 997) expect(volume.hu[n]).toBe(vol.hu[n]);
    expect(meta.seriesInstanceUid).toMatch(/^2\.25\.\d+$/);
    expect(meta.studyInstanceUid).toMatch(/^2\.25\.\d+$/);
    const warnings = (meta.warnings ?? []).join(' | ');
    expect(warnings).toMatch(/no Study Instance UID, Series Instance UID, SOP Instance UID \(empty or missing in the source\)/);
    expect(warnings).toMatch(/substitute UIDs .* not known to the PACS/);
    // CT and PET share the substitute study (same patient, study date and time): no "several studies" note.
    expect(warnings).not.toMatch(/studies/);
    expect(meta.skippedSeries?.map((s) => s.reason)).toEqual(['PT, not CT']);
  });

  it('substitute UIDs are stable: the same files in another folder, read again, give the same UIDs', async () => {
    const a = join(root, 'petct');
    const b = join(root, 'elsewhere', 'copy');
    await cp(a, b, { recursive: true });
    const first = await loadInputPath(a);
    const second = await loadInputPath(b);
    expect(second.meta.studyInstanceUid).toBe(first.meta.studyInstanceUid);
    expect(second.meta.seriesInstanceUid).toBe(first.meta.seriesInstanceUid);
  });

  it('dcm2niix reads the no-UID CT as one series of 20 slices too', async () => {
    const out = join(root, 'petct-nii');
    await mkdir(out, { recursive: true });
    const r = spawnSync('/usr/bin/dcm2niix', ['-z', 'n', '-f', '%s', '-o', out, join(root, 'petct', 'CT')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const nii = (await readdir(out)).filter((f) => f.endsWith('.nii'));
    expect(nii).toHaveLength(1);
    expect((await readNiftiFile(join(out, nii[0]))).volume.dims).toEqual([96, 80, 20]);
  });

  it('absent (not just empty) UIDs read the same way', async () => {
    const dir = join(root, 'absent');
    await noUidSeries(dir, { seriesNumber: 5 }, syntheticVolume([32, 32, 12]), { mode: 'absent' });
    const { volume, meta } = await loadInputPath(dir);
    expect(volume.dims).toEqual([32, 32, 12]);
    expect(meta.warnings?.join(' ')).toMatch(/no Study Instance UID, Series Instance UID, SOP Instance UID/);
  });

  it('series numbers, image types and geometry separate series; the thin axial one is chosen', async () => {
    const dir = join(root, 'several');
    const common = { patientId: 'P-2', acquisitionDateTime: '2024-04-01T09:00:00' };
    await noUidSeries(join(dir, 'a'), { ...common, seriesNumber: 2, sliceThicknessMm: 1 }, syntheticVolume([32, 32, 30], [0.7, 0.7, 1]));
    await noUidSeries(join(dir, 'b'), { ...common, seriesNumber: 3, sliceThicknessMm: 5 }, syntheticVolume([32, 32, 12], [0.7, 0.7, 5]));
    await noUidSeries(join(dir, 'c'), { ...common, seriesNumber: 2, imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] }, syntheticVolume([32, 32, 2]));
    await noUidSeries(join(dir, 'd'), { ...common, seriesNumber: 2, imageType: ['DERIVED', 'SECONDARY', 'AXIAL'] }, syntheticVolume([32, 32, 30], [0.7, 0.7, 1]));
    const scan = await new FolderDicomSource(dir).scan();
    expect(scan.series.map((s) => s.instanceCount).sort((x, y) => (x ?? 0) - (y ?? 0))).toEqual([2, 12, 30, 30]);
    const { volume, meta } = await loadInputPath(dir);
    expect(volume.dims).toEqual([32, 32, 30]);
    expect(meta.skippedSeries).toHaveLength(3);
  });

  it('two acquisitions at the same positions without UIDs become two series (by Acquisition Number), not a collision', async () => {
    const dir = join(root, 'two-acq');
    const vol = syntheticVolume([24, 24, 12]);
    await noUidSeries(join(dir, 'a1'), { seriesNumber: 6, extraAttributes: { AcquisitionNumber: '1' }, fileNamePrefix: 'A' }, vol);
    await noUidSeries(join(dir, 'a2'), { seriesNumber: 6, extraAttributes: { AcquisitionNumber: '2' }, fileNamePrefix: 'B' }, vol);
    const scan = await new FolderDicomSource(dir).scan();
    expect(scan.series.map((s) => s.instanceCount)).toEqual([12, 12]);
    expect(new Set(scan.series.map((s) => s.seriesInstanceUid)).size).toBe(2);
    const { volume } = await loadInputPath(dir);
    expect(volume.dims).toEqual([24, 24, 12]);
  });

  it('acquisition numbers that change along one stack (step-and-shoot CT) keep it one series', async () => {
    const dir = join(root, 'step-and-shoot');
    await noUidSeries(dir, { seriesNumber: 7, sliceAttributes: (k) => ({ AcquisitionNumber: String(1 + Math.floor(k / 4)) }) }, syntheticVolume([24, 24, 12]));
    const scan = await new FolderDicomSource(dir).scan();
    expect(scan.series.map((s) => s.instanceCount)).toEqual([12]);
    expect((await loadInputPath(dir)).volume.dims).toEqual([24, 24, 12]);
  });

  it('a file copied twice is one instance (same substitute SOP Instance UID), not a duplicate position', async () => {
    const dir = join(root, 'copied');
    const files = await noUidSeries(dir, { seriesNumber: 8 }, syntheticVolume([24, 24, 12]));
    await cp(files[3], join(dir, 'copy-of-4.dcm'));
    const { volume } = await loadInputPath(dir);
    expect(volume.dims).toEqual([24, 24, 12]);
  });
});
