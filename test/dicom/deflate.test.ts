import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDicomHeader, parseDicomSlice } from '../../src/dicom/parse.js';
import { isPermanentFailure } from '../../src/jobs/queue.js';
import { loadInputPath } from '../../src/analysis/load-input.js';
import { isVbmdError, type VbmdError } from '../../src/util/errors.js';
import { deflateBomb, gdcmDeflate, metaEnd } from './deflate-bomb.js';
import { syntheticVolume, tempDir, writeSeries } from './synthetic-series.js';

let dir: string;
let cleanup: () => Promise<void>;
let files: string[];
let deflated: Uint8Array;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('deflate'));
  files = await writeSeries(join(dir, 'native'), {}, syntheticVolume([64, 48, 12]));
  deflated = gdcmDeflate(files[0], join(dir, 'deflated.dcm'));
});
afterAll(async () => {
  await cleanup();
});

function caught(f: () => unknown): VbmdError {
  try {
    f();
  } catch (e) {
    expect(isVbmdError(e), `expected a VbmdError, got ${String(e)}`).toBe(true);
    return e as VbmdError;
  }
  throw new Error('expected a rejection');
}

describe('Deflated Explicit VR Little Endian: output bounded by what the header announces', () => {
  it('reads an honest deflated file exactly like its native original', () => {
    const a = parseDicomSlice(deflated, 'deflated.dcm');
    const b = parseDicomSlice(readFileSync(files[0]), files[0]);
    expect(a.transferSyntaxUid).toBe('1.2.840.10008.1.2.1.99');
    expect(a.sopInstanceUid).toBe(b.sopInstanceUid);
    expect(Array.from(a.pixels)).toEqual(Array.from(b.pixels));
  });

  it('stops a 2 MB file that inflates to 2 GiB at the announced size: a permanent bad-input error, fast', () => {
    const bomb = deflateBomb(deflated, 2048);
    expect(bomb.length).toBeLessThan(3 * 1024 * 1024);
    const t0 = performance.now();
    const e = caught(() => parseDicomSlice(bomb, 'bomb.dcm'));
    const ms = performance.now() - t0;
    expect(e.code).toBe('bad-input');
    expect(e.message).toMatch(/^bomb\.dcm: its deflated dataset inflates to more than 1 MB, more than its header announces \(64 x 48 pixels x 1 frame\(s\) of 16 bits\); the file is corrupt or a decompression bomb/);
    // The job layer fails such a job at once instead of retrying it.
    expect(isPermanentFailure(e)).toBe(true);
    // Bounded work: the announced 6 KB of pixels plus 1 MiB, not 2 GiB (inflating all of it takes seconds).
    expect(ms).toBeLessThan(1000);
  });

  it('a header-only scan of the bomb inflates only its header', () => {
    const bomb = deflateBomb(deflated, 2048);
    const t0 = performance.now();
    const h = parseDicomHeader(bomb, 'bomb.dcm');
    expect(performance.now() - t0).toBeLessThan(200);
    expect([h.columns, h.rows]).toEqual([64, 48]);
  });

  it('refuses a header that inflates past 8 MiB before any pixel data', () => {
    // The dataset cut right before Pixel Data, then zeros: a header that never ends.
    const dataset = inflateRawSync(deflated.subarray(metaEnd(deflated)));
    const d = dataset.subarray(0, dataset.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00])));
    const bomb = deflateBomb(deflated, 64, d);
    const e = caught(() => parseDicomHeader(bomb, 'hdr.dcm'));
    expect(e.message).toMatch(/^hdr\.dcm: the header of its deflated dataset inflates to more than 8 MB before any pixel data/);
    expect(caught(() => parseDicomSlice(bomb, 'hdr.dcm')).message).toMatch(/more than 8 MB before any pixel data/);
  });

  it('refuses a header announcing more pixel data than one object may hold', () => {
    const dataset = Buffer.from(inflateRawSync(deflated.subarray(metaEnd(deflated))));
    // NumberOfFrames (0028,0008) IS "1" -> "9" would still be small: announce 65535 x 65535 instead.
    for (const tag of [[0x28, 0x00, 0x10, 0x00], [0x28, 0x00, 0x11, 0x00]]) {
      const at = dataset.indexOf(Buffer.from(tag));
      dataset.writeUInt16LE(0xffff, at + 8);
    }
    const bomb = deflateBomb(deflated, 4, dataset);
    const e = caught(() => parseDicomSlice(bomb, 'big.dcm'));
    expect(e.message).toMatch(/^big\.dcm announces 65535 x 65535 pixels x 1 frame\(s\) of 16 bits, more than the 1024 MB of pixel data/);
    expect(isPermanentFailure(e)).toBe(true);
  });

  it('a bomb in a folder fails the load with that error (nothing read past the bound)', async () => {
    const folder = join(dir, 'bomb-folder');
    const series = await writeSeries(folder, {}, syntheticVolume([64, 48, 12]));
    await writeFile(series[5], deflateBomb(gdcmDeflate(series[5], join(dir, 'd5.dcm')), 1024));
    const err = await loadInputPath(folder).then(() => undefined, (e: unknown) => e);
    expect(isVbmdError(err), String(err)).toBe(true);
    expect((err as VbmdError).message).toContain(`${series[5]}: its deflated dataset inflates to more than`);
  });
});
