import { WasmCodec } from './wasm-codec.js';

/** JPEG 2000 (1.2.840.10008.1.2.4.90/.91) via OpenJPEG compiled to WASM (@cornerstonejs/codec-openjpeg). */
export const jpeg2000Codec = new WasmCodec('JPEG 2000', '@cornerstonejs/codec-openjpeg/decodewasmjs', 'J2KDecoder');
