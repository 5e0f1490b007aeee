import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ClassLabel } from './labels';
import { silentLog, type LogFn } from './log';
import { METADATA_FILE, readMetadata, type View } from './metadata';
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
  const problem =
    network.inputSize !== meta.network.inputSize
      ? `its input is ${network.inputSize} px but the metadata says ${meta.network.inputSize}`
      : network.classes !== meta.labels.length
        ? `it gives ${network.classes} outputs for ${meta.labels.length} labels`
        : undefined;
  if (problem) {
    network.dispose();
    throw new Error(`The network in ${modelDir}/${meta.network.path} does not fit its metadata: ${problem}.`);
  }

  const { size } = meta.view;
  const bytesPerImage = size * size * 3;
  const classes = meta.labels.length;
  const inputSize = network.inputSize;
  const testTimeFlip = options.testTimeFlip ?? meta.network.testTimeFlip;

  /** The view's bytes to probabilities: the same resize and scaling finetune.py trains with. */
  const probabilities = (x: tf.Tensor4D): tf.Tensor2D =>
    tf.tidy(() => {
      const prepare = (v: tf.Tensor4D) => {
        const resized =
          v.shape[1] === inputSize ? v : tf.image.resizeBilinear(v, [inputSize, inputSize], false, true);
        return tf.sub(tf.div(resized, 127.5), 1) as tf.Tensor4D;
      };
      const p = network.probabilities(prepare(x));
      if (!testTimeFlip) return p;
      const mirrored = network.probabilities(prepare(tf.reverse(x, 2)));
      return tf.div(tf.add(p, mirrored), 2) as tf.Tensor2D;
    });

  const classifier: Classifier = {
    info: {
      name: meta.name,
      version: meta.version,
      architecture: meta.network.architecture,
      inputSize,
      engine: network.engine,
    },
    labels: meta.labels.map((l) => ({ ...l })),
    view: { ...meta.view },
    async classify(images) {
      images.forEach((img, i) => {
        if (img.length !== bytesPerImage) {
          throw new Error(
            `Image ${i} has ${img.length} bytes; the model takes RGB ${size}×${size} (${bytesPerImage}).`,
          );
        }
      });
      const out: Float32Array[] = [];
      for (let start = 0; start < images.length; start += CLASSIFY_CHUNK) {
        const chunk = images.slice(start, start + CLASSIFY_CHUNK);
        const pixels = new Float32Array(chunk.length * bytesPerImage);
        chunk.forEach((img, i) => pixels.set(img, i * bytesPerImage));
        const x = tf.tensor4d(pixels, [chunk.length, size, size, 3]);
        const p = probabilities(x);
        x.dispose();
        const flat = (await p.data()) as Float32Array;
        p.dispose();
        for (let i = 0; i < chunk.length; i++) out.push(flat.slice(i * classes, (i + 1) * classes));
      }
      return out;
    },
    dispose() {
      network.dispose();
    },
  };
  // One pass at load builds the kernels, so the first real request (and a readiness probe) is not the slow one.
  await classifier.classify([new Uint8Array(bytesPerImage)]);
  log('model ready', { ...classifier.info, view: meta.view, testTimeFlip });
  return classifier;
}
