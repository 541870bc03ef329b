import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDicomHeader, parseDicomSlice, parseDicomSliceAsync, sliceFromScannedHeader, type PixelDataLocation } from '../../src/dicom/parse.js';
import { spawnSync } from 'node:child_process';
import { isVbmdError } from '../../src/util/errors.js';
import { syntheticVolume, tempDir, writeSeries } from './synthetic-series.js';

let dir: string;
let cleanup: () => Promise<void>;
let files: string[];
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('parse'));
  files = await writeSeries(join(dir, 's'), { seriesDescription: 'Abd 1mm', contrastAgent: 'IOPAMIDOL', gantryTiltDeg: 0, manufacturer: 'SIEMENS', seriesNumber: 5 }, syntheticVolume([16, 12, 3]));
});
afterAll(async () => {
  await cleanup();
});

function rejection(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isVbmdError(e), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a rejection');
}

/** Explicit VR little endian -> explicit VR big endian (retired 1.2.840.10008.1.2.2), for a flat dataset. */
function toBigEndian(le: Uint8Array): Uint8Array {
  const out = Uint8Array.from(le);
  const meta = dicomParser.readPart10Header(le);
  const ts = meta.elements.x00020010;
  out[ts.dataOffset + 18] = 0x32; // "...1.2.1" -> "...1.2.2" (same length)
  const start = Math.max(...Object.values(meta.elements).map((e) => e.dataOffset + e.length));
  const dv = new DataView(le.buffer, le.byteOffset, le.byteLength);
  const ov = new DataView(out.buffer);
  let p = start;
  while (p < le.length) {
    const group = dv.getUint16(p, true);
    const elem = dv.getUint16(p + 2, true);
    const vr = String.fromCharCode(le[p + 4], le[p + 5]);
    ov.setUint16(p, group, false);
    ov.setUint16(p + 2, elem, false);
    let len: number;
    let q: number;
    if (['OB', 'OW', 'OF', 'SQ', 'UT', 'UN'].includes(vr)) {
      len = dv.getUint32(p + 8, true);
      ov.setUint32(p + 8, len, false);
      q = p + 12;
    } else {
      len = dv.getUint16(p + 6, true);
      ov.setUint16(p + 6, len, false);
      q = p + 8;
    }
    const width = vr === 'US' || vr === 'SS' || vr === 'OW' ? 2 : vr === 'UL' || vr === 'SL' || vr === 'FL' ? 4 : vr === 'FD' ? 8 : 1;
    if (width > 1) for (let b = 0; b < len; b += width) for (let x = 0; x < width; x++) out[q + b + x] = le[q + b + width - 1 - x];
    p = q + len;
  }
  return out;
}

describe('parseDicomSlice', () => {
  it('fills every header field and the stored pixels', async () => {
    const s = parseDicomSlice(await readFile(files[1]), files[1]);
    expect(s).toMatchObject({
      source: files[1],
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      modality: 'CT',
      imageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
      seriesDescription: 'Abd 1mm',
      seriesNumber: 5,
      instanceNumber: 2,
      patientId: 'SYN-1',
      accessionNumber: 'ACC-1',
      studyDate: '20240506',
      acquisitionDate: '20240506',
      acquisitionTime: '070809',
      manufacturer: 'SIEMENS',
      kvp: 120,
      contrastAgent: 'IOPAMIDOL',
      gantryTiltDeg: 0,
      rows: 12,
      columns: 16,
      pixelSpacingMm: [0.7, 0.7],
      sliceThicknessMm: 1,
      imagePositionMm: [-22.4, -30, -99],
      imageOrientation: [1, 0, 0, 0, 1, 0],
      rescaleSlope: 1,
      rescaleIntercept: -1024,
      pixelRepresentation: 1,
      bitsAllocated: 16,
      bitsStored: 16,
      numberOfFrames: 1,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    });
    expect(s.sopInstanceUid).toMatch(/^2\.25\./);
    expect(s.pixels).toBeInstanceOf(Int16Array);
    expect(s.pixels.length).toBe(16 * 12);
    const vol = syntheticVolume([16, 12, 3]);
    expect(s.pixels[17]).toBe(vol.hu[16 * 12 + 17] + 1024);
  });

  it('header-only parse stops at pixel data and needs only the first bytes', async () => {
    const bytes = await readFile(files[0]);
    const h = parseDicomHeader(bytes.subarray(0, 4096), files[0], true);
    expect(h.rows).toBe(12);
    expect('pixels' in h).toBe(false);
    const m = rejection(() => parseDicomHeader(bytes.subarray(0, 600), files[0], true));
    expect(m).toMatch(/header longer than the bytes read/);
  });

  it('re-reads pixels at the scanned offset only when the file is what the scan saw', async () => {
    const bytes = await readFile(files[1]);
    const found: { pixelData?: PixelDataLocation } = {};
    const h = parseDicomHeader(bytes.subarray(0, 4096), files[1], true, found);
    const quick = sliceFromScannedHeader(h, bytes, found.pixelData!);
    expect(Array.from(quick!.pixels)).toEqual(Array.from(parseDicomSlice(bytes, files[1]).pixels));
    // Implicit VR (gdcmconv), same answer.
    const implicit = join(dir, 'implicit.dcm');
    expect(spawnSync('/usr/bin/gdcmconv', ['--implicit', files[1], implicit]).status).toBe(0);
    const ib = await readFile(implicit);
    const f2: { pixelData?: PixelDataLocation } = {};
    const ih = parseDicomHeader(ib, implicit, false, f2);
    expect(Array.from(sliceFromScannedHeader(ih, ib, f2.pixelData!)!.pixels)).toEqual(Array.from(quick!.pixels));
    // A different file at that path (pixel data moved) or a short file: no fast path.
    expect(sliceFromScannedHeader(h, bytes.subarray(0, bytes.length - 2), found.pixelData!)).toBeUndefined();
    expect(sliceFromScannedHeader(h, Buffer.concat([Buffer.alloc(2), bytes]), found.pixelData!)).toBeUndefined();
    // Compressed: never.
    const j2k = join(dir, 'j2k.dcm');
    expect(spawnSync('/usr/bin/gdcmconv', ['--j2k', files[1], j2k]).status).toBe(0);
    const jb = await readFile(j2k);
    const f3: { pixelData?: PixelDataLocation } = {};
    const jh = parseDicomHeader(jb, j2k, false, f3);
    expect(sliceFromScannedHeader(jh, jb, f3.pixelData!)).toBeUndefined();
  });

  it('reads explicit VR big endian (retired) files', async () => {
    const le = await readFile(files[2]);
    const be = toBigEndian(le);
    const a = parseDicomSlice(le, 'le');
    const b = await parseDicomSliceAsync(be, 'be');
    expect(b.transferSyntaxUid).toBe('1.2.840.10008.1.2.2');
    expect(b.rows).toBe(12);
    expect(Array.from(b.pixels)).toEqual(Array.from(a.pixels));
  });

  it('rejects a file that is not DICOM', () => {
    expect(rejection(() => parseDicomSlice(new TextEncoder().encode('hello world'), 'notes.txt'))).toBe(
      'notes.txt is not a DICOM file (no "DICM" marker at byte 128).',
    );
    expect(rejection(() => parseDicomSlice(new Uint8Array(2000), 'zeros.bin'))).toMatch(/zeros.bin is not a DICOM file/);
  });

  it('rejects a file truncated inside its header', async () => {
    const bytes = await readFile(files[0]);
    expect(rejection(() => parseDicomSlice(bytes.subarray(0, 700), 'cut.dcm'))).toMatch(/^cut.dcm is truncated or corrupt/);
  });

  it('rejects a file truncated inside its pixel data, with the byte count', async () => {
    const bytes = await readFile(files[0]);
    expect(rejection(() => parseDicomSlice(bytes.subarray(0, bytes.length - 100), 'short.dcm'))).toBe(
      `short.dcm is truncated: pixel data has ${16 * 12 * 2 - 100} of ${16 * 12 * 2} bytes; copy the file again from the source.`,
    );
  });

  it('rejects a file without pixel data', async () => {
    const bytes = await readFile(files[0]);
    const d = dicomParser.parseDicom(bytes);
    const cut = bytes.subarray(0, d.elements.x7fe00010.dataOffset - 12);
    expect(rejection(() => parseDicomSlice(cut, 'nopix.dcm'))).toMatch(/^nopix.dcm has no pixel data \(7FE0,0010\)/);
  });

  it('rejects multi-frame images and says so', async () => {
    const [f] = await writeSeries(join(dir, 'mf'), { extraAttributes: { NumberOfFrames: '3' } }, syntheticVolume([8, 8, 1]));
    expect(rejection(() => parseDicomSlice(readFileSync(f), f))).toMatch(/is a multi-frame image \(3 frames\) without per-frame positions/);
  });

  it('substitutes a missing SeriesInstanceUID and says so (substitute-uids.test.ts has the rules)', async () => {
    const [f] = await writeSeries(join(dir, 'nouid'), { extraAttributes: { SeriesInstanceUID: '' } }, syntheticVolume([8, 8, 1]));
    const s = parseDicomSlice(readFileSync(f), f);
    expect(s.substitutedUids).toEqual(['series']);
    expect(s.seriesInstanceUid).toMatch(/^2\.25\.\d+$/);
  });
});
