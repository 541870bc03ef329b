import type { ResponseBody } from './http.js';
import type { MultipartParser, MultipartPart } from './multipart.js';

/**
 * Feeds a response body to the multipart parser from 'data' events and hands each part to `onPart` as
 * soon as it is complete. Synchronous handlers keep the hot path free of promises (one per 64 KiB chunk
 * costs measurable time at hundreds of MB/s); an async handler pauses the socket until it settles, so a
 * slow consumer applies backpressure instead of buffering the response.
 */
export function consumeMultipart(body: ResponseBody, parser: MultipartParser, onPart: (part: MultipartPart) => void | Promise<void>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let n = 0;
    let done = false;
    const queue: MultipartPart[] = [];
    let waiting = false;
    let ended = false;
    const fail = (e: unknown): void => {
      if (done) return;
      done = true;
      body.destroy();
      reject(e);
    };
    const finish = (): void => {
      if (done) return;
      try {
        parser.end();
      } catch (e) {
        fail(e);
        return;
      }
      done = true;
      resolve(n);
    };
    const drain = (): void => {
      while (queue.length > 0 && !done) {
        const part = queue.shift() as MultipartPart;
        let r: void | Promise<void>;
        try {
          r = onPart(part);
        } catch (e) {
          fail(e);
          return;
        }
        n++;
        if (r instanceof Promise) {
          waiting = true;
          body.pause();
          r.then(() => {
            waiting = false;
            if (done) return;
            body.resume();
            drain();
          }, fail);
          return;
        }
      }
      if (ended && queue.length === 0) finish();
    };
    body.on('data', (chunk: Buffer) => {
      if (done) return;
      try {
        for (const p of parser.push(chunk)) queue.push(p);
      } catch (e) {
        fail(e);
        return;
      }
      if (!waiting) drain();
    });
    body.on('end', () => {
      ended = true;
      if (!waiting) drain();
    });
    body.on('error', fail);
    body.on('close', () => {
      if (!ended) fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    });
  });
}
