import { WasmCodec } from './wasm-codec.js';

/** JPEG-LS (1.2.840.10008.1.2.4.80/.81) via CharLS compiled to WASM (@cornerstonejs/codec-charls). */
export const jpegLsCodec = new WasmCodec('JPEG-LS', '@cornerstonejs/codec-charls/decodewasmjs', 'JpegLSDecoder');
