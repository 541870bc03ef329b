import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { VbmdError, isVbmdError } from '../util/errors.js';
import { parseDeflatedPart10 } from './deflate.js';
import type { Vec3 } from '../imaging/volume.js';
import type { DicomSlice } from './slice.js';
import {
  decodeEncapsulatedFrame,
  isEncapsulated,
  prepareCodec,
  transferSyntaxInfo,
  type FrameInfo,
  type StoredPixels,
  type TransferSyntaxInfo,
} from './codecs/index.js';
import { DecodeWorkerError, sharedDecodePool } from './codecs/decode-pool.js';

/** Everything of a DicomSlice except the pixels: what a header-only scan yields. */
export type DicomSliceHeader = Omit<DicomSlice, 'pixels'>;

const PIXEL_DATA = 'x7fe00010';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const ASK_FOR_NATIVE = 'ask the PACS for Explicit VR Little Endian (1.2.840.10008.1.2.1) or export uncompressed files';

/**
 * Parses one Part-10 file into a DicomSlice: header fields plus decoded stored pixel values.
 * Synchronous: native, RLE and JPEG-lossless pixel data decode at once; JPEG 2000, JPEG-LS and JPEG
 * baseline need their WASM codec loaded first (`prepareCodecFor`), else use `parseDicomSliceAsync`.
 * Rejects with a VbmdError naming `source`: not DICOM, truncated, no pixel data, multi-frame, unsupported
 * transfer syntax, corrupt compressed stream.
 */
export function parseDicomSlice(bytes: Uint8Array, source: string): DicomSlice {
  const ds = parseDataSetOrExplain(bytes, source);
  const header = readHeader(ds, source);
  return { ...header, pixels: readPixels(ds, header, source) };
}

/** As parseDicomSlice, loading the transfer syntax's codec first if it needs one (lazily, once). */
export async function parseDicomSliceAsync(bytes: Uint8Array, source: string): Promise<DicomSlice> {
  await prepareCodecFor(peekTransferSyntax(bytes, source), source);
  return parseDicomSlice(bytes, source);
}

/**
 * Header only, stopping at PixelData. `bytes` may be just the start of the file; if the header does not
 * fit, this throws a VbmdError with details.needMoreBytes = true so the caller can retry with the whole file.
 */
export function parseDicomHeader(bytes: Uint8Array, source: string, partial = false, found?: { pixelData?: PixelDataLocation }): DicomSliceHeader {
  const ds = parseDataSet(bytes, source, true, partial);
  const header = readHeader(ds, source);
  const el = ds.elements[PIXEL_DATA];
  if (found && el) {
    found.pixelData = {
      offset: el.dataOffset,
      length: el.length,
      encapsulated: el.length === 0xffffffff || el.hadUndefinedLength === true,
      samplesPerPixel: us(ds, 'x00280002') ?? 1,
      modalityLut: ds.elements.x00283000 !== undefined && ds.elements.x00281052 === undefined,
    };
  }
  return header;
}

/** Where a file's PixelData value starts, from a header-only parse, and what decides how to read it. */
export interface PixelDataLocation {
  offset: number;
  length: number;
  encapsulated: boolean;
  samplesPerPixel: number;
  modalityLut: boolean;
}

/**
 * Fast path for a file whose header was just scanned: native little-endian pixels at the known offset
 * become a DicomSlice without parsing the dataset again. Returns undefined whenever anything does not
 * match (the file changed, another syntax, odd pixel format); the caller then uses parseDicomSlice,
 * which also produces the proper error for bad files.
 */
export function sliceFromScannedHeader(header: DicomSliceHeader, bytes: Uint8Array, at: PixelDataLocation): DicomSlice | undefined {
  const uid = header.transferSyntaxUid;
  const explicit = uid === '1.2.840.10008.1.2.1';
  if ((!explicit && uid !== '1.2.840.10008.1.2') || at.encapsulated || at.modalityLut || at.samplesPerPixel !== 1) return undefined;
  if (header.bitsAllocated !== 16 || header.numberOfFrames > 1 || !(header.rows > 0 && header.columns > 0)) return undefined;
  const need = header.rows * header.columns * 2;
  if (at.length < need || at.offset + need > bytes.length) return undefined;
  // The PixelData tag must sit right before its value: explicit VR (tag, VR, 2 reserved, 32-bit length)
  // or implicit VR (tag, 32-bit length), PS3.5 7.1.
  const tagAt = at.offset - (explicit ? 12 : 8);
  if (tagAt < 0 || bytes[tagAt] !== 0xe0 || bytes[tagAt + 1] !== 0x7f || bytes[tagAt + 2] !== 0x10 || bytes[tagAt + 3] !== 0x00) return undefined;
  const info: FrameInfo = { rows: header.rows, columns: header.columns, bitsAllocated: 16, pixelRepresentation: header.pixelRepresentation, samplesPerPixel: 1 };
  return { ...header, pixels: nativePixels(bytes, at.offset, info, false) };
}

/** Loads the codec a transfer syntax needs; rejects unsupported syntaxes with their UID and name. */
export async function prepareCodecFor(transferSyntaxUid: string, source: string): Promise<void> {
  const ts = transferSyntaxInfo(transferSyntaxUid);
  assertSupported(ts, source);
  try {
    await prepareCodec(ts);
  } catch (e) {
    throw new VbmdError('unsupported', `The ${ts.name} decoder could not be loaded for ${source}: ${(e as Error).message}; ${ASK_FOR_NATIVE}.`);
  }
}

/** The transfer syntax UID from the file meta header alone (cheap). */
export function peekTransferSyntax(bytes: Uint8Array, source: string): string {
  let meta: DataSet;
  try {
    meta = dicomParser.readPart10Header(bytes);
  } catch (e) {
    throw notDicomOrTruncated(e, source);
  }
  const ts = meta.string('x00020010');
  if (!ts) throw new VbmdError('bad-input', `${source} has no transfer syntax in its file meta header (0002,0010); the file is not valid DICOM.`);
  return ts.trim();
}

function parseDataSet(bytes: Uint8Array, source: string, headerOnly: boolean, partial = false): DataSet {
  if (bytes.length < 132 || bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) {
    if (partial && bytes.length < 132) throw needMore(source);
    throw new VbmdError('bad-input', `${source} is not a DICOM file (no "DICM" marker at byte 128).`);
  }
  try {
    // Deflate (PS3.5 A.5) is inflated here with bounded output (deflate.ts), not by dicom-parser.
    const meta = dicomParser.readPart10Header(bytes);
    if (meta.string('x00020010')?.trim() === DEFLATED) return parseDeflatedPart10(bytes, meta, source, headerOnly);
    return dicomParser.parseDicom(bytes, headerOnly ? { untilTag: PIXEL_DATA } : {});
  } catch (e) {
    // A deflate bomb or corrupt stream already says so; a cut header is a partial read, not a bad file.
    if (isVbmdError(e) && !(partial && e.details.headerCut === true)) throw e;
    if (partial) throw needMore(source);
    throw notDicomOrTruncated(e, source);
  }
}

function parseDataSetOrExplain(bytes: Uint8Array, source: string): DataSet {
  try {
    return parseDataSet(bytes, source, false);
  } catch (e) {
    throw explainTruncatedPixels(bytes, source) ?? e;
  }
}

/** When the header parses but the whole file does not, say how much of the pixel data is there. */
function explainTruncatedPixels(bytes: Uint8Array, source: string): VbmdError | undefined {
  try {
    const ds = parseDataSet(bytes, source, true);
    const el = ds.elements[PIXEL_DATA];
    const h = readHeader(ds, source);
    // Offsets of a deflated file are in its inflated dataset, not in `bytes`: deflate.ts explains those.
    if (h.transferSyntaxUid === DEFLATED) return undefined;
    if (!el || el.length === 0xffffffff || !(h.rows > 0 && h.columns > 0 && h.bitsAllocated > 0)) return undefined;
    const need = h.rows * h.columns * (h.bitsAllocated / 8);
    const have = Math.max(0, bytes.length - el.dataOffset);
    if (have >= need) return undefined;
    return new VbmdError('bad-input', `${source} is truncated: pixel data has ${have} of ${need} bytes; copy the file again from the source.`);
  } catch {
    return undefined;
  }
}

function needMore(source: string): VbmdError {
  return new VbmdError('bad-input', `${source}: header longer than the bytes read.`, { needMoreBytes: true });
}

function parserMessage(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object') {
    const o = e as { exception?: unknown; message?: unknown };
    if (typeof o.exception === 'string') return o.exception;
    if (typeof o.message === 'string') return o.message;
  }
  return String(e);
}

function notDicomOrTruncated(e: unknown, source: string): VbmdError {
  const m = parserMessage(e);
  if (/DICM prefix not found/i.test(m)) return new VbmdError('bad-input', `${source} is not a DICOM file (no "DICM" marker at byte 128).`);
  if (/past end|overrun|beyond|end of buffer|outside|out of range/i.test(m)) {
    return new VbmdError('bad-input', `${source} is truncated or corrupt (${m}); copy the file again from the source.`);
  }
  return new VbmdError('bad-input', `${source} could not be parsed as DICOM (${m}).`);
}

function str(ds: DataSet, tag: string): string | undefined {
  const v = ds.string(tag);
  return v === undefined || v === '' ? undefined : v;
}

function num(ds: DataSet, tag: string, index = 0): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const v = ds.floatString(tag, index);
  return v === undefined || !Number.isFinite(v) ? undefined : v;
}

function int(ds: DataSet, tag: string): number | undefined {
  const v = num(ds, tag);
  return v === undefined ? undefined : Math.round(v);
}

function multi(ds: DataSet, tag: string, n: number): number[] | undefined {
  const s = ds.string(tag);
  if (!s) return undefined;
  const parts = s.split('\\').map((p) => Number(p.trim()));
  if (parts.length < n || parts.slice(0, n).some((x) => !Number.isFinite(x))) return undefined;
  return parts.slice(0, n);
}

function us(ds: DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  return el && el.length >= 2 ? ds.uint16(tag) : undefined;
}

/** US or SS by PixelRepresentation (PS3.3 C.7.5.1.1.2: Pixel Padding Value has the pixels' signedness). */
function usOrSs(ds: DataSet, tag: string, signed: boolean): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2) return undefined;
  return signed ? ds.int16(tag) : ds.uint16(tag);
}

function readHeader(ds: DataSet, source: string): DicomSliceHeader {
  const transferSyntaxUid = (str(ds, 'x00020010') ?? '1.2.840.10008.1.2').trim();
  const sopInstanceUid = str(ds, 'x00080018');
  const studyInstanceUid = str(ds, 'x0020000d');
  const seriesInstanceUid = str(ds, 'x0020000e');
  const missing = [
    ['SOPInstanceUID', sopInstanceUid],
    ['StudyInstanceUID', studyInstanceUid],
    ['SeriesInstanceUID', seriesInstanceUid],
  ].filter(([, v]) => !v);
  if (missing.length > 0) {
    throw new VbmdError('bad-input', `${source} lacks ${missing.map(([k]) => k).join(', ')}; it is not a usable DICOM image.`);
  }
  const pixelRepresentation = us(ds, 'x00280103') ?? 0;
  const bitsAllocated = us(ds, 'x00280100') ?? 0;
  const dt = str(ds, 'x0008002a');
  const ps = multi(ds, 'x00280030', 2);
  const ipp = multi(ds, 'x00200032', 3);
  const iop = multi(ds, 'x00200037', 6);
  const header: DicomSliceHeader = {
    source,
    sopInstanceUid: sopInstanceUid!,
    sopClassUid: str(ds, 'x00080016'),
    studyInstanceUid: studyInstanceUid!,
    seriesInstanceUid: seriesInstanceUid!,
    modality: str(ds, 'x00080060')?.trim().toUpperCase(),
    imageType: (ds.string('x00080008') ?? '')
      .split('\\')
      .map((s) => s.trim().toUpperCase())
      .filter((s) => s.length > 0),
    seriesDescription: str(ds, 'x0008103e'),
    seriesNumber: int(ds, 'x00200011'),
    instanceNumber: int(ds, 'x00200013'),
    patientId: str(ds, 'x00100020'),
    accessionNumber: str(ds, 'x00080050'),
    studyDate: str(ds, 'x00080020'),
    acquisitionDate: str(ds, 'x00080022') ?? dt?.slice(0, 8) ?? str(ds, 'x00080023'),
    acquisitionTime: str(ds, 'x00080032') ?? (dt && dt.length > 8 ? dt.slice(8).replace(/[+-]\d{4}$/, '') : undefined) ?? str(ds, 'x00080033'),
    manufacturer: str(ds, 'x00080070'),
    manufacturerModelName: str(ds, 'x00081090'),
    kvp: num(ds, 'x00180060'),
    contrastAgent: str(ds, 'x00180010'),
    gantryTiltDeg: num(ds, 'x00181120'),
    rows: us(ds, 'x00280010') ?? 0,
    columns: us(ds, 'x00280011') ?? 0,
    pixelSpacingMm: ps ? [ps[0], ps[1]] : undefined,
    sliceThicknessMm: num(ds, 'x00180050'),
    imagePositionMm: ipp ? (ipp as Vec3) : undefined,
    imageOrientation: iop ? (iop as [number, number, number, number, number, number]) : undefined,
    rescaleSlope: num(ds, 'x00281053') ?? 1,
    rescaleIntercept: num(ds, 'x00281052') ?? 0,
    pixelRepresentation,
    bitsAllocated,
    bitsStored: us(ds, 'x00280101') ?? bitsAllocated,
    pixelPaddingValue: usOrSs(ds, 'x00280120', pixelRepresentation === 1),
    pixelPaddingRangeLimit: usOrSs(ds, 'x00280121', pixelRepresentation === 1),
    numberOfFrames: int(ds, 'x00280008') ?? 1,
    transferSyntaxUid,
  };
  return header;
}

function assertSupported(ts: TransferSyntaxInfo, source: string): void {
  if (ts.decoder === 'none') {
    throw new VbmdError(
      'unsupported',
      `${source} uses transfer syntax ${ts.uid} (${ts.name}), which vbmd cannot decode; ${ASK_FOR_NATIVE}.`,
      { transferSyntaxUid: ts.uid },
    );
  }
}

/** Native pixels, or the encoded frame still to decode. */
type Frame = { pixels: StoredPixels } | { ts: TransferSyntaxInfo; encoded: Uint8Array; info: FrameInfo };

function readPixels(ds: DataSet, h: DicomSliceHeader, source: string): StoredPixels {
  const f = readFrame(ds, h, source);
  return 'pixels' in f ? f.pixels : decodeFrame(f, source);
}

function decodeFrame(f: { ts: TransferSyntaxInfo; encoded: Uint8Array; info: FrameInfo }, source: string): StoredPixels {
  try {
    return decodeEncapsulatedFrame(f.ts, f.encoded, f.info);
  } catch (e) {
    throw decodeError(e, f.ts, source);
  }
}

function decodeError(e: unknown, ts: TransferSyntaxInfo, source: string): Error {
  const m = (e as Error).message;
  if (/before it was loaded/.test(m)) return e as Error;
  return new VbmdError('bad-input', `${source}: the ${ts.name} pixel data could not be decoded (${m}); the file is corrupt.`);
}

/**
 * As parseDicomSliceAsync, but compressed frames (JPEG 2000, JPEG-LS, JPEG) are decoded on the shared
 * worker-thread pool, so many slices decode in parallel: run several of these concurrently.
 */
export async function parseDicomSliceParallel(bytes: Uint8Array, source: string): Promise<DicomSlice> {
  const ds = parseDataSetOrExplain(bytes, source);
  const header = readHeader(ds, source);
  const f = readFrame(ds, header, source);
  if ('pixels' in f) return { ...header, pixels: f.pixels };
  // Tiny frames decode faster here than the round trip to a worker costs.
  if (f.info.rows * f.info.columns < 64 * 64) return { ...header, pixels: decodeFrame(f, source) };
  try {
    return { ...header, pixels: await sharedDecodePool().decode(f.ts, f.encoded, f.info) };
  } catch (e) {
    if (e instanceof DecodeWorkerError) {
      // The pool broke, not the file: decode here instead (slower, still correct).
      await prepareCodecFor(f.ts.uid, source);
      return { ...header, pixels: decodeFrame(f, source) };
    }
    throw decodeError(e, f.ts, source);
  }
}

function readFrame(ds: DataSet, h: DicomSliceHeader, source: string): Frame {
  const el: Element | undefined = ds.elements[PIXEL_DATA];
  if (!el) {
    throw new VbmdError('bad-input', `${source} has no pixel data (7FE0,0010); it is not an image (e.g. a structured report or presentation state).`);
  }
  if (h.numberOfFrames > 1) {
    throw new VbmdError(
      'unsupported',
      `${source} is a multi-frame image (${h.numberOfFrames} frames, e.g. Enhanced CT); vbmd reads single-frame CT Image Storage series: export the series as single-frame images.`,
    );
  }
  // A Modality LUT Sequence instead of Rescale Slope/Intercept (PS3.3 C.11.1) would need a table lookup.
  if (ds.elements.x00283000 && !ds.elements.x00281052) {
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
  const info: FrameInfo = {
    rows: h.rows,
    columns: h.columns,
    bitsAllocated: h.bitsAllocated,
    pixelRepresentation: h.pixelRepresentation,
    samplesPerPixel: samples,
  };
  const count = h.rows * h.columns;
  const bytes = ds.byteArray;

  if (!isEncapsulated(ts)) {
    const need = count * (h.bitsAllocated / 8);
    if (el.length === 0xffffffff || el.hadUndefinedLength) {
      throw new VbmdError('bad-input', `${source} says ${ts.name} but its pixel data is encapsulated; the file is corrupt.`);
    }
    if (el.length < need || el.dataOffset + need > bytes.length) {
      const have = Math.max(0, Math.min(el.length, bytes.length - el.dataOffset));
      throw new VbmdError('bad-input', `${source} is truncated: pixel data has ${have} of ${need} bytes; copy the file again from the source.`);
    }
    return { pixels: nativePixels(bytes, el.dataOffset, info, ts.decoder === 'native-be') };
  }

  if (!el.encapsulatedPixelData || !el.fragments || el.fragments.length === 0) {
    throw new VbmdError('bad-input', `${source} says ${ts.name} but has no compressed pixel fragments; the file is truncated or corrupt.`);
  }
  const last = el.fragments[el.fragments.length - 1];
  if (last.position + last.length > bytes.length) {
    throw new VbmdError('bad-input', `${source} is truncated: its compressed pixel data ends past the end of the file.`);
  }
  let encoded: Uint8Array;
  try {
    encoded = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments.length);
  } catch (e) {
    throw new VbmdError('bad-input', `${source}: its compressed pixel fragments cannot be read (${parserMessage(e)}); the file is truncated or corrupt.`);
  }
  return { ts, encoded, info };
}

/** Native pixel data: a zero-copy view when aligned and little endian, else one copy (swapping if needed). */
function nativePixels(bytes: Uint8Array, offset: number, info: FrameInfo, bigEndian: boolean): StoredPixels {
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
