import { WasmCodec } from './wasm-codec.js';

/** JPEG baseline 8-bit (1.2.840.10008.1.2.4.50) via libjpeg-turbo compiled to WASM. Lossy by design. */
export const jpegBaselineCodec = new WasmCodec(
  'JPEG baseline',
  '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs',
  'JPEGDecoder',
);
