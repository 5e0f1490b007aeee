/**
 * The messages between the engine (main thread) and its inference worker threads. Both sides import these
 * types so a change to one side that the other does not follow fails to compile.
 */

import type { BackendName } from '../../../model/src/backend-names';
import type { ModelInfo } from '../../../model/src/classifier';
import type { DecodeErrorCode, DecoderName, ImageFormat, View } from '../../../model/src/preprocess';

/** What a worker needs to load the model: handed over as workerData. */
export interface WorkerInit {
  backend: BackendName;
  modelDir?: string;
  /** batch sizes to run once before reporting ready, so the first real request does not pay for compilation */
  warmupBatchSizes: number[];
}

export interface ModelDescription {
  info: ModelInfo;
  labels: { index: number; id: string; name: string }[];
  /** what the decoder must produce: the model's view of a photo */
  view: View;
  /** the TF.js backend actually running in the worker */
  backend: string;
}

/** How photos are decoded: with which library, under which pixel budget. */
export interface Decoding {
  maxPixels: number;
  decoder: DecoderName;
}

/**
 * One image of a job: RGB bytes at the model's input size, or an encoded photo for the worker to decode. The
 * pure-JavaScript decoder (jimp) runs in the worker so that it never blocks the main thread's event loop;
 * sharp decodes on libuv's thread pool and hands the engine RGB.
 */
export type JobImage = { rgb: Uint8Array } | { photo: Uint8Array; decode: Decoding };

export interface DecodedInWorker {
  rgb: Uint8Array;
  width: number;
  height: number;
  format: ImageFormat;
  decodeMs: number;
}

export type ImageOutcome =
  | { probabilities: Float32Array; decoded?: DecodedInWorker }
  | { error: { code: DecodeErrorCode; message: string } };

export type ToWorker = { type: 'classify'; jobId: number; images: JobImage[] };

export type FromWorker =
  | { type: 'ready'; model: ModelDescription; warmupMsPerImage: number; numTensors: number }
  | {
      type: 'result';
      jobId: number;
      outcomes: ImageOutcome[];
      /** model time for the whole batch */
      inferenceMs: number;
      /** decoding plus model time: what the next job will wait for */
      busyMs: number;
      numTensors: number;
    }
  | { type: 'failed'; jobId: number; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };
