import dicomParser from 'dicom-parser';
import type { DataSet } from 'dicom-parser';
import { VbmdError, isVbmdError } from '../util/errors.js';
import { parseDeflatedPart10 } from './deflate.js';
import type { DicomSlice, DicomSliceHeader } from './slice.js';
import { prepareCodec, transferSyntaxInfo, type FrameInfo } from './codecs/index.js';
import { DecodeWorkerError, sharedDecodePool } from './codecs/decode-pool.js';
import { us } from './dataset-values.js';
import { readHeaders } from './read-header.js';
import { ASK_FOR_NATIVE, assertSupported, decodeError, decodeFrame, message, nativePixels, readFrames, type EncodedFrame, type Frame } from './pixel-frames.js';

export type { DicomSliceHeader } from './slice.js';

const PIXEL_DATA = 'x7fe00010';
const DEFLATED = '1.2.840.10008.1.2.1.99';

/**
 * Parses one Part-10 file into its image planes: one DicomSlice for a single-frame image, one per frame
 * for a multi-frame one (Enhanced CT), each with its own header fields and decoded stored pixel values.
 * Synchronous: native, RLE and JPEG-lossless pixel data decode at once; JPEG 2000, JPEG-LS and JPEG
 * baseline need their WASM codec loaded first (`prepareCodecFor`), else use `parseDicomFramesAsync`.
 * Rejects with a VbmdError naming `source`: not DICOM, truncated, no pixel data, frames without positions,
 * unsupported transfer syntax, corrupt compressed stream, deflate bomb.
 */
export function parseDicomFrames(bytes: Uint8Array, source: string): DicomSlice[] {
  const ds = parseDataSetOrExplain(bytes, source);
  const headers = corruptIfThrows(source, () => readHeaders(ds, source));
  const frames = corruptIfThrows(source, () => readFrames(ds, headers[0], source));
  return headers.map((h, f) => ({ ...h, pixels: pixelsOf(frames[f], source) }));
}

/** As parseDicomFrames, loading the transfer syntax's codec first if it needs one (lazily, once). */
export async function parseDicomFramesAsync(bytes: Uint8Array, source: string): Promise<DicomSlice[]> {
  await prepareCodecFor(peekTransferSyntax(bytes, source), source);
  return parseDicomFrames(bytes, source);
}

/**
 * As parseDicomFramesAsync, but compressed frames (JPEG 2000, JPEG-LS, JPEG) are decoded on the shared
 * worker-thread pool, so many frames decode in parallel: run several files concurrently too.
 */
export async function parseDicomFramesParallel(bytes: Uint8Array, source: string): Promise<DicomSlice[]> {
  const ds = parseDataSetOrExplain(bytes, source);
  const headers = corruptIfThrows(source, () => readHeaders(ds, source));
  const frames = corruptIfThrows(source, () => readFrames(ds, headers[0], source));
  const pixels = await Promise.all(frames.map((f) => ('pixels' in f ? f.pixels : decodeOnPool(f, source))));
  return headers.map((h, f) => ({ ...h, pixels: pixels[f] }));
}

/** The single image plane of a single-frame file (see parseDicomFrames); a multi-frame file is rejected. */
export function parseDicomSlice(bytes: Uint8Array, source: string): DicomSlice {
  return single(parseDicomFrames(bytes, source), source);
}

export async function parseDicomSliceAsync(bytes: Uint8Array, source: string): Promise<DicomSlice> {
  return single(await parseDicomFramesAsync(bytes, source), source);
}

export async function parseDicomSliceParallel(bytes: Uint8Array, source: string): Promise<DicomSlice> {
  return single(await parseDicomFramesParallel(bytes, source), source);
}

function single(slices: DicomSlice[], source: string): DicomSlice {
  if (slices.length !== 1) throw new Error(`${source} holds ${slices.length} frames: read it with parseDicomFrames`);
  return slices[0];
}

/**
 * Headers only (one per image plane, as parseDicomFrames), stopping at PixelData. `bytes` may be just the
 * start of the file; if the header does not fit, this throws a VbmdError with details.needMoreBytes = true
 * so the caller can retry with the whole file.
 */
export function parseDicomHeaders(bytes: Uint8Array, source: string, partial = false, found?: { pixelData?: PixelDataLocation }): DicomSliceHeader[] {
  const ds = parseDataSet(bytes, source, true, partial);
  const headers = corruptIfThrows(source, () => readHeaders(ds, source));
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
  return headers;
}

/**
 * The first image plane's header (the whole instance for a single-frame file); see parseDicomHeaders for
 * every frame of a multi-frame one.
 */
export function parseDicomHeader(bytes: Uint8Array, source: string, partial = false, found?: { pixelData?: PixelDataLocation }): DicomSliceHeader {
  return parseDicomHeaders(bytes, source, partial, found)[0];
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
 * Fast path for a single-frame file whose header was just scanned: native little-endian pixels at the
 * known offset become a DicomSlice without parsing the dataset again. Returns undefined whenever anything
 * does not match (the file changed, another syntax, odd pixel format, several frames); the caller then
 * uses parseDicomFrames, which also produces the proper error for bad files.
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
  let ts: string | undefined;
  try {
    ts = dicomParser.readPart10Header(bytes).string('x00020010');
  } catch (e) {
    throw notDicomOrTruncated(e, source);
  }
  if (!ts) throw new VbmdError('bad-input', `${source} has no transfer syntax in its file meta header (0002,0010); the file is not valid DICOM.`);
  return ts.trim();
}

function pixelsOf(f: Frame, source: string): DicomSlice['pixels'] {
  return 'pixels' in f ? f.pixels : decodeFrame(f, source);
}

async function decodeOnPool(f: EncodedFrame, source: string): Promise<DicomSlice['pixels']> {
  // Tiny frames decode faster here than the round trip to a worker costs.
  if (f.info.rows * f.info.columns < 64 * 64) return decodeFrame(f, source);
  try {
    return await sharedDecodePool().decode(f.ts, f.encoded, f.info);
  } catch (e) {
    if (e instanceof DecodeWorkerError) {
      // The pool broke, not the file: decode here instead (slower, still correct).
      await prepareCodecFor(f.ts.uid, source);
      return decodeFrame(f, source);
    }
    throw decodeError(e, f.ts, source);
  }
}

function parseDataSet(bytes: Uint8Array, source: string, headerOnly: boolean, partial = false): DataSet {
  if (bytes.length < 132 || bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) {
    if (partial && bytes.length < 132) throw needMore(source);
    throw new VbmdError('bad-input', `${source} is not a DICOM file (no "DICM" marker at byte 128).`);
  }
  try {
    // Deflate (PS3.5 A.5) is inflated here with bounded output (deflate.ts), not by dicom-parser.
    const meta = dicomParser.readPart10Header(bytes);
    const ds = meta.string('x00020010')?.trim() === DEFLATED ? parseDeflatedPart10(bytes, meta, source, headerOnly) : dicomParser.parseDicom(bytes, headerOnly ? { untilTag: PIXEL_DATA } : {});
    // A probe cut inside a long element before Pixel Data parses without error but lacks what follows.
    if (partial && !ds.elements[PIXEL_DATA]) throw needMore(source);
    return ds;
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
    const h = readHeaders(ds, source)[0];
    // Offsets of a deflated file are in its inflated dataset, not in `bytes`: deflate.ts explains those.
    if (h.transferSyntaxUid === DEFLATED) return undefined;
    if (!el || el.length === 0xffffffff || !(h.rows > 0 && h.columns > 0 && h.bitsAllocated > 0)) return undefined;
    const need = h.rows * h.columns * (h.bitsAllocated / 8) * h.numberOfFrames;
    const have = Math.max(0, bytes.length - el.dataOffset);
    if (have >= need) return undefined;
    return new VbmdError('bad-input', `${source} is truncated: pixel data has ${have} of ${need} bytes; copy the file again from the source.`);
  } catch {
    return undefined;
  }
}

/**
 * Reading values out of a parsed dataset: dicom-parser throws strings or plain Errors when an element's
 * length points past the end of the bytes (a corrupt or cut file); those become the file's VbmdError.
 */
function corruptIfThrows<T>(source: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (isVbmdError(e)) throw e;
    throw new VbmdError('bad-input', `${source} is truncated or corrupt (${message(e)}); copy the file again from the source.`);
  }
}

function needMore(source: string): VbmdError {
  return new VbmdError('bad-input', `${source}: header longer than the bytes read.`, { needMoreBytes: true });
}

function notDicomOrTruncated(e: unknown, source: string): VbmdError {
  const m = message(e);
  if (/DICM prefix not found/i.test(m)) return new VbmdError('bad-input', `${source} is not a DICOM file (no "DICM" marker at byte 128).`);
  if (/past end|overrun|beyond|end of buffer|outside|out of range/i.test(m)) {
    return new VbmdError('bad-input', `${source} is truncated or corrupt (${m}); copy the file again from the source.`);
  }
  return new VbmdError('bad-input', `${source} could not be parsed as DICOM (${m}).`);
}
