import { constants, inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import type { DataSet } from 'dicom-parser';
import { VbmdError } from '../util/errors.js';

/**
 * Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99, PS3.5 A.5): everything after the file meta
 * header is one raw deflate stream. Deflate expands up to ~1032:1, so a 2 MB file can claim gigabytes; the
 * output is bounded in two steps, never by the file size alone:
 *  1. the header (everything before Pixel Data) is inflated from growing prefixes of the compressed bytes,
 *     at most MAX_HEADER_BYTES of output per try;
 *  2. the whole dataset may then inflate to the header plus the pixel bytes the header announces
 *     (Rows x Columns x Number of Frames x Samples x bytes per sample) plus TRAILER_ALLOWANCE, and no more
 *     (zlib's maxOutputLength stops the inflation there, so time is bounded too).
 * Anything beyond is a corrupt file or a decompression bomb: a VbmdError 'bad-input', which the job layer
 * treats as permanent (never retried).
 */

/** Largest inflated header accepted: Enhanced CT holds ~0.5-2 KB of functional groups per frame, 2 MB for 2000 frames. */
export const MAX_HEADER_BYTES = 8 * 1024 * 1024;
/** Elements after Pixel Data (Data Set Trailing Padding, signatures) a real file may carry. */
const TRAILER_ALLOWANCE = 1024 * 1024;
/** Largest pixel data one deflated object may announce (a 512 x 512 x 2048-frame 16-bit volume). */
export const MAX_PIXEL_BYTES = 1024 * 1024 * 1024;
/** First compressed prefix tried for the header; doubled until the header is complete. */
const FIRST_PREFIX = 4096;
/** Smallest step of the search for the largest prefix whose output still fits MAX_HEADER_BYTES. */
const PREFIX_GRAIN = 1024;

const PIXEL_DATA = 'x7fe00010';

/** What step 1 found: the inflated bytes (dataset only, starting at its first element) and their header. */
export interface InflatedHeader {
  inflated: Uint8Array;
  header: DataSet;
  /** True when `inflated` is the whole dataset (the stream ended within the prefix). */
  complete: boolean;
}

/**
 * Step 1: the dataset's header, inflated from as small a prefix of `compressed` as holds it. Rejects with a
 * VbmdError when the header does not fit MAX_HEADER_BYTES or the stream is not deflate.
 */
export function inflateHeader(compressed: Uint8Array, source: string): InflatedHeader {
  let lo = 0; // largest prefix tried whose output fit the budget but held no complete header
  let prefix = Math.min(FIRST_PREFIX, compressed.length);
  for (;;) {
    const whole = prefix >= compressed.length;
    const out = inflatePrefix(compressed.subarray(0, prefix), source);
    if (out === 'too-large') return searchBelow(compressed, lo, prefix, source);
    const header = headerIn(out, whole);
    if (header) return { inflated: out, header, complete: whole };
    if (whole) {
      throw new VbmdError('bad-input', `${source}: its deflated dataset ends inside the header; the file is truncated or corrupt.`, { headerCut: true });
    }
    lo = prefix;
    prefix = Math.min(compressed.length, prefix * 2);
  }
}

/**
 * The prefix `hi` inflates past the header budget and `lo` holds no complete header: bisect (inflating only,
 * which is cheap next to parsing) for the largest prefix whose output fits, and look for the header there
 * once. Not there means the header itself is larger than the budget.
 */
function searchBelow(compressed: Uint8Array, lo: number, hi: number, source: string): InflatedHeader {
  let best: Uint8Array | undefined;
  while (hi - lo > PREFIX_GRAIN) {
    const mid = Math.floor((lo + hi) / 2);
    const out = inflatePrefix(compressed.subarray(0, mid), source);
    if (out === 'too-large') hi = mid;
    else {
      best = out;
      lo = mid;
    }
  }
  const header = best && headerIn(best, false);
  if (!header) throw headerTooLarge(source);
  return { inflated: best!, header, complete: false };
}

/**
 * Step 2: the whole dataset, inflated to at most the size its header announces. Returns the inflated
 * dataset (starting at its first element).
 */
export function inflateDataset(compressed: Uint8Array, source: string): Uint8Array {
  const first = inflateHeader(compressed, source);
  if (first.complete) return first.inflated;
  const limit = inflatedLimit(first.header, source);
  try {
    return new Uint8Array(inflateRawSync(compressed, { maxOutputLength: limit }));
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new VbmdError(
        'bad-input',
        `${source}: its deflated dataset inflates to more than ${mb(limit)} MB, more than its header announces (${describePixels(first.header)}); the file is corrupt or a decompression bomb and was not read further.`,
        { inflateLimitBytes: limit },
      );
    }
    throw new VbmdError('bad-input', `${source}: its deflated dataset cannot be inflated (${(e as Error).message}); the file is truncated or corrupt.`);
  }
}

/** Bytes the whole inflated dataset may take: the header up to Pixel Data, the announced pixels, a trailer. */
function inflatedLimit(header: DataSet, source: string): number {
  const el = header.elements[PIXEL_DATA];
  const headerBytes = el ? el.dataOffset : header.byteArray.length;
  const pixels = announcedPixelBytes(header);
  if (pixels > MAX_PIXEL_BYTES) {
    throw new VbmdError(
      'bad-input',
      `${source} announces ${describePixels(header)}, more than the ${mb(MAX_PIXEL_BYTES)} MB of pixel data vbmd inflates from one deflated object; the file is corrupt or not a CT image.`,
    );
  }
  return headerBytes + pixels + TRAILER_ALLOWANCE;
}

function announcedPixelBytes(h: DataSet): number {
  const rows = u16(h, 'x00280010');
  const cols = u16(h, 'x00280011');
  const bits = u16(h, 'x00280100');
  const samples = u16(h, 'x00280002') || 1;
  const framesText = h.string('x00280008');
  const frames = framesText && /^\s*\d+\s*$/.test(framesText) ? Number(framesText) : 1;
  return rows * cols * Math.max(1, frames) * samples * Math.ceil(Math.max(bits, 8) / 8);
}

function describePixels(h: DataSet): string {
  const frames = h.string('x00280008')?.trim() || '1';
  return `${u16(h, 'x00280011')} x ${u16(h, 'x00280010')} pixels x ${frames} frame(s) of ${u16(h, 'x00280100')} bits`;
}

function u16(h: DataSet, tag: string): number {
  const el = h.elements[tag];
  return el && el.length >= 2 ? h.uint16(tag) ?? 0 : 0;
}

/** Inflates a compressed prefix as far as it goes (Z_SYNC_FLUSH accepts a cut stream), within the header budget. */
function inflatePrefix(prefix: Uint8Array, source: string): Uint8Array | 'too-large' {
  try {
    return new Uint8Array(inflateRawSync(prefix, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: MAX_HEADER_BYTES }));
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return 'too-large';
    throw new VbmdError('bad-input', `${source}: its dataset says it is deflated (PS3.5 A.5) but is not a deflate stream (${(e as Error).message}); the file is corrupt.`);
  }
}

/**
 * The header in `inflated` when it is complete there: parsed up to Pixel Data, or to the end when `whole`.
 * A parse that runs out of bytes means the header goes on past this prefix.
 */
function headerIn(inflated: Uint8Array, whole: boolean): DataSet | undefined {
  let ds: DataSet;
  try {
    ds = parseInflated(inflated, true);
  } catch (e) {
    if (whole) throw e;
    return undefined;
  }
  return ds.elements[PIXEL_DATA] || whole ? ds : undefined;
}

/** Parses an inflated dataset (explicit VR little endian, starting at its first element). */
function parseInflated(inflated: Uint8Array, headerOnly: boolean): DataSet {
  return parseFrom(inflated, 0, headerOnly);
}

type DataSetCtor = new (parser: dicomParser.ByteArrayParser, byteArray: Uint8Array, elements: Record<string, dicomParser.Element>) => DataSet;
const DataSetClass = (dicomParser as unknown as { DataSet: DataSetCtor }).DataSet;

function parseFrom(bytes: Uint8Array, position: number, headerOnly: boolean): DataSet {
  const parser = dicomParser.littleEndianByteArrayParser;
  const ds = new DataSetClass(parser, bytes, {});
  const stream = new dicomParser.ByteStream(parser, bytes, position);
  dicomParser.parseDicomDataSetExplicit(ds, stream, bytes.length, headerOnly ? { untilTag: PIXEL_DATA } : undefined);
  return ds;
}

/**
 * A deflated Part-10 file as a DataSet: its file meta group as stored, then the inflated dataset behind
 * it (bounded as above), so every element's offset is valid in `byteArray`. dicom-parser's own deflate
 * path parses such a buffer from byte 0, reading the preamble as elements; this starts at the dataset.
 */
export function parseDeflatedPart10(bytes: Uint8Array, meta: DataSet, source: string, headerOnly: boolean): DataSet {
  const position = (meta as unknown as { position: number }).position;
  const compressed = bytes.subarray(position);
  const inflated = headerOnly ? inflateHeader(compressed, source).inflated : inflateDataset(compressed, source);
  const full = new Uint8Array(position + inflated.length);
  full.set(bytes.subarray(0, position), 0);
  full.set(inflated, position);
  let ds: DataSet;
  try {
    ds = parseFrom(full, position, headerOnly);
  } catch (e) {
    // The shape dicom-parser's parseDicom throws, so callers explain both alike.
    throw { exception: e };
  }
  for (const [tag, el] of Object.entries(meta.elements)) ds.elements[tag] = el;
  return ds;
}

function headerTooLarge(source: string): VbmdError {
  return new VbmdError(
    'bad-input',
    `${source}: the header of its deflated dataset inflates to more than ${mb(MAX_HEADER_BYTES)} MB before any pixel data; the file is corrupt or a decompression bomb and was not read further.`,
  );
}

function mb(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}
