import { parentPort } from 'node:worker_threads';
import { decodeEncapsulatedFrame, prepareCodec, transferSyntaxInfo } from './index.js';
import type { DecodeRequest, DecodeResponse } from './decode-pool.js';

/** One decode worker: loads codecs on first use (once per worker) and decodes frames it is sent. */
parentPort!.on('message', (req: DecodeRequest) => {
  void (async (): Promise<void> => {
    const ts = transferSyntaxInfo(req.transferSyntaxUid);
    try {
      await prepareCodec(ts);
      const px = decodeEncapsulatedFrame(ts, new Uint8Array(req.encoded), req.info);
      // Send exactly the pixels (a fresh buffer the codec wrappers own), transferred, not copied.
      const own = px.byteOffset === 0 && px.byteLength === px.buffer.byteLength ? px : px.slice();
      const res: DecodeResponse = { id: req.id, signed: own instanceof Int16Array, buffer: own.buffer as ArrayBuffer };
      parentPort!.postMessage(res, [res.buffer!]);
    } catch (e) {
      const res: DecodeResponse = { id: req.id, error: (e as Error).message };
      parentPort!.postMessage(res);
    }
  })();
});
