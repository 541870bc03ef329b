import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { VbmdError } from '../util/errors.js';
import { us } from './dataset-values.js';
import { decodeEncapsulatedFrame, isEncapsulated, transferSyntaxInfo, type FrameInfo, type StoredPixels, type TransferSyntaxInfo } from './codecs/index.js';
import type { DicomSliceHeader } from './slice.js';

const PIXEL_DATA = 'x7fe00010';
export const ASK_FOR_NATIVE = 'ask the PACS for Explicit VR Little Endian (1.2.840.10008.1.2.1) or export uncompressed files';

/** Native pixels, or the encoded frame still to decode. */
export type Frame = { pixels: StoredPixels } | EncodedFrame;
export interface EncodedFrame {
  ts: TransferSyntaxInfo;
  encoded: Uint8Array;
  info: FrameInfo;
}

export function assertSupported(ts: TransferSyntaxInfo, source: string): void {
  if (ts.decoder === 'none') {
    throw new VbmdError(
      'unsupported',
      `${source} uses transfer syntax ${ts.uid} (${ts.name}), which vbmd cannot decode; ${ASK_FOR_NATIVE}.`,
      { transferSyntaxUid: ts.uid },
    );
  }
}

/**
 * Every frame's pixel data of one instance (`h`: its first plane's header), in frame order: native frames
 * as views into the file's bytes, compressed ones still encoded (one frame per Basic Offset Table entry or
 * fragment, PS3.5 A.4). Rejects what vbmd cannot turn into HU, and truncated or corrupt pixel data.
 */
export function readFrames(ds: DataSet, h: DicomSliceHeader, source: string): Frame[] {
  const el: Element | undefined = ds.elements[PIXEL_DATA];
  if (!el) {
    throw new VbmdError('bad-input', `${source} has no pixel data (7FE0,0010); it is not an image (e.g. a structured report or presentation state).`);
  }
  // A Modality LUT Sequence instead of Rescale Slope/Intercept (PS3.3 C.11.1) would need a table lookup.
  if (ds.elements.x00283000 && !ds.elements.x00281052 && !ds.elements.x52009229) {
    throw new VbmdError('unsupported', `${source} maps stored values to HU with a Modality LUT Sequence, not Rescale Slope/Intercept; vbmd cannot read it: export the series with rescale values.`);
  }
  if (h.rows <= 0 || h.columns <= 0) throw new VbmdError('bad-input', `${source} has no image size (Rows/Columns missing).`);
  const samples = us(ds, 'x00280002') ?? 1;
  if (samples !== 1) throw new VbmdError('unsupported', `${source} is a colour image (${samples} samples per pixel), not a CT slice.`);
  if (h.bitsAllocated !== 8 && h.bitsAllocated !== 16) {
    throw new VbmdError('unsupported', `${source} has ${h.bitsAllocated}-bit pixels; vbmd reads 8- and 16-bit CT images.`);
  }
  const ts = transferSyntaxInfo(h.transferSyntaxUid);
  assertSupported(ts, source);
  const info: FrameInfo = { rows: h.rows, columns: h.columns, bitsAllocated: h.bitsAllocated, pixelRepresentation: h.pixelRepresentation, samplesPerPixel: samples };
  const frames = h.numberOfFrames;
  if (!isEncapsulated(ts)) return nativeFrames(ds, el, info, frames, ts, source);

  if (!el.encapsulatedPixelData || !el.fragments || el.fragments.length === 0) {
    throw new VbmdError('bad-input', `${source} says ${ts.name} but has no compressed pixel fragments; the file is truncated or corrupt.`);
  }
  const last = el.fragments[el.fragments.length - 1];
  if (last.position + last.length > ds.byteArray.length) {
    throw new VbmdError('bad-input', `${source} is truncated: its compressed pixel data ends past the end of the file.`);
  }
  const out: Frame[] = [];
  for (let f = 0; f < frames; f++) out.push({ ts, encoded: encodedFrame(ds, el, f, frames, source), info });
  return out;
}

function nativeFrames(ds: DataSet, el: Element, info: FrameInfo, frames: number, ts: TransferSyntaxInfo, source: string): Frame[] {
  const bytes = ds.byteArray;
  const frameBytes = info.rows * info.columns * (info.bitsAllocated / 8);
  const need = frameBytes * frames;
  if (el.length === 0xffffffff || el.hadUndefinedLength) {
    throw new VbmdError('bad-input', `${source} says ${ts.name} but its pixel data is encapsulated; the file is corrupt.`);
  }
  if (el.length < need || el.dataOffset + need > bytes.length) {
    const have = Math.max(0, Math.min(el.length, bytes.length - el.dataOffset));
    throw new VbmdError('bad-input', `${source} is truncated: pixel data has ${have} of ${need} bytes; copy the file again from the source.`);
  }
  const out: Frame[] = [];
  for (let f = 0; f < frames; f++) out.push({ pixels: nativePixels(bytes, el.dataOffset + f * frameBytes, info, ts.decoder === 'native-be') });
  return out;
}

/** One frame's compressed bytes: by the Basic Offset Table, else one fragment per frame, else by end-of-image markers. */
function encodedFrame(ds: DataSet, el: Element, f: number, frames: number, source: string): Uint8Array {
  const fragments = el.fragments!;
  try {
    if (frames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, fragments.length);
    if (el.basicOffsetTable && el.basicOffsetTable.length === frames) return dicomParser.readEncapsulatedImageFrame(ds, el, f);
    if (fragments.length === frames) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, f, 1);
    const table = dicomParser.createJPEGBasicOffsetTable(ds, el);
    if (table.length !== frames) throw new Error(`${fragments.length} fragments and no offset table for ${frames} frames`);
    return dicomParser.readEncapsulatedImageFrame(ds, el, f, table);
  } catch (e) {
    throw new VbmdError('bad-input', `${source}: the compressed pixel data of frame ${f + 1} cannot be read (${message(e)}); the file is truncated or corrupt.`);
  }
}

export function decodeFrame(f: EncodedFrame, source: string): StoredPixels {
  try {
    return decodeEncapsulatedFrame(f.ts, f.encoded, f.info);
  } catch (e) {
    throw decodeError(e, f.ts, source);
  }
}

export function decodeError(e: unknown, ts: TransferSyntaxInfo, source: string): Error {
  const m = message(e);
  if (/before it was loaded/.test(m)) return e as Error;
  return new VbmdError('bad-input', `${source}: the ${ts.name} pixel data could not be decoded (${m}); the file is corrupt.`);
}

/** Native pixel data: a zero-copy view when aligned and little endian, else one copy (swapping if needed). */
export function nativePixels(bytes: Uint8Array, offset: number, info: FrameInfo, bigEndian: boolean): StoredPixels {
  const count = info.rows * info.columns;
  const signed = info.pixelRepresentation === 1;
  if (info.bitsAllocated === 8) {
    const out = signed ? new Int16Array(count) : new Uint16Array(count);
    if (signed) for (let n = 0; n < count; n++) out[n] = (bytes[offset + n] << 24) >> 24;
    else for (let n = 0; n < count; n++) out[n] = bytes[offset + n];
    return out;
  }
  const abs = bytes.byteOffset + offset;
  if (!bigEndian && abs % 2 === 0) {
    return signed ? new Int16Array(bytes.buffer, abs, count) : new Uint16Array(bytes.buffer, abs, count);
  }
  const out = new Uint16Array(count);
  if (bigEndian) for (let n = 0; n < count; n++) out[n] = (bytes[offset + 2 * n] << 8) | bytes[offset + 2 * n + 1];
  else for (let n = 0; n < count; n++) out[n] = bytes[offset + 2 * n] | (bytes[offset + 2 * n + 1] << 8);
  return signed ? new Int16Array(out.buffer) : out;
}

/** dicom-parser throws strings, Errors or { exception }: one sentence either way. */
export function message(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object') {
    const o = e as { exception?: unknown; message?: unknown };
    if (typeof o.exception === 'string') return o.exception;
    if (o.exception instanceof Error) return o.exception.message;
    if (typeof o.message === 'string') return o.message;
  }
  return String(e);
}
