import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Backbone, BackboneSpec } from '../src';
import type { Variant } from './decode';
import { extractChunk, planChunks, readFeatures, type Chunk, type FeatureExtractor } from './feature-cache';

export interface ExtractionJob {
  variant: Variant;
  files: string[];
}

/** How a worker process gets the same backbone as the parent: the spec, where from, and the digest to insist on. */
export interface BackboneRequest {
  spec: BackboneSpec;
  url?: string;
  backboneCacheDir?: string;
}

export type WorkerMessage =
  | { type: 'init'; request: BackboneRequest; digest: string; resize: 'cover' | 'fill' }
  | { type: 'chunk'; chunk: Chunk; variant: Variant }
  | { type: 'exit' };
export type ParentMessage = { type: 'ready' } | { type: 'progress'; images: number } | { type: 'done' };

/** Everything that decides the feature values; a change in any of them is a new cache. */
export function featureKey(backbone: Backbone, resize: string): string {
  const s = backbone.spec;
  return JSON.stringify({
    digest: backbone.digest,
    layers: s.layers,
    size: s.inputSize,
    scaling: s.scaling,
    resize,
  });
}

export function asExtractor(backbone: Backbone, resize: 'cover' | 'fill'): FeatureExtractor {
  return {
    featureSize: backbone.featureDim,
    input: { size: backbone.spec.inputSize, resize },
    extract: (images) => backbone.extract(images),
  };
}

export interface EnsureOptions {
  featureCacheDir: string;
  workers: number;
  request: BackboneRequest;
  onStart?: (pendingImages: number, cachedImages: number) => void;
  onProgress?: (images: number) => void;
}

/** The worker script beside this file, .ts under tsx and .js once compiled. */
function workerScript(): string {
  return path.join(__dirname, `extract-worker${path.extname(__filename)}`);
}

async function runInWorkers(
  pending: { chunk: Chunk; variant: Variant }[],
  workers: number,
  request: BackboneRequest,
  digest: string,
  resize: 'cover' | 'fill',
  onProgress: (n: number) => void,
): Promise<void> {
  const queue = [...pending];
  const children = Array.from({ length: Math.min(workers, pending.length) }, () =>
    fork(workerScript(), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve, reject) => {
          const next = () => {
            const job = queue.shift();
            child.send((job ? { type: 'chunk', ...job } : { type: 'exit' }) satisfies WorkerMessage);
          };
          child.on('message', (m: ParentMessage) => {
            if (m.type === 'progress') onProgress(m.images);
            else next();
          });
          child.on('exit', (code) =>
            code === 0
              ? resolve()
              : reject(new Error(`A feature-extraction worker exited with code ${code}.`)),
          );
          child.on('error', reject);
          child.send({ type: 'init', request, digest, resize } satisfies WorkerMessage);
        }),
    ),
  );
}

/**
 * Makes sure every job's features are in the cache (extracting the missing chunks, in worker processes when
 * asked), then returns them by variant and file.
 */
export async function ensureFeatures(
  backbone: Backbone,
  resize: 'cover' | 'fill',
  jobs: ExtractionJob[],
  options: EnsureOptions,
): Promise<Map<Variant, Map<string, Float32Array>>> {
  const key = featureKey(backbone, resize);
  const planned = jobs.map((j) => ({
    job: j,
    chunks: planChunks(options.featureCacheDir, key, j.variant, j.files),
  }));
  const pending = planned.flatMap((p) =>
    p.chunks.filter((c) => !existsSync(c.file)).map((chunk) => ({ chunk, variant: p.job.variant })),
  );
  const pendingImages = pending.reduce((n, p) => n + p.chunk.files.length, 0);
  const totalImages = planned.reduce((n, p) => n + p.job.files.length, 0);
  options.onStart?.(pendingImages, totalImages - pendingImages);
  const onProgress = options.onProgress ?? (() => {});
  if (pending.length > 0 && options.workers > 1) {
    await runInWorkers(pending, options.workers, options.request, backbone.digest, resize, onProgress);
  } else {
    const extractor = asExtractor(backbone, resize);
    for (const p of pending) await extractChunk(p.chunk, extractor, p.variant, onProgress);
  }
  const out = new Map<Variant, Map<string, Float32Array>>();
  for (const p of planned) {
    const rows = readFeatures(p.chunks, backbone.featureDim);
    const into = out.get(p.job.variant) ?? new Map<string, Float32Array>();
    for (const [f, r] of rows) into.set(f, r);
    out.set(p.job.variant, into);
  }
  return out;
}
