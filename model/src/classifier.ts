import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadLayersModelDir } from './artifacts';
import { loadBackbone, type Backbone } from './backbone';
import { DEFAULT_BACKBONE_CACHE_DIR } from './backbone-cache';
import type { ClassLabel } from './labels';
import { silentLog, type LogFn } from './log';
import { METADATA_FILE, readMetadata, type HeadEntry, type InputSpec, type ModelMetadata } from './metadata';

export interface ModelInfo {
  name: string;
  version: string;
  /** Which head of the metadata runs ('clean', 'npm', …). */
  head: string;
  backbone: { id: string; digest: string; source: string; fallback: boolean };
}

export interface LoadOptions {
  /** Default: the shipped model, model/shipped. */
  modelDir?: string;
  /** http(s):// or file:// URL of the clean backbone, or 'none' for the npm-shipped one. Default: the URL the
   * clean head's metadata records (Teachable Machine's public MobileNetV2). */
  backboneUrl?: string;
  /** Use the npm-shipped backbone when the clean one cannot be had. Default: true when backboneUrl is unset. */
  backboneFallback?: boolean;
  /** Default: ~/.cache/gourmetgram/backbones. */
  backboneCacheDir?: string;
  /** Bound on fetching a remote backbone, so an unreachable host cannot stall start-up. Default 20 s. */
  fetchTimeoutMs?: number;
  log?: LogFn;
}

export interface Classifier {
  readonly info: ModelInfo;
  readonly labels: ClassLabel[];
  readonly input: InputSpec;
  /** images: RGB bytes, row-major HWC, input.size² × 3 each. One probability vector per image. */
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

const CLASSIFY_CHUNK = 32;

async function loadHead(modelDir: string, entry: HeadEntry, backbone: Backbone, classes: number) {
  const dir = path.resolve(modelDir, entry.path);
  const head = await loadLayersModelDir(dir);
  const inShape = head.inputs[0]?.shape;
  const outShape = head.outputs[0]?.shape;
  const problem =
    head.inputs.length !== 1 || inShape?.length !== 2
      ? 'it must take one feature vector'
      : inShape[1] !== backbone.featureDim
        ? `it takes ${inShape[1]} features but backbone '${backbone.spec.id}' gives ${backbone.featureDim}`
        : outShape?.[1] !== classes
          ? `it gives ${outShape?.[1]} outputs for ${classes} labels`
          : undefined;
  if (problem) {
    head.dispose();
    throw new Error(`Head '${entry.id}' at ${dir} does not fit: ${problem}.`);
  }
  return head;
}

function makeClassifier(
  meta: ModelMetadata,
  entry: HeadEntry,
  backbone: Backbone,
  head: tf.LayersModel,
  fallback: boolean,
): Classifier {
  const size = backbone.spec.inputSize;
  const bytesPerImage = size * size * 3;
  const classes = meta.labels.length;

  const probabilities = (x: tf.Tensor4D): tf.Tensor2D =>
    tf.tidy(() => {
      const p = head.predict(backbone.features(x)) as tf.Tensor2D;
      if (!entry.testTimeFlip) return p;
      const flipped = head.predict(backbone.features(tf.reverse(x, 2))) as tf.Tensor2D;
      return p.add(flipped).div(2) as tf.Tensor2D;
    });

  return {
    info: {
      name: meta.name,
      version: entry.version ?? meta.version,
      head: entry.id,
      backbone: { id: backbone.spec.id, digest: backbone.digest, source: backbone.loadedFrom, fallback },
    },
    labels: meta.labels.map((l) => ({ ...l })),
    input: { size, resize: meta.input.resize },
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
      head.dispose();
      backbone.dispose();
    },
  };
}

async function loadWithHead(
  modelDir: string,
  meta: ModelMetadata,
  entry: HeadEntry,
  opts: LoadOptions,
  url: string | undefined,
  fallback: boolean,
): Promise<Classifier> {
  const log = opts.log ?? silentLog;
  const backbone = await loadBackbone(entry.backbone, {
    url,
    cacheDir: opts.backboneCacheDir ?? DEFAULT_BACKBONE_CACHE_DIR,
    expectedDigest: entry.backbone.digest,
    fetchTimeoutMs: opts.fetchTimeoutMs,
    log,
  });
  let head: tf.LayersModel;
  try {
    head = await loadHead(modelDir, entry, backbone, meta.labels.length);
  } catch (err) {
    backbone.dispose();
    throw err;
  }
  const classifier = makeClassifier(meta, entry, backbone, head, fallback);
  // One pass at load builds the kernels, so the first real request (and a readiness probe) is not the slow one.
  await classifier.classify([new Uint8Array(classifier.input.size * classifier.input.size * 3)]);
  log(
    fallback
      ? `model ready on the npm-shipped backbone '${backbone.spec.id}' (offline fallback)`
      : `model ready on backbone '${backbone.spec.id}'`,
    {
      head: entry.id,
      backbone: backbone.spec.id,
      digest: backbone.digest,
      source: backbone.loadedFrom,
      engine: backbone.engine,
    },
  );
  return classifier;
}

/**
 * Loads the model the metadata describes: the head on the clean backbone when that backbone can be had, else
 * (when allowed) the head on the npm-shipped backbone. A head never runs on features it was not trained on.
 */
export async function loadClassifier(options: LoadOptions = {}): Promise<Classifier> {
  const log = options.log ?? silentLog;
  const modelDir = options.modelDir ?? defaultModelDir();
  const meta = await readMetadata(modelDir);
  const clean = meta.heads.find((h) => h.backbone.kind === 'layers');
  const npm = meta.heads.find((h) => h.backbone.kind === 'nsfwjs');
  const url = options.backboneUrl;
  const allowFallback = options.backboneFallback ?? url === undefined;

  if (url === 'none') {
    if (!npm)
      throw new Error(
        `BACKBONE_URL=none asks for the npm-shipped backbone, but ${modelDir} has no head for it.`,
      );
    return loadWithHead(modelDir, meta, npm, options, undefined, true);
  }
  if (!clean) {
    if (url !== undefined && !allowFallback) {
      throw new Error(
        `A backbone URL was given (${url}) but ${modelDir} has no head trained on a URL backbone.`,
      );
    }
    if (!npm) throw new Error(`${modelDir} has no usable head.`);
    return loadWithHead(modelDir, meta, npm, options, undefined, true);
  }
  try {
    return await loadWithHead(modelDir, meta, clean, options, url, false);
  } catch (err) {
    const reason = (err as Error).message;
    if (allowFallback && npm) {
      log('clean backbone unavailable; falling back to the npm-shipped backbone', {
        url: url ?? clean.backbone.source,
        reason,
      });
      return loadWithHead(modelDir, meta, npm, options, undefined, true);
    }
    throw new Error(
      `Cannot load the backbone of head '${clean.id}' from ${url ?? clean.backbone.source}: ${reason} ` +
        (npm
          ? 'Set BACKBONE_FALLBACK=true to run on the npm-shipped backbone instead, or BACKBONE_URL=none.'
          : 'This model has no head for the npm-shipped backbone to fall back to.'),
      { cause: err },
    );
  }
}
