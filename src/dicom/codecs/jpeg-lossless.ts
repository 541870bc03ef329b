import type { FrameInfo, StoredPixels } from './frame.js';
import { lazyModule } from '../../util/lazy-module.js';

/** Loaded at the first JPEG lossless frame: most series are not, and a start need not load it. */
const decoderModule = lazyModule<typeof import('jpeg-lossless-decoder-js')>(import.meta.url, 'jpeg-lossless-decoder-js');

/**
 * JPEG lossless, process 14 (1.2.840.10008.1.2.4.57 and SV1 .70), via jpeg-lossless-decoder-js (pure JS,
 * no init). The stream carries the stored bit patterns; signed data is reinterpreted, not converted.
 */
export function decodeJpegLossless(encoded: Uint8Array, info: FrameInfo): StoredPixels {
  const count = info.rows * info.columns;
  const numBytes = info.bitsAllocated <= 8 ? 1 : 2;
  const out = new (decoderModule().Decoder)().decode(encoded.buffer as ArrayBuffer, encoded.byteOffset, encoded.byteLength, numBytes);
  if (out.length < count) throw new Error(`JPEG lossless stream holds ${out.length} samples, expected ${count}`);
  if (out instanceof Uint8Array) {
    const wide = info.pixelRepresentation === 1 ? new Int16Array(count) : new Uint16Array(count);
    if (info.pixelRepresentation === 1) for (let n = 0; n < count; n++) wide[n] = (out[n] << 24) >> 24;
    else for (let n = 0; n < count; n++) wide[n] = out[n];
    return wide;
  }
  const exact = out.length === count ? out : out.subarray(0, count);
  return info.pixelRepresentation === 1 ? new Int16Array(exact.buffer, exact.byteOffset, count) : exact;
}
