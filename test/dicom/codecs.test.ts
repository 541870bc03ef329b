import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDicomSlice, parseDicomSliceAsync, parseDicomSliceParallel, peekTransferSyntax } from '../../src/dicom/parse.js';
import { DecodePool, DecodeWorkerError, sharedDecodePool } from '../../src/dicom/codecs/decode-pool.js';
import { transferSyntaxInfo } from '../../src/dicom/codecs/transfer-syntax.js';
import { writeCtSeries } from '../../src/dicom/write-series.js';
import { decodeRle } from '../../src/dicom/codecs/rle.js';
import dcmjs from 'dcmjs';
import { writeFile } from 'node:fs/promises';
import type { Volume } from '../../src/imaging/volume.js';

/**
 * Each codec on real files: an uncompressed CT slice we wrote, recompressed by GDCM's gdcmconv (an
 * independent encoder), must decode to exactly the original stored values (lossless syntaxes).
 */
let dir: string;
let original: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vbmd-codecs-'));
  const dims: Volume['dims'] = [64, 48, 1];
  const hu = new Float32Array(64 * 48);
  // Air, soft tissue, bone and values below the intercept (stored negative: exercises signed decoding).
  for (let j = 0; j < 48; j++) for (let i = 0; i < 64; i++) hu[i + 64 * j] = ((i * 37 + j * 101) % 3200) - 1200;
  const paths = await writeCtSeries(dir, { hu, dims, spacingMm: [0.7, 0.7, 1], originMm: [0, 0, 0], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }, { patientId: 'P' });
  original = paths[0];
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function gdcmconv(flags: string[], name: string): string {
  const out = join(dir, name);
  const r = spawnSync('/usr/bin/gdcmconv', [...flags, original, out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gdcmconv ${flags.join(' ')} failed: ${r.stderr}`);
  return out;
}

const CASES: { flags: string[]; ts: string }[] = [
  { flags: ['--j2k'], ts: '1.2.840.10008.1.2.4.90' },
  { flags: ['--jpegls'], ts: '1.2.840.10008.1.2.4.80' },
  { flags: ['--jpeg'], ts: '1.2.840.10008.1.2.4.70' },
  { flags: ['--rle'], ts: '1.2.840.10008.1.2.5' },
  { flags: ['--implicit'], ts: '1.2.840.10008.1.2' },
  { flags: ['--deflated'], ts: '1.2.840.10008.1.2.1.99' },
];

describe('compressed transfer syntaxes decode losslessly', () => {
  for (const c of CASES) {
    it(`${c.flags.join(' ')} -> ${c.ts}`, async () => {
      const ref = parseDicomSlice(await readFile(original), original);
      const file = gdcmconv(c.flags, `${c.flags[0].replace(/-/g, '')}.dcm`);
      const bytes = await readFile(file);
      expect(peekTransferSyntax(bytes, file)).toBe(c.ts);
      const s = await parseDicomSliceAsync(bytes, file);
      expect(s.transferSyntaxUid).toBe(c.ts);
      expect(s.rows).toBe(48);
      expect(s.columns).toBe(64);
      expect(s.pixelRepresentation).toBe(1);
      expect(s.pixels.length).toBe(ref.pixels.length);
      let diffs = 0;
      for (let n = 0; n < ref.pixels.length; n++) if (s.pixels[n] !== ref.pixels[n]) diffs++;
      expect(diffs).toBe(0);
      expect(Math.min(...s.pixels)).toBeLessThan(0);
    });
  }
});

describe('worker-thread decode pool', () => {
  afterAll(async () => {
    await sharedDecodePool().close();
  });
  it('decodes 128x96 frames of every lossless codec in worker threads, bit-exact, concurrently', async () => {
    const dims: Volume['dims'] = [128, 96, 1];
    const hu = new Float32Array(128 * 96);
    for (let n = 0; n < hu.length; n++) hu[n] = ((n * 53) % 3100) - 1150;
    const [big] = await writeCtSeries(join(dir, 'big'), { hu, dims, spacingMm: [0.7, 0.7, 1], originMm: [0, 0, 0], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }, { patientId: 'P' });
    const ref = parseDicomSlice(await readFile(big), big);
    const results = await Promise.all(
      ['--j2k', '--jpegls', '--jpeg', '--rle', '--j2k', '--jpegls'].map(async (flag, i) => {
        const out = join(dir, `big${i}.dcm`);
        expect(spawnSync('/usr/bin/gdcmconv', [flag, big, out]).status).toBe(0);
        return parseDicomSliceParallel(await readFile(out), out);
      }),
    );
    for (const s of results) {
      expect(s.pixels).toBeInstanceOf(Int16Array);
      expect(Buffer.compare(Buffer.from(s.pixels.buffer, s.pixels.byteOffset, s.pixels.byteLength), Buffer.from(ref.pixels.buffer, ref.pixels.byteOffset, ref.pixels.byteLength))).toBe(0);
    }
  });

  it('a worker that dies rejects its pending decodes with DecodeWorkerError (callers then decode locally)', async () => {
    const pool = new DecodePool(1);
    const pending = pool.decode(transferSyntaxInfo('1.2.840.10008.1.2.4.90'), new Uint8Array(100), { rows: 8, columns: 8, bitsAllocated: 16, pixelRepresentation: 1, samplesPerPixel: 1 });
    const closed = pool.close();
    await expect(pending).rejects.toBeInstanceOf(DecodeWorkerError);
    await closed;
  });

  it('reports a corrupt compressed frame as a VbmdError naming the file', async () => {
    const out = join(dir, 'corrupt.dcm');
    const dims: Volume['dims'] = [128, 96, 1];
    const [big] = await writeCtSeries(join(dir, 'big2'), { hu: new Float32Array(128 * 96).fill(40), dims, spacingMm: [1, 1, 1], originMm: [0, 0, 0], direction: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }, { patientId: 'P' });
    expect(spawnSync('/usr/bin/gdcmconv', ['--jpegls', big, out]).status).toBe(0);
    const bytes = new Uint8Array(await readFile(out));
    // Overwrite the middle of the JPEG-LS stream (the end of the file holds the pixel fragments).
    for (let n = bytes.length - 60; n < bytes.length - 20; n++) bytes[n] = 0xff;
    await expect(parseDicomSliceParallel(bytes, out)).rejects.toThrow(/corrupt\.dcm: the JPEG-LS Lossless pixel data could not be decoded/);
  });
});

describe('JPEG baseline (8-bit, lossy)', () => {
  it('decodes a gdcmconv --jpeg --lossy file to within 1 grey level of the original', async () => {
    const { DicomDict, DicomMetaDictionary } = dcmjs.data;
    const px = new Uint8Array(64 * 48);
    for (let j = 0; j < 48; j++) for (let i = 0; i < 64; i++) px[i + 64 * j] = (i * 3 + j * 2) & 255;
    const sop = '1.2.826.0.1.3680043.2.1125.1';
    const d = new DicomDict(
      DicomMetaDictionary.denaturalizeDataset({
        FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
        MediaStorageSOPClassUID: '1.2.840.10008.5.1.4.1.1.7',
        MediaStorageSOPInstanceUID: sop,
        TransferSyntaxUID: '1.2.840.10008.1.2.1',
        ImplementationClassUID: '1.2.826.0.1.3680043.2.1125',
      }),
    );
    d.dict = DicomMetaDictionary.denaturalizeDataset({
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.7', SOPInstanceUID: sop, StudyInstanceUID: `${sop}.1`, SeriesInstanceUID: `${sop}.2`,
      Modality: 'OT', Rows: 48, Columns: 64, BitsAllocated: 8, BitsStored: 8, HighBit: 7, PixelRepresentation: 0,
      SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', PixelData: px.buffer, _vrMap: { PixelData: 'OB' },
    });
    const src = join(dir, '8bit.dcm');
    await writeFile(src, Buffer.from(d.write()));
    const out = join(dir, '8bit-jpeg.dcm');
    const r = spawnSync('/usr/bin/gdcmconv', ['--jpeg', '--lossy', '-q', '100', src, out], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const s = await parseDicomSliceAsync(await readFile(out), out);
    expect(s.transferSyntaxUid).toBe('1.2.840.10008.1.2.4.50');
    let maxDiff = 0;
    for (let n = 0; n < px.length; n++) maxDiff = Math.max(maxDiff, Math.abs(s.pixels[n] - px[n]));
    expect(maxDiff).toBeLessThanOrEqual(1);
  });
});

describe('RLE decoder (PS3.5 Annex G)', () => {
  it('decodes literal and replicate runs of a hand-built 16-bit frame', () => {
    // 2x2 frame, values 0x0102, 0x0102, 0x0304, 0xFFFF -> high plane 01 01 03 FF, low plane 02 02 04 FF
    const header = new Uint8Array(64);
    const dv = new DataView(header.buffer);
    const seg1 = [0xff, 0x01, 0x01, 0x03, 0xff]; // replicate 01 twice; literal 03 FF
    const seg2 = [0xff, 0x02, 0x01, 0x04, 0xff];
    dv.setUint32(0, 2, true);
    dv.setUint32(4, 64, true);
    dv.setUint32(8, 64 + seg1.length, true);
    const enc = new Uint8Array([...header, ...seg1, ...seg2]);
    const px = decodeRle(enc, { rows: 2, columns: 2, bitsAllocated: 16, pixelRepresentation: 0, samplesPerPixel: 1 });
    expect(Array.from(px)).toEqual([0x0102, 0x0102, 0x0304, 0xffff]);
    const signed = decodeRle(enc, { rows: 2, columns: 2, bitsAllocated: 16, pixelRepresentation: 1, samplesPerPixel: 1 });
    expect(signed[3]).toBe(-1);
  });

  it('rejects a segment that decodes short', () => {
    const header = new Uint8Array(64);
    const dv = new DataView(header.buffer);
    dv.setUint32(0, 1, true);
    dv.setUint32(4, 64, true);
    const enc = new Uint8Array([...header, 0x00, 0x05]);
    expect(() => decodeRle(enc, { rows: 2, columns: 2, bitsAllocated: 8, pixelRepresentation: 0, samplesPerPixel: 1 })).toThrow(/expected 4/);
  });
});
