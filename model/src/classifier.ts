import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { ClassLabel } from './labels';
import { silentLog, type LogFn } from './log';
import { METADATA_FILE, readMetadata, type ModelMetadata, type View } from './metadata';
import { loadNetwork, type Network } from './network';

export interface ModelInfo {
  name: string;
  version: string;
  /** e.g. 'mobilenet_v2_0.35' at its input size: what runs. */
  architecture: string;
  inputSize: number;
  engine: Network['engine'];
}

export interface LoadOptions {
  /** Default: the shipped model, model/shipped. */
  modelDir?: string;
  /** 'layers' forces TF.js layers instead of the fused engine (for comparison). */
  engine?: Network['engine'];
  /** Overrides the metadata's test-time flip (false: the network alone, as finetune.py's reference.json has it). */
  testTimeFlip?: boolean;
  log?: LogFn;
}

export interface Classifier {
  readonly info: ModelInfo;
  readonly labels: ClassLabel[];
  /** What `preprocessPhoto` must produce for this model: classify takes view.size² × 3 RGB bytes per photo. */
  readonly view: View;
  /** images: RGB bytes, row-major HWC, view.size² × 3 each. One probability vector per image. */
  classify(images: Uint8Array[]): Promise<Float32Array[]>;
  dispose(): void;
}

/** model/shipped, whether running from model/src (tsx) or dist/model/src (compiled). */
export function defaultModelDir(): string {
  const candidates = [
    path.resolve(__dirname, '..', 'shipped'),
    path.resolve(__dirname, '..', '..', '..', 'model', 'shipped'),
  ];
  return candidates.find((dir) => existsSync(path.join(dir, METADATA_FILE))) ?? (candidates[0] as string);
}

/** Bounds the tensors one call holds at once, whatever the batch a caller sends. */
const CLASSIFY_CHUNK = 32;

/** Why the network cannot serve the model its metadata describes, if it cannot. */
function misfit(network: Network, meta: ModelMetadata): string | undefined {
  if (network.inputSize !== meta.network.inputSize) {
    return `its input is ${network.inputSize} px but the metadata says ${meta.network.inputSize}`;
  }
  if (network.classes !== meta.labels.length) {
    return `it gives ${network.classes} outputs for ${meta.labels.length} labels`;
  }
  return undefined;
}

/** The view's pixels to probabilities: the same resize and scaling finetune.py trains with, and the flip if asked. */
function viewProbabilities(network: Network, testTimeFlip: boolean): (x: tf.Tensor4D) => tf.Tensor2D {
  const { inputSize } = network;
  const prepare = (view: tf.Tensor4D) => {
    const resized =
      view.shape[1] === inputSize ? view : tf.image.resizeBilinear(view, [inputSize, inputSize], false, true);
    return tf.sub(tf.div(resized, 127.5), 1) as tf.Tensor4D;
  };
  return (x) =>
    tf.tidy(() => {
      const probabilities = network.probabilities(prepare(x));
      if (!testTimeFlip) return probabilities;
      const mirrored = network.probabilities(prepare(tf.reverse(x, 2)));
      return tf.div(tf.add(probabilities, mirrored), 2) as tf.Tensor2D;
    });
}

/** Images of size² × 3 bytes through `probabilities`, CLASSIFY_CHUNK at a time, each chunk's tensors freed. */
async function classifyInChunks(
  images: Uint8Array[],
  size: number,
  probabilities: (x: tf.Tensor4D) => tf.Tensor2D,
): Promise<Float32Array[]> {
  const bytesPerImage = size * size * 3;
  images.forEach((image, i) => {
    if (image.length !== bytesPerImage) {
      throw new Error(
        `Image ${i} has ${image.length} bytes; the model takes RGB ${size}×${size} (${bytesPerImage}).`,
      );
    }
  });
  const out: Float32Array[] = [];
  for (let start = 0; start < images.length; start += CLASSIFY_CHUNK) {
    const chunk = images.slice(start, start + CLASSIFY_CHUNK);
    const pixels = new Float32Array(chunk.length * bytesPerImage);
    chunk.forEach((image, i) => pixels.set(image, i * bytesPerImage));
    const x = tf.tensor4d(pixels, [chunk.length, size, size, 3]);
    const result = probabilities(x);
    x.dispose();
    const flat = (await result.data()) as Float32Array;
    const classes = result.shape[1];
    result.dispose();
    for (let i = 0; i < chunk.length; i++) out.push(flat.slice(i * classes, (i + 1) * classes));
  }
  return out;
}

/**
 * Loads the model `<modelDir>/metadata.json` describes: the whole network, from files in the folder alone (no
 * network access, nothing fetched). Warmed with one pass before it resolves, so the first request is not slow.
 */
export async function loadClassifier(options: LoadOptions = {}): Promise<Classifier> {
  const log = options.log ?? silentLog;
  const modelDir = options.modelDir ?? defaultModelDir();
  const meta = await readMetadata(modelDir);
  const network = await loadNetwork(path.resolve(modelDir, meta.network.path), {
    engine: options.engine,
    log,
  });
  const problem = misfit(network, meta);
  if (problem) {
    network.dispose();
    throw new Error(`The network in ${modelDir}/${meta.network.path} does not fit its metadata: ${problem}.`);
  }

  const testTimeFlip = options.testTimeFlip ?? meta.network.testTimeFlip;
  const probabilities = viewProbabilities(network, testTimeFlip);
  const { size } = meta.view;
  const classifier: Classifier = {
    info: {
      name: meta.name,
      version: meta.version,
      architecture: meta.network.architecture,
      inputSize: network.inputSize,
      engine: network.engine,
    },
    labels: meta.labels.map((label) => ({ ...label })),
    view: { ...meta.view },
    classify: (images) => classifyInChunks(images, size, probabilities),
    dispose: () => network.dispose(),
  };
  // One pass at load builds the kernels, so the first real request (and a readiness probe) is not the slow one.
  await classifier.classify([new Uint8Array(size * size * 3)]);
  log('model ready', { ...classifier.info, view: meta.view, testTimeFlip });
  return classifier;
}
