import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ErrorMessage, LoadedMessage, OutputTensor, ResultMessage, TensorInfo, WorkerRequest } from './worker-protocol.js';

/**
 * The onnxruntime worker thread. `session.run` of onnxruntime-node is synchronous native work on the calling
 * thread, so it lives here and the service's event loop stays free (DESIGN.md "Model"). One session per worker,
 * runs handled one at a time in arrival order.
 */
const port = parentPort;
if (!port) throw new Error('onnx-worker must run in a worker thread');

let session: ort.InferenceSession | undefined;

function info(meta: readonly ort.InferenceSession.ValueMetadata[] | undefined, names: readonly string[]): TensorInfo[] {
  return names.map((name) => {
    const m = meta?.find((x) => x.name === name);
    const shape = m && m.isTensor ? m.shape.map((d) => (typeof d === 'number' || typeof d === 'string' ? d : null)) : null;
    return { name, shape };
  });
}

/** The tensor's bytes as an ArrayBuffer of its own, ready to transfer (copied only when it is a view). */
function ownBuffer(t: ort.Tensor): ArrayBuffer {
  const d = t.data;
  if (!(d instanceof Float32Array)) throw new Error(`output is ${t.type}, float32 expected`);
  const own = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : d.slice();
  return own.buffer as ArrayBuffer;
}

/** One run on zeros: the outputs' actual shapes, and onnxruntime's first-run allocations done before real work. */
async function probe(s: ort.InferenceSession, dims: readonly number[]): Promise<LoadedMessage['probe']> {
  try {
    const input = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), [...dims]);
    const result = await s.run({ [s.inputNames[0]]: input });
    return { dims: Object.fromEntries(Object.entries(result).map(([name, t]) => [name, [...t.dims]])) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

let queue: Promise<void> = Promise.resolve();

port.on('message', (req: WorkerRequest) => {
  queue = queue.then(() => handle(req));
});

async function handle(req: WorkerRequest): Promise<void> {
  if (req.type === 'exit') {
    // Only between runs: ending a thread while onnxruntime runs native code aborts the whole process.
    await session?.release();
    session = undefined;
    process.exit(req.code);
  }
  if (req.type === 'load') {
    try {
      session = await ort.InferenceSession.create(req.path, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        ...(req.threads ? { intraOpNumThreads: req.threads, interOpNumThreads: 1 } : {}),
      });
      const msg: LoadedMessage = {
        type: 'loaded',
        inputs: info(session.inputMetadata, session.inputNames),
        outputs: info(session.outputMetadata, session.outputNames),
        probe: await probe(session, req.probeDims),
      };
      port!.postMessage(msg);
    } catch (e) {
      const msg: ErrorMessage = { type: 'error', message: (e as Error).message };
      port!.postMessage(msg);
    }
    return;
  }
  try {
    if (!session) throw new Error('no model is loaded');
    const input = new ort.Tensor('float32', new Float32Array(req.input), [...req.dims]);
    const t0 = performance.now();
    const result = await session.run({ [session.inputNames[0]]: input });
    const runMs = performance.now() - t0;
    const outputs: Record<string, OutputTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(result)) {
      const data = ownBuffer(t);
      outputs[name] = { dims: [...t.dims], data };
      transfer.push(data);
    }
    const msg: ResultMessage = { type: 'result', id: req.id, outputs, runMs };
    port!.postMessage(msg, transfer);
  } catch (e) {
    const msg: ErrorMessage = { type: 'error', id: req.id, message: (e as Error).message };
    port!.postMessage(msg);
  }
}
