/**
 * Messages between the model runner (main thread) and its onnxruntime worker. Tensors travel as transferred
 * ArrayBuffers (moved, not copied); shapes are sent beside them.
 */
export interface LoadRequest {
  type: 'load';
  path: string;
  /** onnxruntime intra-op threads; undefined = onnxruntime's default (one per physical core). */
  threads?: number;
  /** Input shape of the probe run made right after loading (one patch of zeros). */
  probeDims: readonly number[];
}

export interface RunRequest {
  type: 'run';
  id: number;
  /** Batch size N; `input` holds N * 1 * V^3 float32 values. */
  n: number;
  dims: readonly number[];
  input: ArrayBuffer;
}

/** Ends the worker thread after the runs queued before it (graceful stop; tests of crash handling). */
export interface ExitRequest {
  type: 'exit';
  code: number;
}

export type WorkerRequest = LoadRequest | RunRequest | ExitRequest;

export interface TensorInfo {
  name: string;
  /** From the graph's metadata: numbers, symbolic names (dynamic axes) or null when unknown. */
  shape: (number | string | null)[] | null;
}

export interface LoadedMessage {
  type: 'loaded';
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /**
   * The probe run, in the worker so that it needs nothing of the main thread (which may be busy loading the
   * series): each output's actual shape (metadata may leave axes symbolic), or why the run failed.
   */
  probe: { dims: Record<string, number[]> } | { error: string };
}

export interface OutputTensor {
  dims: number[];
  data: ArrayBuffer;
}

export interface ResultMessage {
  type: 'result';
  id: number;
  outputs: Record<string, OutputTensor>;
  /** Time inside session.run, ms (for the bench). */
  runMs: number;
}

export interface ErrorMessage {
  type: 'error';
  /** The run that failed; undefined when loading failed. */
  id?: number;
  message: string;
}

export type WorkerMessage = LoadedMessage | ResultMessage | ErrorMessage;
