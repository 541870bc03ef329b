import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { VbmdError } from '../util/errors.js';
import { log } from '../util/log.js';
import { workerEntry } from '../util/built.js';
import { CLASS_ORDER, CLASS_OUTPUT_NAME, INPUT_NAME, PATCH_VOXELS, ROI_OUTPUT_NAME, VBMD_OUTPUT_NAME } from './contract.js';
import { verifyModelFile, type ModelFile, type ModelIdentity } from './model-file.js';
import type { ErrorMessage, LoadedMessage, LoadRequest, ResultMessage, RunRequest, TensorInfo, WorkerMessage } from './worker-protocol.js';

/** One batch of network outputs, index n-major as in the contract. */
export interface ModelOutputs {
  n: number;
  /** [N,1,V,V,V] ROI logits (> 0: trabecular bone to measure). */
  roiLogits: Float32Array;
  /** [N] regression head, mg/cm3. */
  vbmdMgCm3: Float32Array;
  /** [N,3] class logits in CLASS_ORDER. */
  classLogits: Float32Array;
  /** Time inside session.run in the worker, ms. */
  runMs: number;
}

/** What the pipeline needs of a model: its identity and batched inference (ModelRunner; fakes in unit tests). */
export interface ModelInference {
  readonly model: ModelIdentity;
  infer(input: Float32Array, n: number): Promise<ModelOutputs>;
}

export interface ModelRunnerOptions {
  /** Model path (verified against its .sha256). */
  file: string;
  /** onnxruntime intra-op threads (default: defaultModelThreads()). */
  threads?: number;
}

const V = PATCH_VOXELS;
const VOXELS = V * V * V;

/**
 * Default onnxruntime intra-op threads: one core left for the event loop (and the engine), at most 4. Measured
 * on the 2-core dev machine (test/bench/model.bench.ts, load ~3-4): onnxruntime's default of one thread per core
 * gave 57 ms per vertebra and a 92 ms worst event-loop delay; one thread gave 35 ms and 21 ms (its spinning
 * threads compete with the main thread when there are no spare cores).
 */
export function defaultModelThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(4, cores - 1));
}

/**
 * Intra-op threads for a one-shot command (`vbmd analyze`): while the network runs, the command's own thread only
 * waits for it, so every core (at most 4) goes to onnxruntime. Measured on the 2-core dev machine at load ~0.4
 * (test/bench/analyze.bench.ts study, 10 levels): 1 thread 346-353 ms, 2 threads 215-241 ms.
 */
export function oneShotModelThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(4, cores));
}

/** Shape problems of the graph's declared inputs/outputs against src/model/contract.ts (empty = fine). */
export function contractProblems(inputs: TensorInfo[], outputs: TensorInfo[]): string[] {
  const problems: string[] = [];
  const expect = (list: TensorInfo[], name: string, shape: (number | null)[], kind: string): void => {
    const t = list.find((x) => x.name === name);
    if (!t) {
      problems.push(`no ${kind} named "${name}" (has ${list.map((x) => `"${x.name}"`).join(', ') || 'none'})`);
      return;
    }
    if (!t.shape) return; // metadata unknown: the probe run checks actual shapes
    const ok = t.shape.length === shape.length && shape.every((d, i) => d === null || t.shape![i] === d || typeof t.shape![i] === 'string' || t.shape![i] === null);
    if (!ok) problems.push(`${kind} "${name}" has shape [${t.shape.join(',')}], [${shape.map((d) => d ?? 'N').join(',')}] expected`);
  };
  expect(inputs, INPUT_NAME, [null, 1, V, V, V], 'input');
  expect(outputs, ROI_OUTPUT_NAME, [null, 1, V, V, V], 'output');
  expect(outputs, VBMD_OUTPUT_NAME, [null, 1], 'output');
  expect(outputs, CLASS_OUTPUT_NAME, [null, CLASS_ORDER.length], 'output');
  return problems;
}

/** Each output and its values per patch. */
const OUTPUTS: readonly (readonly [string, number])[] = [
  [ROI_OUTPUT_NAME, VOXELS],
  [VBMD_OUTPUT_NAME, 1],
  [CLASS_OUTPUT_NAME, CLASS_ORDER.length],
];

/** What is wrong with an output's actual shape for a batch of n (empty = fine). */
function outputProblem(name: string, dims: readonly number[] | undefined, n: number, perCase: number): string[] {
  if (!dims) return [`no output "${name}"`];
  const size = dims.reduce((a, b) => a * b, 1);
  return size === n * perCase ? [] : [`output "${name}" has shape [${dims.join(',')}] for ${n} patch${n === 1 ? '' : 'es'}`];
}

interface Pending {
  resolve: (o: ModelOutputs) => void;
  reject: (e: Error) => void;
  n: number;
  worker: Worker;
}

/**
 * The vBMD network in an onnxruntime worker thread (src/model/onnx-worker.ts). `start` verifies the file's
 * sha256, loads it, checks names and shapes against the contract and runs one probe patch (in the worker), so a wrong or
 * corrupt model fails at start. A worker that dies (uncaught error, heap out of memory, exit) fails the runs
 * it held with a VbmdError and is started again on the next run; the process does not go down with it. Limits,
 * honestly: a thread shares the process, so a native abort inside onnxruntime (a segfault, or terminate() of a
 * thread in the middle of session.run, which is why this class never does that) ends the whole process; the
 * service runs analyses in a supervised child process (src/jobs/worker-process.ts) so that case restarts the
 * worker process, never the hooks. The worker is unref'd while idle, so a loaded model never keeps a CLI alive.
 */
export class ModelRunner implements ModelInference {
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  private constructor(
    readonly file: ModelFile,
    private readonly threads: number | undefined,
  ) {}

  /** Verifies and loads the model; throws VbmdError('model') naming the file and what to do. */
  static async start(options: ModelRunnerOptions): Promise<ModelRunner> {
    const file = await verifyModelFile(options.file);
    const runner = new ModelRunner(file, options.threads ?? defaultModelThreads());
    await runner.ensureWorker();
    return runner;
  }

  get model(): ModelIdentity {
    return { name: this.file.name, version: this.file.version, sha256: this.file.sha256 };
  }

  /**
   * Runs N patches (network input per the contract, N*V^3 values). The input's buffer is transferred to the
   * worker (no copy) and is detached afterwards unless it is a view into a larger buffer, which is copied.
   */
  async infer(input: Float32Array, n: number): Promise<ModelOutputs> {
    if (this.closed) throw new VbmdError('model', `The model runner for ${this.file.path} was closed; start a new one.`);
    if (!Number.isInteger(n) || n < 1 || input.length !== n * VOXELS) {
      throw new RangeError(`model input has ${input.length} values, ${n} x ${VOXELS} expected`);
    }
    // Posted synchronously when the worker is up, so runs reach it in call order.
    const worker = this.worker ?? (await this.ensureWorker());
    return this.post(worker, input, n);
  }

  /**
   * Stops the worker after the runs already sent have finished (never terminate() a thread inside
   * onnxruntime's native run: that aborts the whole process). Later infer calls fail.
   */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker ?? (await this.starting?.catch(() => undefined));
    this.worker = undefined;
    if (!w) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.ref();
    w.postMessage({ type: 'exit', code: 0 });
    await exited;
  }

  /**
   * Asks the worker to end after the runs sent before this call, as a crash between runs would; runs sent
   * after it fail with a VbmdError and the next infer starts a fresh worker. For tests of crash handling and
   * to free the model's memory in a long-lived process.
   */
  endWorkerAfterQueuedRuns(code = 1): void {
    this.worker?.postMessage({ type: 'exit', code });
  }

  private post(worker: Worker, input: Float32Array, n: number): Promise<ModelOutputs> {
    const own = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength ? input : input.slice();
    const id = this.nextId++;
    const req: RunRequest = { type: 'run', id, n, dims: [n, 1, V, V, V], input: own.buffer as ArrayBuffer };
    return new Promise<ModelOutputs>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, n, worker });
      // Keep the process alive only while a run is in flight.
      worker.ref();
      worker.postMessage(req, [req.input]);
    });
  }

  private ensureWorker(): Promise<Worker> {
    if (this.worker) return Promise.resolve(this.worker);
    this.starting ??= this.spawn().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async spawn(): Promise<Worker> {
    const path = this.file.path;
    const w = new Worker(workerEntry('onnx-worker', new URL('./onnx-worker.mjs', import.meta.url)));
    const loaded = await new Promise<LoadedMessage>((resolve, reject) => {
      const onMessage = (m: WorkerMessage): void => {
        cleanup();
        if (m.type === 'loaded') resolve(m);
        else reject(new VbmdError('model', `onnxruntime could not load the model file ${path} (${m.type === 'error' ? m.message : m.type}); restore the committed model or export it again.`));
      };
      const onError = (e: Error): void => {
        cleanup();
        reject(new VbmdError('model', `The model worker could not start for ${path} (${e.message}); check that onnxruntime-node is installed (ONNXRUNTIME_NODE_INSTALL=skip npm install).`));
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new VbmdError('model', `The model worker exited with code ${code} while loading ${path}; check the file and onnxruntime-node.`));
      };
      const cleanup = (): void => {
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
      const load: LoadRequest = { type: 'load', path, threads: this.threads, probeDims: [1, 1, V, V, V] };
      w.postMessage(load);
    }).catch(async (e: unknown) => {
      await w.terminate();
      throw e;
    });
    const probe = loaded.probe;
    const problems = contractProblems(loaded.inputs, loaded.outputs);
    if (!problems.length && 'error' in probe) {
      await w.terminate();
      throw new VbmdError('model', `The model file ${path} failed its probe run (${probe.error}); export it again with the contract's names and shapes.`);
    }
    if (!problems.length && 'dims' in probe) problems.push(...OUTPUTS.flatMap(([name, perCase]) => outputProblem(name, probe.dims[name], 1, perCase)));
    if (problems.length) {
      await w.terminate();
      throw new VbmdError('model', `The model file ${path} does not follow src/model/contract.ts (${problems.join('; ')}); export it again with the contract's names and shapes.`);
    }
    w.on('message', (m: WorkerMessage) => this.onMessage(w, m));
    w.on('error', (e) => this.onDeath(w, `failed: ${e.message}`));
    w.on('exit', (code) => this.onDeath(w, `exited with code ${code}`));
    this.worker = w;
    w.unref();
    log.debug({ model: this.file.name, version: this.file.version, sha256: this.file.sha256 }, 'model loaded');
    return w;
  }

  private onMessage(w: Worker, m: WorkerMessage): void {
    if (m.type === 'loaded' || m.id === undefined) return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (![...this.pending.values()].some((x) => x.worker === w)) w.unref();
    if (m.type === 'error') {
      p.reject(new VbmdError('model', `The model run failed in onnxruntime (${(m as ErrorMessage).message}); the analysis was not completed.`));
      return;
    }
    try {
      p.resolve(this.unpack(m, p.n));
    } catch (e) {
      p.reject(e as Error);
    }
  }

  private unpack(m: ResultMessage, n: number): ModelOutputs {
    const problems = OUTPUTS.flatMap(([name, perCase]) => outputProblem(name, m.outputs[name]?.dims, n, perCase));
    if (problems.length) {
      throw new VbmdError('model', `The model file ${this.file.path} does not follow src/model/contract.ts (${problems.join('; ')}); export it again with the contract's names and shapes.`);
    }
    const get = (name: string): Float32Array => new Float32Array(m.outputs[name].data);
    return {
      n,
      roiLogits: get(ROI_OUTPUT_NAME),
      vbmdMgCm3: get(VBMD_OUTPUT_NAME),
      classLogits: get(CLASS_OUTPUT_NAME),
      runMs: m.runMs,
    };
  }

  private onDeath(w: Worker, how: string): void {
    if (this.worker === w) this.worker = undefined;
    const mine = [...this.pending].filter(([, p]) => p.worker === w);
    if (this.closed && mine.length === 0) return;
    log.warn({ model: this.file.name }, `model worker ${how}`);
    this.failAll(w, new VbmdError('model', `The model worker ${how} during a run of ${this.file.name} ${this.file.version}; the analysis was not completed: retry it, and report it if it repeats.`));
  }

  private failAll(w: Worker, e: Error): void {
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== w) continue;
      this.pending.delete(id);
      p.reject(e);
    }
  }
}
