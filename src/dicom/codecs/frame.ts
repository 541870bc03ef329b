/** What a codec needs to know about one encoded frame, from the DICOM header (PS3.3 C.7.6.3). */
export interface FrameInfo {
  rows: number;
  columns: number;
  bitsAllocated: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: number;
  samplesPerPixel: number;
}

/** Decoded stored values of one single-sample frame, rows*columns long. */
export type StoredPixels = Int16Array | Uint16Array;

/**
 * Reinterprets decoded bytes as 16-bit stored values (or widens 8-bit ones), checking the length.
 * Codecs return samples in the platform's byte order (little endian everywhere Node runs).
 */
export function toStoredPixels(bytes: Uint8Array, info: FrameInfo, codec: string): StoredPixels {
  const count = info.rows * info.columns;
  if (info.bitsAllocated === 8) {
    if (bytes.length < count) throw new Error(`${codec} returned ${bytes.length} samples, expected ${count}`);
    const out = info.pixelRepresentation === 1 ? new Int16Array(count) : new Uint16Array(count);
    if (info.pixelRepresentation === 1) for (let n = 0; n < count; n++) out[n] = (bytes[n] << 24) >> 24;
    else for (let n = 0; n < count; n++) out[n] = bytes[n];
    return out;
  }
  if (bytes.length < count * 2) throw new Error(`${codec} returned ${bytes.length} bytes, expected ${count * 2}`);
  // Copy out of codec-owned (WASM) memory into our own aligned buffer.
  const copy = new Uint8Array(count * 2);
  copy.set(bytes.subarray(0, count * 2));
  return info.pixelRepresentation === 1 ? new Int16Array(copy.buffer) : new Uint16Array(copy.buffer);
}
