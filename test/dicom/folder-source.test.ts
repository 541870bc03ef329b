import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import dicomParser from 'dicom-parser';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { loadStudyVolume } from '../../src/dicom/load-study.js';
import { newDicomUid } from '../../src/dicom/write-series.js';
import { assembleVolume } from '../../src/dicom/assemble-volume.js';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { syntheticVolume, tempDir, writeSeries } from './synthetic-series.js';

let root: string;
let cleanup: () => Promise<void>;
const studyA = newDicomUid();
const studyB = newDicomUid();
const seriesA = newDicomUid();
const seriesB = newDicomUid();

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('folder-source'));
  await writeSeries(join(root, 'p1', 'visit1', 'ct'), { studyInstanceUid: studyA, seriesInstanceUid: seriesA, accessionNumber: 'A1', patientId: 'P1', convolutionKernel: 'B31f' }, syntheticVolume([24, 20, 14], [0.9, 0.9, 2]));
  await writeSeries(join(root, 'p1', 'visit2'), { studyInstanceUid: studyB, seriesInstanceUid: seriesB, accessionNumber: 'B2', patientId: 'P1' }, syntheticVolume([24, 20, 30], [0.9, 0.9, 1]));
});
afterAll(async () => {
  await cleanup();
});

describe('FolderDicomSource', () => {
  it('scans nested studies once and filters series by study, accession and patient', async () => {
    const src = new FolderDicomSource(root);
    const all = await src.findSeries({});
    expect(all.map((s) => s.seriesInstanceUid).sort()).toEqual([seriesA, seriesB].sort());
    const a = all.find((s) => s.seriesInstanceUid === seriesA)!;
    expect(a).toMatchObject({ studyInstanceUid: studyA, modality: 'CT', instanceCount: 14, orientation: 'axial', sliceThicknessMm: 2, accessionNumber: 'A1', convolutionKernel: 'B31f' });
    expect(a.extentMm).toBeCloseTo(13 * 2 + 2, 6);
    expect((await src.findSeries({ studyInstanceUid: studyB })).map((s) => s.seriesInstanceUid)).toEqual([seriesB]);
    expect((await src.findSeries({ accessionNumber: 'A1' })).map((s) => s.seriesInstanceUid)).toEqual([seriesA]);
    expect(await src.findSeries({ patientId: 'nobody' })).toEqual([]);
    expect(src.description).toBe(`folder ${root}`);
  });

  it('streams a series into the same volume as loadSlices + assembleVolume', async () => {
    const src = new FolderDicomSource(root);
    const [series] = await src.findSeries({ studyInstanceUid: studyA });
    const streamed = await src.loadVolume(series);
    const slices = await src.loadSlices(series);
    expect(slices).toHaveLength(14);
    const listed = assembleVolume(slices, src.description);
    expect(streamed.volume.dims).toEqual(listed.volume.dims);
    expect(streamed.volume.originMm).toEqual(listed.volume.originMm);
    expect(Buffer.compare(Buffer.from(streamed.volume.hu.buffer), Buffer.from(listed.volume.hu.buffer))).toBe(0);
  });

  it('loadStudyVolume picks the requested study', async () => {
    const v = await loadStudyVolume(new FolderDicomSource(root), { accessionNumber: 'A1' });
    expect(v.meta.seriesInstanceUid).toBe(seriesA);
    expect(v.volume.dims).toEqual([24, 20, 14]);
  });

  it('follows symbolic links to files (linked exports) and ignores dangling ones', async () => {
    const linked = join(root, '..', `${root.split('/').pop()}-links`);
    await mkdir(linked, { recursive: true });
    try {
      const src = new FolderDicomSource(join(root, 'p1', 'visit1'));
      const [series] = await src.findSeries({});
      for (const f of series.files) await symlink(f, join(linked, f.split('/').pop()!));
      await symlink(join(root, 'nowhere.dcm'), join(linked, 'dangling.dcm'));
      const v = await loadInputPath(linked);
      expect(v.volume.dims).toEqual([24, 20, 14]);
    } finally {
      await rm(linked, { recursive: true, force: true });
    }
  });

  it('an aborted load rejects with a cancelled VbmdError', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(loadStudyVolume(new FolderDicomSource(root), { accessionNumber: 'A1' }, { signal: ctl.signal })).rejects.toMatchObject({
      name: 'VbmdError',
      code: 'cancelled',
      message: expect.stringMatching(/^Loading accession A1 in folder .* was cancelled\.$/),
    });
  });

  it('a header longer than the 16 KB scan probe is read whole, also when the probe ends right after an element', async () => {
    // PatientComments (0010,4000) sits before ImagePositionPatient (0020,0032). Sized so that its value
    // ends exactly at byte 16384, the probe parses without error yet holds nothing after it.
    const dir = join(root, '..', `${root.split('/').pop()}-long-header`);
    try {
      const [probe] = await writeSeries(join(dir, '..', 'probe-size'), { extraAttributes: { PatientComments: 'xx' } }, syntheticVolume([24, 20, 1]));
      const at = dicomParser.parseDicom(await readFile(probe), { untilTag: 'x7fe00010' }).elements.x00104000.dataOffset;
      await writeSeries(dir, { extraAttributes: { PatientComments: 'x'.repeat(16 * 1024 - at) } }, syntheticVolume([24, 20, 12]));
      const [series] = await new FolderDicomSource(dir).findSeries({});
      expect(series).toMatchObject({ instanceCount: 12, orientation: 'axial' });
      expect((await loadInputPath(dir)).volume.dims).toEqual([24, 20, 12]);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(join(dir, '..', 'probe-size'), { recursive: true, force: true });
    }
  });

  it('a large object without pixel data (raw data) is scanned no further than 64 MiB and set aside', async () => {
    const dir = join(root, '..', `${root.split('/').pop()}-raw`);
    try {
      const [ct] = await writeSeries(join(dir, 'ct'), {}, syntheticVolume([24, 20, 12]));
      const bytes = await readFile(ct);
      const header = bytes.subarray(0, dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010' }).elements.x7fe00010.dataOffset - 12);
      // (7FD0,0010) OB, 70 MiB: a stand-in for a scanner's raw-data object, no Pixel Data after it.
      const el = Buffer.alloc(12);
      el.writeUInt16LE(0x7fd0, 0);
      el.writeUInt16LE(0x0010, 2);
      el.write('OB', 4, 'latin1');
      el.writeUInt32LE(70 * 2 ** 20, 8);
      await writeFile(join(dir, 'raw.dcm'), Buffer.concat([header, el, Buffer.alloc(70 * 2 ** 20)]));
      const scan = await new FolderDicomSource(dir).scan();
      expect(scan.unreadable.map((u) => u.message)).toEqual([`${join(dir, 'raw.dcm')}: no pixel data within its first 64 MiB; not an image vbmd reads.`]);
      expect((await loadInputPath(dir)).volume.dims).toEqual([24, 20, 12]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loadInputPath on a folder with two studies analyses one and says so', async () => {
    const v = await loadInputPath(root);
    expect(v.meta.seriesInstanceUid).toBe(seriesB); // more coverage (30 mm vs 28 mm is a tie; thinner wins)
    expect(v.meta.warnings?.join(' ')).toMatch(/holds 2 studies; only study .* was analysed/);
  });
});
