import type { FrameInfo, StoredPixels } from './frame.js';

/**
 * RLE Lossless (1.2.840.10008.1.2.5), DICOM PS3.5 Annex G. No maintained npm package decodes it outside
 * viewer bundles, and the format is small: a 64-byte header (segment count, 15 offsets), then one
 * PackBits segment per byte plane, most significant byte first (G.2). Single-sample frames only.
 */
export function decodeRle(encoded: Uint8Array, info: FrameInfo): StoredPixels {
  const count = info.rows * info.columns;
  const bytesPerSample = info.bitsAllocated / 8;
  if (info.samplesPerPixel !== 1 || (bytesPerSample !== 1 && bytesPerSample !== 2)) {
    throw new Error(`RLE decoder handles 8/16-bit single-sample frames, not ${info.bitsAllocated}-bit x${info.samplesPerPixel}`);
  }
  if (encoded.length < 64) throw new Error('RLE frame shorter than its 64-byte header');
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== bytesPerSample) throw new Error(`RLE frame has ${segments} segments, expected ${bytesPerSample}`);
  const planes: Uint8Array[] = [];
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : encoded.length;
    if (start < 64 || end > encoded.length || end < start) throw new Error(`RLE segment ${s + 1} offsets are out of range`);
    planes.push(unpackBits(encoded, start, end, count, s + 1));
  }
  if (bytesPerSample === 1) {
    const p = planes[0];
    const out = info.pixelRepresentation === 1 ? new Int16Array(count) : new Uint16Array(count);
    if (info.pixelRepresentation === 1) for (let n = 0; n < count; n++) out[n] = (p[n] << 24) >> 24;
    else out.set(p);
    return out;
  }
  const out = new Uint16Array(count);
  const hi = planes[0];
  const lo = planes[1];
  for (let n = 0; n < count; n++) out[n] = (hi[n] << 8) | lo[n];
  return info.pixelRepresentation === 1 ? new Int16Array(out.buffer) : out;
}

/** PackBits (G.3.1): n in 0..127 copies n+1 literal bytes, -127..-1 repeats the next byte 1-n times, -128 is a no-op. */
function unpackBits(src: Uint8Array, start: number, end: number, count: number, segment: number): Uint8Array {
  const out = new Uint8Array(count);
  let i = start;
  let o = 0;
  while (i < end && o < count) {
    const n = (src[i++] << 24) >> 24;
    if (n >= 0) {
      const len = n + 1;
      if (i + len > end || o + len > count) throw new Error(`RLE segment ${segment} literal run overflows`);
      out.set(src.subarray(i, i + len), o);
      i += len;
      o += len;
    } else if (n !== -128) {
      const len = 1 - n;
      if (i >= end || o + len > count) throw new Error(`RLE segment ${segment} replicate run overflows`);
      out.fill(src[i++], o, o + len);
      o += len;
    }
  }
  if (o < count) throw new Error(`RLE segment ${segment} decodes to ${o} bytes, expected ${count}`);
  return out;
}
