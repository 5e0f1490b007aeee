import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, loadClassifier, type Classifier } from '../../../model/src/index';
import { DecodeError, preprocessPhoto } from '../../../model/src/preprocess';
import type {
  DecodedInWorker,
  FromWorker,
  ImageOutcome,
  JobImage,
  ToWorker,
  WorkerInit,
} from './worker-protocol';

/**
 * One inference worker thread: loads the classifier once, warms it up, then classifies the batches the engine
 * sends. TF.js's wasm backend is single-threaded, so each worker is one core's worth of inference.
 */

const port = parentPort;
if (!port)
  throw new Error('service/src/inference/worker.ts must run as a worker thread (the engine starts it).');
const init = workerData as WorkerInit;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
  send({ type: 'log', level, msg, fields });
}

async function warmUp(classifier: Classifier): Promise<number> {
  const { size } = classifier.view;
  let msPerImage = 0;
  for (const batchSize of init.warmupBatchSizes) {
    const images = Array.from({ length: batchSize }, () => new Uint8Array(size * size * 3).fill(128));
    // The first run compiles kernels; the second is what a request will see.
    await classifier.classify(images);
    const started = performance.now();
    await classifier.classify(images);
    msPerImage = (performance.now() - started) / batchSize;
  }
  return msPerImage;
}

async function main(): Promise<void> {
  const backend = await initBackend(init.backend);
  const classifier = await loadClassifier({
    modelDir: init.modelDir,
    log: (msg, fields) => log('info', msg, fields),
  });
  const warmupMsPerImage = await warmUp(classifier);
  send({
    type: 'ready',
    model: {
      info: classifier.info,
      labels: classifier.labels.map(({ index, id, name }) => ({ index, id, name })),
      view: classifier.view,
      backend,
    },
    warmupMsPerImage,
    numTensors: tf.memory().numTensors,
  });

  port!.on('message', (message: ToWorker) => {
    runJob(classifier, message).catch((err: unknown) => {
      send({ type: 'failed', jobId: message.jobId, message: (err as Error).message });
    });
  });
}

type Decoded = { rgb: Uint8Array; decoded?: DecodedInWorker };
type Prepared = Decoded | Extract<ImageOutcome, { error: unknown }>;

/** One image of a job at the model's input: RGB as it came, or an encoded photo decoded here. */
async function prepare(image: JobImage, view: Classifier['view']): Promise<Prepared> {
  if ('rgb' in image) return { rgb: image.rgb };
  try {
    const photo = Buffer.from(image.photo.buffer, image.photo.byteOffset, image.photo.byteLength);
    const decoded = await preprocessPhoto(photo, { view, ...image.decode });
    // A copy with its own buffer, so it can be transferred whatever memory the decoder returned.
    return { rgb: decoded.rgb, decoded: { ...decoded, rgb: new Uint8Array(decoded.rgb) } };
  } catch (err) {
    if (err instanceof DecodeError) return { error: { code: err.code, message: err.message } };
    throw err;
  }
}

async function runJob(classifier: Classifier, message: ToWorker): Promise<void> {
  const started = performance.now();
  const prepared = await Promise.all(message.images.map((image) => prepare(image, classifier.view)));
  const decodedAt = performance.now();
  const runnable = prepared.filter((p): p is Decoded => 'rgb' in p);
  // Own copies: the classifier's arrays may be views sharing one buffer, which cannot be transferred twice.
  const probabilities = (await classifier.classify(runnable.map((p) => p.rgb))).map((p) =>
    Float32Array.from(p),
  );
  const finished = performance.now();
  let next = 0;
  const outcomes: ImageOutcome[] = prepared.map((p) =>
    'error' in p
      ? p
      : { probabilities: probabilities[next++]!, ...(p.decoded ? { decoded: p.decoded } : {}) },
  );
  const transfer = outcomes.flatMap((outcome) =>
    'probabilities' in outcome
      ? [outcome.probabilities.buffer, ...(outcome.decoded ? [outcome.decoded.rgb.buffer] : [])]
      : [],
  ) as ArrayBuffer[];
  send(
    {
      type: 'result',
      jobId: message.jobId,
      outcomes,
      inferenceMs: finished - decodedAt,
      busyMs: finished - started,
      numTensors: tf.memory().numTensors,
    },
    [...new Set(transfer)],
  );
}

// A failure to load ends the thread with that error: the engine's 'error' event reports it as the reason.
void main();
