import type { FrameInfo, StoredPixels } from './frame.js';
import { jpeg2000Codec } from './jpeg2000.js';
import { jpegBaselineCodec } from './jpeg-baseline.js';
import { decodeJpegLossless } from './jpeg-lossless.js';
import { jpegLsCodec } from './jpeg-ls.js';
import { decodeRle } from './rle.js';
import type { TransferSyntaxInfo } from './transfer-syntax.js';
import type { WasmCodec } from './wasm-codec.js';

export type { FrameInfo, StoredPixels } from './frame.js';
export { transferSyntaxInfo, isEncapsulated, type TransferSyntaxInfo } from './transfer-syntax.js';

function wasmCodecFor(ts: TransferSyntaxInfo): WasmCodec | undefined {
  switch (ts.decoder) {
    case 'jpeg2000':
      return jpeg2000Codec;
    case 'jpeg-ls':
      return jpegLsCodec;
    case 'jpeg-baseline':
      return jpegBaselineCodec;
    default:
      return undefined;
  }
}

/** Loads the WASM codec a transfer syntax needs (once per process); a no-op for the pure-JS ones. */
export async function prepareCodec(ts: TransferSyntaxInfo): Promise<void> {
  await wasmCodecFor(ts)?.load();
}

/** Decodes one encapsulated frame. Throws a plain Error on a corrupt stream (the caller names the file). */
export function decodeEncapsulatedFrame(ts: TransferSyntaxInfo, encoded: Uint8Array, info: FrameInfo): StoredPixels {
  switch (ts.decoder) {
    case 'rle':
      return decodeRle(encoded, info);
    case 'jpeg-lossless':
      return decodeJpegLossless(encoded, info);
    default: {
      const codec = wasmCodecFor(ts);
      if (!codec) throw new Error(`no decoder for ${ts.name} (${ts.uid})`);
      return codec.decode(encoded, info);
    }
  }
}
