import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FrameInfo, StoredPixels } from './frame.js';
import type { TransferSyntaxInfo } from './transfer-syntax.js';
import { workerEntry } from '../../util/built.js';

export interface DecodeRequest {
  id: number;
  transferSyntaxUid: string;
  encoded: ArrayBuffer;
  info: FrameInfo;
}

export interface DecodeResponse {
  id: number;
  signed?: boolean;
  buffer?: ArrayBuffer;
  error?: string;
}

interface Pending {
  resolve: (p: StoredPixels) => void;
  reject: (e: Error) => void;
  worker: Worker;
}

/**
 * Worker threads decoding compressed frames in parallel. A 512x512 JPEG 2000 CT slice takes tens of ms in
 * the OpenJPEG WASM build, so a 300-slice series is seconds of CPU on one thread; with N cores it
 * divides by about N. Workers start on first use and are unref'd: an idle pool never keeps the process alive.
 */
export class DecodePool {
  private readonly workers: Worker[] = [];
  private readonly load = new Map<Worker, number>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly size: number = Math.max(1, Math.min(8, availableParallelism()))) {}

  decode(ts: TransferSyntaxInfo, encoded: Uint8Array, info: FrameInfo): Promise<StoredPixels> {
    const worker = this.pickWorker();
    const id = this.nextId++;
    // Copy into a buffer of our own to transfer: the bytes may be a view into a file buffer (and a Node
    // Buffer's slice() is a view, not a copy), which must not be detached.
    const own = new Uint8Array(encoded.byteLength);
    own.set(encoded);
    const copy = own.buffer;
    const req: DecodeRequest = { id, transferSyntaxUid: ts.uid, encoded: copy, info };
    return new Promise<StoredPixels>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      this.load.set(worker, (this.load.get(worker) ?? 0) + 1);
      worker.ref();
      worker.postMessage(req, [copy]);
    });
  }

  /** Stops every worker; pending decodes reject. */
  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((w) => w.terminate()));
  }

  private pickWorker(): Worker {
    if (this.workers.length < this.size) {
      const w = new Worker(workerEntry('decode-worker', new URL('./decode-worker.mjs', import.meta.url)));
      w.on('message', (res: DecodeResponse) => this.onMessage(w, res));
      w.on('error', (e) => this.failWorker(w, new DecodeWorkerError(`decode worker failed: ${e.message}`)));
      w.on('exit', (code) => this.failWorker(w, new DecodeWorkerError(`decode worker exited with code ${code}`)));
      w.unref();
      this.workers.push(w);
      this.load.set(w, 0);
      return w;
    }
    let best = this.workers[0];
    for (const w of this.workers) if ((this.load.get(w) ?? 0) < (this.load.get(best) ?? 0)) best = w;
    return best;
  }

  private onMessage(w: Worker, res: DecodeResponse): void {
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    const left = (this.load.get(w) ?? 1) - 1;
    this.load.set(w, left);
    if (left === 0) w.unref();
    if (res.error !== undefined || !res.buffer) p.reject(new Error(res.error ?? 'decode worker returned nothing'));
    else p.resolve(res.signed ? new Int16Array(res.buffer) : new Uint16Array(res.buffer));
  }

  private failWorker(w: Worker, e: Error): void {
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
    this.load.delete(w);
    for (const [id, p] of this.pending) {
      if (p.worker === w) {
        this.pending.delete(id);
        p.reject(e);
      }
    }
  }
}

/** The pool itself failed (worker crashed or could not start), not the frame: callers may decode locally. */
export class DecodeWorkerError extends Error {
  override readonly name = 'DecodeWorkerError';
}

let shared: DecodePool | undefined;

/** The process-wide pool (created lazily). */
export function sharedDecodePool(): DecodePool {
  shared ??= new DecodePool();
  return shared;
}
