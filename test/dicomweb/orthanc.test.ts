import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startOrthanc, type OrthancHandle } from '../support/orthanc.js';
import { DicomWebSource } from '../../src/dicom/dicomweb/source.js';
import { DicomWebError } from '../../src/dicom/dicomweb/errors.js';
import { parseDicomSlice } from '../../src/dicom/parse.js';
import { newDicomUid } from '../../src/dicom/write-series.js';
import { chooseSeries } from '../../src/dicom/series-choice.js';
import type { DicomSlice } from '../../src/dicom/slice.js';
import { loadStudyVolume } from '../../src/dicom/load-study.js';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { assembleVolume } from '../../src/dicom/assemble-volume.js';
import { patternVolume, readAll, scratchDir, writeSeries, type WrittenSeries } from './fixtures.js';
import { startProxy } from './proxy.js';

/**
 * DICOMweb client and DicomWebSource against a real Orthanc + DICOMweb plugin on loopback.
 * Data: patient P-1 has two studies (ACC-1: localizer, 5 mm and 1 mm series, uploaded with POST /instances;
 * ACC-2: one 1 mm series, uploaded with STOW-RS); patient P-2 has one study (ACC-3) that is transcoded in
 * Orthanc to JPEG-LS; plus JPEG lossless and JPEG 2000 (gdcmconv) copies of a series.
 */
let pacs: OrthancHandle;
let work: string;
let source: DicomWebSource;
const study1 = newDicomUid();
const study2 = newDicomUid();
const study3 = newDicomUid();
let localizer: WrittenSeries;
let thick: WrittenSeries;
let thin: WrittenSeries;
let second: WrittenSeries;
let jpegLs: WrittenSeries;

function fromFiles(s: WrittenSeries): DicomSlice[] {
  return s.files.map((f, i) => parseDicomSlice(execFileSync('cat', [f]), `file ${i}`));
}

function sortByInstance(slices: DicomSlice[]): DicomSlice[] {
  return [...slices].sort((a, b) => (a.instanceNumber ?? 0) - (b.instanceNumber ?? 0));
}

function expectSamePixels(got: DicomSlice[], want: DicomSlice[]): void {
  const a = sortByInstance(got);
  const b = sortByInstance(want);
  expect(a.map((s) => s.sopInstanceUid)).toEqual(b.map((s) => s.sopInstanceUid));
  for (let i = 0; i < a.length; i++) {
    expect(a[i].pixels.length).toBe(b[i].pixels.length);
    expect(Buffer.from(a[i].pixels.buffer, a[i].pixels.byteOffset, a[i].pixels.byteLength).equals(
      Buffer.from(b[i].pixels.buffer, b[i].pixels.byteOffset, b[i].pixels.byteLength),
    )).toBe(true);
    expect(a[i].imagePositionMm).toEqual(b[i].imagePositionMm);
    expect(a[i].rescaleIntercept).toBe(b[i].rescaleIntercept);
  }
}

beforeAll(async () => {
  work = scratchDir('dicomweb');
  pacs = await startOrthanc();
  const common = { patientId: 'P-1', patientName: 'TEST^ONE', manufacturer: 'VBMD', kvp: 120 };
  localizer = await writeSeries(work, 'study1/loc', patternVolume([64, 64, 2], 1, 1), {
    ...common, studyInstanceUid: study1, accessionNumber: 'ACC-1', acquisitionDateTime: '2024-01-10T09:00:00',
    seriesNumber: 1, seriesDescription: 'Topogram', imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'],
  });
  thick = await writeSeries(work, 'study1/thick', patternVolume([64, 64, 6], 5, 2), {
    ...common, studyInstanceUid: study1, accessionNumber: 'ACC-1', acquisitionDateTime: '2024-01-10T09:00:00',
    seriesNumber: 2, seriesDescription: 'Chest 5.0 B30f', sliceThicknessMm: 5, convolutionKernel: 'B30f',
  });
  thin = await writeSeries(work, 'study1/thin', patternVolume([64, 64, 20], 1, 3), {
    ...common, studyInstanceUid: study1, accessionNumber: 'ACC-1', acquisitionDateTime: '2024-01-10T09:00:00',
    seriesNumber: 3, seriesDescription: 'Chest 1.0 B60f', sliceThicknessMm: 1, convolutionKernel: 'B60f',
  });
  second = await writeSeries(work, 'second', patternVolume([64, 64, 12], 1, 4), {
    ...common, studyInstanceUid: study2, accessionNumber: 'ACC-2', acquisitionDateTime: '2024-06-01T10:00:00',
    seriesNumber: 2, seriesDescription: 'Chest 1.0',
  });
  jpegLs = await writeSeries(work, 'jls', patternVolume([64, 64, 12], 1, 5), {
    patientId: 'P-2', studyInstanceUid: study3, accessionNumber: 'ACC-3', acquisitionDateTime: '2025-02-03T11:00:00',
    seriesNumber: 4, seriesDescription: 'Abdomen 1.0',
  });
  await pacs.upload([...localizer.files, ...thick.files, ...thin.files, ...jpegLs.files]);
  await pacs.stow(await readAll(second.files));
  source = new DicomWebSource({ baseUrl: pacs.dicomWebUrl });
});

afterAll(async () => {
  source?.close();
  await pacs?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('QIDO-RS against Orthanc', () => {
  it('finds every study of a patient, with dates and modalities', async () => {
    const studies = await source.findStudies({ patientId: 'P-1' });
    expect(studies.map((s) => s.studyInstanceUid).sort()).toEqual([study1, study2].sort());
    const s1 = studies.find((s) => s.studyInstanceUid === study1);
    expect(s1).toMatchObject({ accessionNumber: 'ACC-1', studyDate: '20240110', patientId: 'P-1', seriesCount: 3, instanceCount: 28 });
    expect(s1?.modalitiesInStudy).toEqual(['CT']);
  });

  it('finds a study by accession number, by UID, by modality and by date range', async () => {
    expect((await source.findStudies({ accessionNumber: 'ACC-2' })).map((s) => s.studyInstanceUid)).toEqual([study2]);
    expect((await source.findStudies({ studyInstanceUid: study3 })).map((s) => s.accessionNumber)).toEqual(['ACC-3']);
    expect(await source.findStudies({ accessionNumber: 'ACC-1', modalitiesInStudy: 'MR' })).toEqual([]);
    const inRange = await source.findStudies({ studyDateFrom: '2024-03-01', studyDateTo: '2025-12-31' });
    expect(inRange.map((s) => s.studyInstanceUid).sort()).toEqual([study2, study3].sort());
    const openEnded = await source.findStudies({ patientId: 'P-1', studyDateTo: '2024-02-01' });
    expect(openEnded.map((s) => s.studyInstanceUid)).toEqual([study1]);
  });

  it('pages with limit and offset', async () => {
    const all = await source.findStudies({ studyDateFrom: '2000-01-01' });
    expect(all).toHaveLength(3);
    const p1 = await source.findStudies({ studyDateFrom: '2000-01-01', limit: 2, offset: 0 });
    const p2 = await source.findStudies({ studyDateFrom: '2000-01-01', limit: 2, offset: 2 });
    expect(p1).toHaveLength(2);
    expect(p2).toHaveLength(1);
    expect(new Set([...p1, ...p2].map((s) => s.studyInstanceUid))).toEqual(new Set(all.map((s) => s.studyInstanceUid)));
  });

  it('lists the series of an accession with what series choice needs, and choice picks the thin one', async () => {
    const series = await source.findSeries({ accessionNumber: 'ACC-1' });
    const byUid = new Map(series.map((s) => [s.seriesInstanceUid, s]));
    expect(series).toHaveLength(3);
    expect(byUid.get(localizer.seriesInstanceUid)).toMatchObject({ imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'], seriesDescription: 'Topogram', instanceCount: 2, modality: 'CT' });
    expect(byUid.get(thick.seriesInstanceUid)).toMatchObject({ sliceThicknessMm: 5, convolutionKernel: 'B30f', instanceCount: 6, seriesNumber: 2, accessionNumber: 'ACC-1', patientId: 'P-1' });
    expect(byUid.get(thin.seriesInstanceUid)).toMatchObject({ sliceThicknessMm: 1, convolutionKernel: 'B60f', instanceCount: 20, imageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'], studyInstanceUid: study1 });
    const choice = chooseSeries(series, source.description);
    expect(choice.chosen.seriesInstanceUid).toBe(thin.seriesInstanceUid);
    expect(choice.skipped.map((s) => s.seriesInstanceUid)).toContain(localizer.seriesInstanceUid);
  });

  it('a patient ID alone returns the series of all their CT studies', async () => {
    const series = await source.findSeries({ patientId: 'P-1' });
    expect(series.map((s) => s.seriesInstanceUid).sort()).toEqual(
      [localizer, thick, thin, second].map((s) => s.seriesInstanceUid).sort(),
    );
  });

  it('an unknown accession number is a clear not-found error naming the server', async () => {
    const err = await source.findSeries({ accessionNumber: 'NOPE-9' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DicomWebError);
    expect((err as DicomWebError).code).toBe('not-found');
    expect((err as DicomWebError).message).toBe(
      `No study with accession number NOPE-9 was found on DICOMweb server ${pacs.dicomWebUrl}; check the identifiers, or wait until the study has arrived.`,
    );
  });

  it('refuses wildcard and malformed identifiers instead of widening the search', async () => {
    await expect(source.findStudies({ accessionNumber: 'ACC*' })).rejects.toThrow(/cannot be searched exactly/);
    await expect(source.findSeries({ studyInstanceUid: '1.2.3/../x' })).rejects.toThrow(/not a valid DICOM study UID/);
  });
});

describe('WADO-RS retrieve against Orthanc', () => {
  it('streams a series (uploaded by POST /instances) into the same slices as the files', async () => {
    const [cand] = (await source.findSeries({ accessionNumber: 'ACC-1' })).filter((s) => s.seriesInstanceUid === thin.seriesInstanceUid);
    const slices = await source.loadSlices(cand);
    expect(slices).toHaveLength(20);
    expectSamePixels(slices, fromFiles(thin));
    expect(slices[0].transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
    expect(slices[0].source).toMatch(/^instance \d+ of series .* from DICOMweb server http:\/\/127\.0\.0\.1:\d+\/dicom-web$/);
  });

  it('retrieves a STOW-RS-uploaded series, also instance by instance with bounded concurrency', async () => {
    const [cand] = await source.findSeries({ accessionNumber: 'ACC-2' });
    const perInstance = new DicomWebSource({ baseUrl: pacs.dicomWebUrl, retrieve: 'instances', instanceConcurrency: 3 });
    try {
      const a = await source.loadSlices(cand);
      const b = await perInstance.loadSlices(cand);
      expectSamePixels(a, fromFiles(second));
      expectSamePixels(b, fromFiles(second));
    } finally {
      perInstance.close();
    }
  });

  it('loads several series with bounded concurrency', async () => {
    const series = (await source.findSeries({ accessionNumber: 'ACC-1' })).sort((a, b) => (a.seriesNumber ?? 0) - (b.seriesNumber ?? 0));
    const loaded = await source.loadManySeries(series, { concurrency: 2 });
    expect(loaded.map((s) => s.length)).toEqual([2, 6, 20]);
    expectSamePixels(loaded[1], fromFiles(thick));
  });

  it('decodes a study Orthanc stores as JPEG-LS, then as JPEG lossless, losslessly', async () => {
    const want = fromFiles(jpegLs);
    const [study] = await pacs.rest<{ ID: string }[]>('POST', '/tools/lookup', study3).then((r) => r as unknown as { ID: string }[]);
    for (const ts of ['1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.70']) {
      await pacs.rest('POST', `/studies/${study.ID}/modify`, { Transcode: ts, Force: true, Keep: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'] });
      const [cand] = await source.findSeries({ accessionNumber: 'ACC-3' });
      const slices = await source.loadSlices(cand);
      expect(new Set(slices.map((s) => s.transferSyntaxUid))).toEqual(new Set([ts]));
      expectSamePixels(slices, want);
      // Streamed straight to a volume (codec loaded on the first part): same HU as assembling the files.
      const vol = await source.loadSeriesVolume(cand);
      const ref = assembleVolume(want, 'files');
      expect(Buffer.from(vol.volume.hu.buffer).equals(Buffer.from(ref.volume.hu.buffer))).toBe(true);
    }
  });

  it('decodes JPEG 2000 files made by gdcmconv --j2k and uploaded as such', async () => {
    const j2k = await writeSeries(work, 'j2k-src', patternVolume([64, 64, 10], 1, 6), {
      patientId: 'P-2', studyInstanceUid: newDicomUid(), accessionNumber: 'ACC-4', seriesDescription: 'j2k',
    });
    const converted = j2k.files.map((f, i) => {
      const out = join(work, `j2k-${i}.dcm`);
      execFileSync('/usr/bin/gdcmconv', ['--j2k', f, out]);
      return out;
    });
    await pacs.upload(converted);
    const [cand] = await source.findSeries({ accessionNumber: 'ACC-4' });
    const slices = await source.loadSlices(cand);
    expect(new Set(slices.map((s) => s.transferSyntaxUid))).toEqual(new Set(['1.2.840.10008.1.2.4.90']));
    expectSamePixels(slices, fromFiles(j2k));
  });

  it('asks again for Explicit VR Little Endian when instances are stored in a syntax we cannot decode (JPEG extended)', async () => {
    // 12-bit data so Orthanc (DCMTK) can make lossy JPEG Extended 1.2.840.10008.1.2.4.51, which we do not decode.
    const s = await writeSeries(work, 'jpeg51', patternVolume([64, 64, 4], 1, 8), {
      patientId: 'P-2', studyInstanceUid: newDicomUid(), accessionNumber: 'ACC-51', extraAttributes: { BitsStored: 12, HighBit: 11, PixelRepresentation: 0 },
    });
    const up = await pacs.upload(s.files);
    await pacs.rest('POST', `/studies/${up[0].ParentStudy}/modify`, { Transcode: '1.2.840.10008.1.2.4.51', Force: true, Keep: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'] });
    const instances = await pacs.rest<{ ID: string }[]>('GET', `/studies/${up[0].ParentStudy}/instances`);
    const stored = await pacs.restBytes('GET', `/instances/${instances[0].ID}/metadata/TransferSyntax`);
    expect(stored.toString()).toBe('1.2.840.10008.1.2.4.51');
    const proxy = await startProxy(pacs.baseUrl, (req, res, forward) => forward());
    const viaProxy = new DicomWebSource({ baseUrl: `${proxy.url}/dicom-web` });
    try {
      const [cand] = await viaProxy.findSeries({ accessionNumber: 'ACC-51' });
      const slices = await viaProxy.loadSlices(cand);
      expect(slices).toHaveLength(4);
      expect(new Set(slices.map((x) => x.transferSyntaxUid))).toEqual(new Set(['1.2.840.10008.1.2.1']));
      const accepts = proxy.requests.filter((r) => /\/series\/[0-9.]+$/.test(r.url)).map((r) => r.headers.accept);
      expect(accepts).toEqual([
        'multipart/related; type="application/dicom"; transfer-syntax=*',
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1',
      ]);
    } finally {
      viaProxy.close();
      await proxy.close();
    }
  });

  it('a series UID the server does not have is a not-found error for that series', async () => {
    const missing = newDicomUid();
    const err = await source.loadSlices({ studyInstanceUid: study1, seriesInstanceUid: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DicomWebError);
    expect((err as DicomWebError).code).toBe('not-found');
    expect((err as DicomWebError).seriesInstanceUid).toBe(missing);
    expect((err as DicomWebError).message).toContain(`series ${missing}`);
  });

  it('cancellation stops a retrieve with a cancelled error', async () => {
    const [cand] = (await source.findSeries({ accessionNumber: 'ACC-1' })).filter((s) => s.seriesInstanceUid === thin.seriesInstanceUid);
    const ac = new AbortController();
    ac.abort();
    const err = await source.loadSlices(cand, { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as DicomWebError).code).toBe('cancelled');
  });
});

describe('DICOMweb study to volume', () => {
  it('loadStudyVolume over DICOMweb by accession number (streamed path) gives the same volume as the folder of the same files', async () => {
    const remote = await loadStudyVolume(source, { accessionNumber: 'ACC-1' }, { kind: 'dicomweb' });
    const local = await loadStudyVolume(new FolderDicomSource(join(work, 'study1')), { accessionNumber: 'ACC-1' });
    expect(remote.meta.seriesInstanceUid).toBe(thin.seriesInstanceUid);
    expect(local.meta.seriesInstanceUid).toBe(thin.seriesInstanceUid);
    expect(remote.meta.kind).toBe('dicomweb');
    expect(remote.volume.dims).toEqual([64, 64, 20]);
    expect(remote.volume.dims).toEqual(local.volume.dims);
    expect(remote.volume.spacingMm).toEqual(local.volume.spacingMm);
    expect(remote.volume.originMm).toEqual(local.volume.originMm);
    expect(remote.volume.direction).toEqual(local.volume.direction);
    // Voxel equality, bit for bit.
    expect(Buffer.from(remote.volume.hu.buffer, remote.volume.hu.byteOffset, remote.volume.hu.byteLength).equals(
      Buffer.from(local.volume.hu.buffer, local.volume.hu.byteOffset, local.volume.hu.byteLength),
    )).toBe(true);
    // And both equal the HU that were written.
    expect(Array.from(remote.volume.hu.subarray(0, 4096))).toEqual(Array.from(thin.volume.hu.subarray(0, 4096)));
    expect(remote.meta.skippedSeries?.map((s) => s.seriesInstanceUid).sort()).toEqual(
      local.meta.skippedSeries?.map((s) => s.seriesInstanceUid).sort(),
    );

    // The slice-list path (loadSlices + assembleVolume) gives the identical volume too.
    const [thinCand] = (await source.findSeries({ accessionNumber: 'ACC-1' })).filter((c) => c.seriesInstanceUid === thin.seriesInstanceUid);
    const viaSlices = assembleVolume(await source.loadSlices(thinCand), source.description);
    expect(Buffer.from(viaSlices.volume.hu.buffer).equals(Buffer.from(local.volume.hu.buffer))).toBe(true);

    // The streamed path (slabs converted on arrival, sorted in place) gives the identical volume.
    const [cand] = (await source.findSeries({ accessionNumber: 'ACC-1' })).filter((c) => c.seriesInstanceUid === thin.seriesInstanceUid);
    const streamed = await source.loadSeriesVolume(cand);
    expect(streamed.volume.dims).toEqual(local.volume.dims);
    expect(streamed.volume.originMm).toEqual(local.volume.originMm);
    expect(streamed.volume.spacingMm).toEqual(local.volume.spacingMm);
    expect(Buffer.from(streamed.volume.hu.buffer).equals(Buffer.from(local.volume.hu.buffer))).toBe(true);
    expect(streamed.meta.kind).toBe('dicomweb');
    // Integer rescale: every path stores int16 HU (half the memory of float32).
    for (const v of [local, remote, viaSlices, streamed]) expect(v.volume.hu).toBeInstanceOf(Int16Array);
  });

  it('the streamed volume path sorts instances that arrive out of order and fills a single missing slice like assembly', async () => {
    // Upload in shuffled order, one slice left out: Orthanc answers in its own order.
    const uid = newDicomUid();
    const s = await writeSeries(work, 'shuffled', patternVolume([32, 32, 12], 2, 7), { patientId: 'P-3', studyInstanceUid: uid, accessionNumber: 'ACC-5' });
    const kept = s.files.filter((_, i) => i !== 5);
    const shuffled = [kept[7], kept[2], kept[9], kept[0], kept[4], kept[10], kept[1], kept[8], kept[3], kept[6], kept[5]];
    await pacs.upload(shuffled);
    const [cand] = await source.findSeries({ accessionNumber: 'ACC-5' });
    const streamed = await source.loadSeriesVolume(cand);
    // The folder still holds slice 5 (the complete series): the other slices must match it exactly.
    const local = await loadStudyVolume(new FolderDicomSource(join(work, 'shuffled')), { accessionNumber: 'ACC-5' }, { minSlices: 2 });
    expect(local.volume.dims).toEqual([32, 32, 12]);
    expect(streamed.volume.dims).toEqual([32, 32, 12]);
    expect(streamed.meta.warnings?.join(' ')).toMatch(/missing 1 slice/);
    const plane = 32 * 32;
    for (const k of [0, 4, 6, 11]) {
      expect(Array.from(streamed.volume.hu.subarray(k * plane, (k + 1) * plane))).toEqual(Array.from(local.volume.hu.subarray(k * plane, (k + 1) * plane)));
    }
    // The missing slice is the mean of its neighbours (fractional HU: the volume is float32 then).
    expect(streamed.volume.hu).toBeInstanceOf(Float32Array);
    expect(streamed.volume.hu[5 * plane + 100]).toBeCloseTo((streamed.volume.hu[4 * plane + 100] + streamed.volume.hu[6 * plane + 100]) / 2, 4);
  });
});
