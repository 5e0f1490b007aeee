import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadClassifier, type Classifier } from '../../model/src/index';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol';

/**
 * One inference worker thread: loads the classifier once, warms it up, then classifies the batches the engine
 * sends. TF.js's wasm backend is single-threaded, so each worker is one core's worth of inference.
 */

const port = parentPort;
if (!port) throw new Error('service/src/worker.ts must run as a worker thread (the engine starts it).');
const init = workerData as WorkerInit;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
  send({ type: 'log', level, msg, fields });
}

async function warmUp(classifier: Classifier): Promise<number> {
  const { size } = classifier.input;
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
    backboneUrl: init.backboneUrl,
    backboneFallback: init.backboneFallback,
    backboneCacheDir: init.backboneCacheDir,
    log: (msg, fields) => log('info', msg, fields),
  });
  const warmupMsPerImage = await warmUp(classifier);
  send({
    type: 'ready',
    model: {
      info: classifier.info,
      labels: classifier.labels.map(({ index, id, name }) => ({ index, id, name })),
      input: { size: classifier.input.size, resize: classifier.input.resize },
      backend,
    },
    warmupMsPerImage,
    numTensors: tf.memory().numTensors,
  });

  port!.on('message', (message: ToWorker) => {
    void (async () => {
      const started = performance.now();
      try {
        // Own copies: the classifier's arrays may be views sharing one buffer, which cannot be transferred twice.
        const probabilities = (await classifier.classify(message.images)).map((p) => Float32Array.from(p));
        const inferenceMs = performance.now() - started;
        send(
          {
            type: 'result',
            jobId: message.jobId,
            probabilities,
            inferenceMs,
            numTensors: tf.memory().numTensors,
          },
          probabilities.map((p) => p.buffer as ArrayBuffer),
        );
      } catch (err) {
        send({ type: 'failed', jobId: message.jobId, message: (err as Error).message });
      }
    })();
  });
}

// A failure to load ends the thread with that error: the engine's 'error' event reports it as the reason.
void main();
