/**
 * The messages between the engine (main thread) and its inference worker threads. Both sides import these
 * types so a change to one side that the other does not follow fails to compile.
 */

/** What a worker needs to load the model: handed over as workerData. */
export interface WorkerInit {
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  modelDir?: string;
  backboneUrl?: string;
  backboneFallback: boolean;
  backboneCacheDir: string;
  /** batch sizes to run once before reporting ready, so the first real request does not pay for compilation */
  warmupBatchSizes: number[];
}

export interface ModelDescription {
  info: {
    name: string;
    version: string;
    backbone: { id: string; digest: string; source: string; fallback: boolean };
  };
  labels: { index: number; id: string; name: string }[];
  input: { size: number; resize: 'cover' | 'fill' };
  /** the TF.js backend actually running in the worker */
  backend: string;
}

export type ToWorker = { type: 'classify'; jobId: number; images: Uint8Array[] };

export type FromWorker =
  | { type: 'ready'; model: ModelDescription; warmupMsPerImage: number; numTensors: number }
  | { type: 'result'; jobId: number; probabilities: Float32Array[]; inferenceMs: number; numTensors: number }
  | { type: 'failed'; jobId: number; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };
