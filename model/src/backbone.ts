import * as tf from '@tensorflow/tfjs';
import {
  DEFAULT_FETCH_TIMEOUT_MS,
  layersModelFromArtifacts,
  readArtifactsFromUrl,
  type LayersArtifacts,
} from './artifacts';
import { readCachedBackbone, writeCachedBackbone } from './backbone-cache';
import { BackboneSpecSchema, type BackboneSpec } from './backbone-spec';
import { backboneDigest, digestOfDecoded } from './digest';
import { compileFusedGraph, type FusedGraph } from './fused-graph';
import { silentLog, type LogFn } from './log';
import { readNsfwjsArtifacts } from './nsfwjs-source';
import { backboneTopology, prunedBackboneConfig } from './topology';

/** A head meets features other than those it was trained on: refused, never run. */
export class BackboneMismatchError extends Error {
  readonly code = 'BACKBONE_MISMATCH';
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(message);
    this.name = 'BackboneMismatchError';
  }
}

export interface BackboneLoadOptions {
  /** Where to get a 'layers' backbone instead of spec.source (BACKBONE_URL); http(s):// or file://. */
  url?: string;
  /** Remote backbones are kept here after the first fetch; the digest is checked again on every load. */
  cacheDir?: string;
  /** Refuse the backbone unless its weight digest is this one (the digest a head was trained on). */
  expectedDigest?: string;
  fetchTimeoutMs?: number;
  /** 'fused' (default) folds batch norms into convolutions where every layer is one it knows; 'layers' never. */
  engine?: 'fused' | 'layers';
  log?: LogFn;
}

export interface Backbone {
  readonly spec: BackboneSpec;
  /** sha256 of the backbone's weight values (see backboneDigest). */
  readonly digest: string;
  readonly featureDim: number;
  /** Where the weights came from: the URL, the cache folder, or the npm package. */
  readonly loadedFrom: string;
  readonly engine: BackboneNetwork['engine'];
  /**
   * Features for a batch of RGB images as a float tensor [n, size, size, 3] with values 0..255 (for callers that
   * augment on tensors). The caller owns the result.
   */
  features(rgb: tf.Tensor4D): tf.Tensor2D;
  /** Features for RGB byte images, each exactly spec.inputSize² × 3 bytes (row-major HWC). */
  extract(images: Uint8Array[]): Promise<Float32Array[]>;
  dispose(): void;
}

/** The cut backbone as something that runs: scaled images in, the requested layers' activations out. */
export interface BackboneNetwork {
  /** 'fused': plain ops with batch norms folded into convolutions; 'layers': TF.js layers, as exported. */
  readonly engine: 'fused' | 'layers';
  run(x: tf.Tensor4D): tf.Tensor[];
  dispose(): void;
}

async function layersNetwork(
  artifacts: LayersArtifacts,
  layers: string[],
  inputSize: number,
): Promise<BackboneNetwork> {
  const topology = backboneTopology(artifacts.modelTopology, layers, inputSize);
  // Not strict: the file carries weights of layers past the cut; missing ones are checked below instead, so a
  // wrong model cannot run on initialiser noise.
  const model = await layersModelFromArtifacts({ ...artifacts, modelTopology: topology }, false);
  const present = new Set(artifacts.weightSpecs.map((s) => s.name));
  const missing = model.weights.filter((w) => !present.has(w.originalName)).map((w) => w.originalName);
  if (missing.length > 0) {
    model.dispose();
    throw new Error(
      `The backbone model lacks weights for ${missing.length} of its variables (e.g. ${missing.slice(0, 3).join(', ')}); ` +
        'is it a complete export?',
    );
  }
  return {
    engine: 'layers',
    run: (x) => {
      const out = model.predict(x);
      return Array.isArray(out) ? out : [out];
    },
    dispose: () => model.dispose(),
  };
}

/**
 * Builds the backbone cut at `layers` (outputs in that order) at `inputSize`, with the digest of its weights.
 * Prefers the fused engine (same function, far fewer kernels); `engine: 'layers'` forces TF.js layers. Throws on
 * a model that is not a usable backbone.
 */
export async function buildBackboneNetwork(
  artifacts: LayersArtifacts,
  layers: string[],
  inputSize: number,
  engine: 'fused' | 'layers' = 'fused',
  log: LogFn = silentLog,
): Promise<{ network: BackboneNetwork; digest: string }> {
  const decoded = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  let fused: FusedGraph | undefined;
  let digest: string;
  try {
    digest = digestOfDecoded(artifacts, decoded);
    const config = prunedBackboneConfig(artifacts.modelTopology, layers, inputSize);
    if (engine === 'fused') fused = compileFusedGraph(config, decoded, layers);
  } finally {
    tf.dispose(decoded);
  }
  if (fused) {
    const graph = fused;
    // A backend lacking a fused kernel (or an activation in it) fails here, at load, not on the first photo.
    try {
      tf.dispose(tf.tidy(() => graph.run(tf.zeros([1, inputSize, inputSize, 3]))));
      return {
        network: { engine: 'fused', run: (x) => graph.run(x), dispose: () => graph.dispose() },
        digest,
      };
    } catch (err) {
      graph.dispose();
      log('fused engine unavailable on this backend; running TF.js layers', {
        reason: (err as Error).message,
      });
    }
  }
  return { network: await layersNetwork(artifacts, layers, inputSize), digest };
}

const EXTRACT_CHUNK = 16;

function makeBackbone(
  spec: BackboneSpec,
  network: BackboneNetwork,
  digest: string,
  loadedFrom: string,
): Backbone {
  // One pass on a blank image gives the feature width of whichever engine runs, and warms its kernels.
  const probe = tf.tidy(() => network.run(tf.zeros([1, spec.inputSize, spec.inputSize, 3])));
  const featureDim = probe.reduce((n, t) => n + (t.shape[t.shape.length - 1] ?? 0), 0);
  tf.dispose(probe);
  const size = spec.inputSize;
  const bytesPerImage = size * size * 3;

  const features = (rgb: tf.Tensor4D): tf.Tensor2D =>
    tf.tidy(() => {
      const scaled = spec.scaling === '[-1,1]' ? rgb.div(127.5).sub(1) : rgb.div(255);
      const pooled = network.run(scaled as tf.Tensor4D).map((t) => t.mean([1, 2]) as tf.Tensor2D);
      return pooled.length === 1 ? (pooled[0] as tf.Tensor2D) : tf.concat(pooled, 1);
    });

  return {
    spec,
    digest,
    featureDim,
    loadedFrom,
    engine: network.engine,
    features,
    async extract(images) {
      images.forEach((img, i) => {
        if (img.length !== bytesPerImage) {
          throw new Error(
            `Image ${i} has ${img.length} bytes; backbone '${spec.id}' takes RGB ${size}×${size} (${bytesPerImage} bytes).`,
          );
        }
      });
      const result: Float32Array[] = [];
      for (let start = 0; start < images.length; start += EXTRACT_CHUNK) {
        const chunk = images.slice(start, start + EXTRACT_CHUNK);
        const pixels = new Float32Array(chunk.length * bytesPerImage);
        chunk.forEach((img, i) => pixels.set(img, i * bytesPerImage));
        const input = tf.tensor4d(pixels, [chunk.length, size, size, 3]);
        const feats = features(input);
        input.dispose();
        const flat = (await feats.data()) as Float32Array;
        feats.dispose();
        for (let i = 0; i < chunk.length; i++) result.push(flat.slice(i * featureDim, (i + 1) * featureDim));
      }
      return result;
    },
    dispose() {
      network.dispose();
    },
  };
}

function mismatch(
  spec: BackboneSpec,
  where: string,
  expected: string,
  actual: string,
): BackboneMismatchError {
  const fix =
    spec.kind === 'nsfwjs'
      ? 'The installed nsfwjs package ships other weights than the head was trained on: install the locked ' +
        'version (npm ci) or retrain the head.'
      : 'Point BACKBONE_URL at the model the head was trained on, or retrain the head on this one.';
  return new BackboneMismatchError(
    `The backbone at ${where} has weight digest ${actual.slice(0, 16)}…, but '${spec.id}' (the features the head ` +
      `was trained on) has ${expected.slice(0, 16)}…: it is a different model. ${fix}`,
    expected,
    actual,
  );
}

async function loadLayersKind(spec: BackboneSpec, opts: BackboneLoadOptions): Promise<Backbone> {
  const log = opts.log ?? silentLog;
  const url = opts.url ?? spec.source;
  const remote = /^https?:\/\//i.test(url);
  const expected = opts.expectedDigest;

  if (remote && opts.cacheDir) {
    const cached = await readCachedBackbone(opts.cacheDir, url);
    if (cached) {
      const { network, digest } = await buildBackboneNetwork(
        cached.artifacts,
        spec.layers,
        spec.inputSize,
        opts.engine,
        opts.log,
      );
      if (digest === cached.digest && (!expected || digest === expected)) {
        log('backbone loaded from cache', { id: spec.id, url, dir: cached.dir, digest });
        return makeBackbone(spec, network, digest, cached.dir);
      }
      network.dispose();
      log('cached backbone does not match its record or the head; fetching it again', {
        url,
        dir: cached.dir,
      });
    }
  }

  const artifacts = await readArtifactsFromUrl(url, {
    timeoutMs: opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
  });
  const { network, digest } = await buildBackboneNetwork(
    artifacts,
    spec.layers,
    spec.inputSize,
    opts.engine,
    opts.log,
  );
  if (expected && digest !== expected) {
    network.dispose();
    throw mismatch(spec, url, expected, digest);
  }
  if (remote && opts.cacheDir) {
    try {
      const dir = await writeCachedBackbone(opts.cacheDir, url, artifacts, digest);
      log('backbone fetched and cached', { id: spec.id, url, dir, digest });
    } catch (err) {
      // A read-only cache (e.g. baked into an image) must not stop a backbone that was fetched and verified.
      log('backbone fetched but not cached', { id: spec.id, url, digest, reason: (err as Error).message });
    }
  } else {
    log('backbone loaded', { id: spec.id, url, digest });
  }
  return makeBackbone(spec, network, digest, url);
}

async function loadNsfwjsKind(spec: BackboneSpec, opts: BackboneLoadOptions): Promise<Backbone> {
  const { network, digest } = await buildBackboneNetwork(
    readNsfwjsArtifacts(spec.source),
    spec.layers,
    spec.inputSize,
    opts.engine,
    opts.log,
  );
  if (opts.expectedDigest && digest !== opts.expectedDigest) {
    network.dispose();
    throw mismatch(spec, `npm package ${spec.source}`, opts.expectedDigest, digest);
  }
  (opts.log ?? silentLog)('backbone loaded from npm package', { id: spec.id, source: spec.source, digest });
  return makeBackbone(spec, network, digest, spec.source);
}

/** Loads a backbone as its spec describes, checks its digest when one is expected, and returns its extractor. */
export async function loadBackbone(spec: BackboneSpec, opts: BackboneLoadOptions = {}): Promise<Backbone> {
  const valid = BackboneSpecSchema.parse(spec);
  return valid.kind === 'nsfwjs' ? loadNsfwjsKind(valid, opts) : loadLayersKind(valid, opts);
}

/**
 * Fetches a 'layers' backbone into the cache and verifies it (the container build runs this, so pods never
 * download at start). Returns its digest and the cache folder.
 */
export async function fetchBackboneIntoCache(
  url: string,
  cacheDir: string,
  opts: { expectedDigest?: string; fetchTimeoutMs?: number } = {},
): Promise<{ digest: string; dir: string }> {
  const artifacts = await readArtifactsFromUrl(url, {
    timeoutMs: opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
  });
  // The digest covers the whole backbone whatever a head cuts it at, so no cut is built here.
  const digest = backboneDigest(artifacts);
  if (opts.expectedDigest && digest !== opts.expectedDigest) {
    throw new BackboneMismatchError(
      `The model at ${url} has weight digest ${digest}, expected ${opts.expectedDigest}: it is not the backbone ` +
        'the shipped head was trained on.',
      opts.expectedDigest,
      digest,
    );
  }
  return { digest, dir: await writeCachedBackbone(cacheDir, url, artifacts, digest) };
}
