import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startOrthanc, type OrthancHandle } from '../support/orthanc.js';
import { DicomWebSource } from '../../src/dicom/dicomweb/source.js';
import { loadStudyVolume } from '../../src/dicom/load-study.js';
import { sharedDecodePool } from '../../src/dicom/codecs/decode-pool.js';
import { newDicomUid } from '../../src/dicom/write-series.js';
import { loadInputPath } from '../../src/analysis/load-input.js';
import type { LoadedVolume } from '../../src/imaging/volume.js';
import { writeEnhancedCt } from '../dicom/enhanced-ct.js';
import { withoutUids } from '../dicom/no-uid.js';
import { patternVolume, scratchDir, writeSeries } from './fixtures.js';
import { startProxy, type TestProxy } from './proxy.js';

/**
 * Enhanced CT and series without UIDs over DICOMweb, against a real Orthanc (+ DICOMweb plugin).
 * - Enhanced CT: QIDO counts its frames, WADO-RS brings the multi-frame instance, and its frames make the
 *   same volume as the file read from a folder (native and JPEG 2000, series and instance retrieves).
 * - Empty UIDs: Orthanc (Debian 1.10) refuses such instances at upload, so through Orthanc they never
 *   reach vbmd: read them from a folder. A PACS that accepts them under UIDs of its own and serves the
 *   files as stored is simulated with a proxy; its UIDs are the ones reported.
 */
let pacs: OrthancHandle;
let work: string;
const proxies: TestProxy[] = [];
const sources: DicomWebSource[] = [];
const enhancedStudy = newDicomUid();
const j2kStudy = newDicomUid();

function source(baseUrl: string, opts: Partial<ConstructorParameters<typeof DicomWebSource>[0]> = {}): DicomWebSource {
  const s = new DicomWebSource({ baseUrl, ...opts });
  sources.push(s);
  return s;
}

function sameVoxels(a: LoadedVolume, b: LoadedVolume): boolean {
  return a.volume.dims.join() === b.volume.dims.join() && Buffer.compare(Buffer.from(a.volume.hu.buffer, a.volume.hu.byteOffset, a.volume.hu.byteLength), Buffer.from(b.volume.hu.buffer, b.volume.hu.byteOffset, b.volume.hu.byteLength)) === 0;
}

beforeAll(async () => {
  work = scratchDir('dicomweb-enhanced');
  pacs = await startOrthanc();
  const vol = patternVolume([48, 40, 14], 1.25, 21);
  await writeEnhancedCt(join(work, 'native', 'e.dcm'), vol, { studyInstanceUid: enhancedStudy, patientId: 'ENH-W' });
  await writeEnhancedCt(join(work, 'j2k-src', 'e.dcm'), vol, { studyInstanceUid: j2kStudy, patientId: 'ENH-W' });
  const r = spawnSync('/usr/bin/gdcmconv', ['--j2k', join(work, 'j2k-src', 'e.dcm'), join(work, 'j2k.dcm')], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`gdcmconv --j2k (Debian package libgdcm-tools) failed: ${r.error?.message ?? r.stderr}`);
  await pacs.upload([join(work, 'native', 'e.dcm'), join(work, 'j2k.dcm')]);
});

afterAll(async () => {
  for (const s of sources) s.close();
  for (const p of proxies) await p.close();
  await pacs?.stop();
  await sharedDecodePool().close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('Enhanced CT over DICOMweb', () => {
  it('QIDO counts the frames of the one instance, and the streamed volume equals the folder read', async () => {
    const src = source(pacs.dicomWebUrl);
    const [series] = await src.findSeries({ studyInstanceUid: enhancedStudy });
    expect(series).toMatchObject({ instanceCount: 1, frameCount: 14, imageType: ['ORIGINAL', 'PRIMARY', 'VOLUME', 'NONE'] });
    const remote = await loadStudyVolume(src, { studyInstanceUid: enhancedStudy }, { kind: 'dicomweb' });
    const local = await loadInputPath(join(work, 'native'));
    expect(remote.volume.dims).toEqual([48, 40, 14]);
    expect(sameVoxels(remote, local)).toBe(true);
    expect(remote.volume.originMm).toEqual(local.volume.originMm);
    expect(remote.meta.warnings).toEqual([]);
  });

  it('JPEG 2000 multi-frame as stored, retrieved per instance too, decodes to the same voxels', async () => {
    const local = await loadInputPath(join(work, 'native'));
    for (const retrieve of ['series', 'instances'] as const) {
      const src = source(pacs.dicomWebUrl, { retrieve });
      const remote = await loadStudyVolume(src, { studyInstanceUid: j2kStudy }, { kind: 'dicomweb' });
      expect(sameVoxels(remote, local), retrieve).toBe(true);
    }
  });
});

describe('series without UIDs over DICOMweb', () => {
  it('Orthanc refuses instances whose UIDs are empty (documented limit: such series are read from a folder)', async () => {
    const s = await writeSeries(work, 'nouid', patternVolume([32, 32, 3], 1, 22), { patientId: 'NOUID', studyInstanceUid: newDicomUid() });
    const bytes = withoutUids(readFileSync(s.files[0]), 'empty');
    const err = await pacs.upload([bytes]).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/400/);
    expect(err?.message).toMatch(/missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID/);
  });

  it('a PACS that indexed files without UIDs under its own and serves them as stored: its UIDs are reported, with the warning', async () => {
    const s = await writeSeries(work, 'indexed', patternVolume([32, 32, 12], 1, 23), { patientId: 'NOUID-2', studyInstanceUid: newDicomUid(), accessionNumber: 'ACC-NOUID' });
    await pacs.upload(s.files);
    // What the PACS stores and sends back: the same files, every UID emptied.
    const asStored = new Map<number, Buffer>();
    const original = s.files.map((f) => readFileSync(f));
    const proxy = await startProxy(pacs.baseUrl, (req, res, forward) => {
      if (!/\/series\/[0-9.]+$/.test(req.url ?? '')) return forward();
      const boundary = 'no-uid-boundary';
      const parts = original.map((b, n) => {
        const body = asStored.get(n) ?? withoutUids(b, 'empty');
        asStored.set(n, body);
        return Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), body, Buffer.from('\r\n')]);
      });
      res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` });
      res.end(Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]));
    });
    proxies.push(proxy);
    const src = source(`${proxy.url}/dicom-web`);
    const loaded = await loadStudyVolume(src, { accessionNumber: 'ACC-NOUID' }, { kind: 'dicomweb' });
    expect(loaded.volume.dims).toEqual([32, 32, 12]);
    expect(loaded.meta.studyInstanceUid).toBe(s.studyInstanceUid);
    expect(loaded.meta.seriesInstanceUid).toBe(s.seriesInstanceUid);
    // Study and series are the server's now; only the instances' UIDs are vbmd's.
    expect(loaded.meta.warnings?.join(' ')).toMatch(/The images had no SOP Instance UID \(empty or missing in the source\)/);
  });
});
