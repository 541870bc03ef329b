import { createRequire } from 'node:module';
import type { FrameInfo, StoredPixels } from './frame.js';
import { toStoredPixels } from './frame.js';
import { log } from '../../util/log.js';

/**
 * The cornerstone WASM codecs (chafey's openjpegjs / charlsjs / libjpeg-turbojs builds) share one embind
 * API: a decoder object with a WASM-side input buffer, `decode()`, frame info and an output buffer.
 * Each module is instantiated lazily, once per process, on first need (~10 ms), then reused.
 */
interface EmbindFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

interface EmbindDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): EmbindFrameInfo;
  getDecodedBuffer(): Uint8Array;
  delete(): void;
}

type DecoderClass = new () => EmbindDecoder;
type EmscriptenFactory = (moduleArg?: Record<string, unknown>) => Promise<Record<string, unknown>>;

const require = createRequire(import.meta.url);

export class WasmCodec {
  private decoderClass: DecoderClass | undefined;
  private loading: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly modulePath: string,
    private readonly className: string,
  ) {}

  /** Instantiates the WASM module once; concurrent callers share the same promise. */
  load(): Promise<void> {
    this.loading ??= (async () => {
      const factory = require(this.modulePath) as EmscriptenFactory;
      // OpenJPEG prints "[INFO] ..." lines through emscripten's stdout hook; stdout carries `--json`
      // reports, so codec chatter goes to the debug log instead.
      const quiet = (text: string): void => log.debug({ codec: this.name }, text);
      const mod = await factory({ print: quiet, printErr: quiet });
      const cls = mod[this.className];
      if (typeof cls !== 'function') throw new Error(`${this.modulePath} has no ${this.className}`);
      this.decoderClass = cls as DecoderClass;
    })();
    return this.loading;
  }

  get ready(): boolean {
    return this.decoderClass !== undefined;
  }

  decode(encoded: Uint8Array, info: FrameInfo): StoredPixels {
    if (!this.decoderClass) {
      throw new Error(`${this.name} codec used before it was loaded: await prepareCodec() (or use parseDicomSliceAsync)`);
    }
    const decoder = new this.decoderClass();
    try {
      decoder.getEncodedBuffer(encoded.length).set(encoded);
      decoder.decode();
      const fi = decoder.getFrameInfo();
      if (fi.width !== info.columns || fi.height !== info.rows || fi.componentCount !== info.samplesPerPixel) {
        throw new Error(
          `${this.name} stream is ${fi.width}x${fi.height}x${fi.componentCount}, header says ${info.columns}x${info.rows}x${info.samplesPerPixel}`,
        );
      }
      return toStoredPixels(decoder.getDecodedBuffer(), info, this.name);
    } finally {
      decoder.delete();
    }
  }
}
