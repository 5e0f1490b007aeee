import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** A TF.js layers model held in memory: its topology, weight specs and all weight bytes in one buffer. */
export interface LayersArtifacts {
  modelTopology: Record<string, unknown>;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

interface ModelJsonFile {
  modelTopology: Record<string, unknown>;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

function parseModelJson(text: string, where: string): ModelJsonFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where} is not JSON (${(err as Error).message}); expected a TF.js layers model.json.`);
  }
  const candidate = parsed as Partial<ModelJsonFile> | null;
  if (
    !candidate ||
    typeof candidate.modelTopology !== 'object' ||
    !Array.isArray(candidate.weightsManifest)
  ) {
    throw new Error(
      `${where} is not a TF.js layers model.json (it needs modelTopology and weightsManifest).`,
    );
  }
  return candidate as ModelJsonFile;
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out.buffer;
}

/** A model.json's text and its weight files, each read by `readWeights` from its path relative to the model.json. */
async function assembleArtifacts(
  modelJsonText: string,
  where: string,
  readWeights: (relativePath: string) => Promise<Uint8Array>,
): Promise<LayersArtifacts> {
  const modelJson = parseModelJson(modelJsonText, where);
  const parts: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const relativePath of group.paths) parts.push(await readWeights(relativePath));
  }
  return {
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
    weightData: concat(parts),
  };
}

function describeFetchError(url: string, err: unknown, timeoutMs: number): Error {
  const failure = err as Error & { cause?: { code?: string; message?: string } };
  if (failure.name === 'TimeoutError' || failure.name === 'AbortError') {
    return new Error(`Fetching ${url} timed out after ${timeoutMs} ms.`);
  }
  const cause = failure.cause?.code ?? failure.cause?.message ?? failure.message;
  return new Error(`Fetching ${url} failed: ${cause}.`);
}

interface ReadUrlOptions {
  /** Upper bound for the whole download (model.json and every weight file). */
  timeoutMs?: number;
}

const DEFAULT_FETCH_TIMEOUT_MS = 20_000;

/** Reads a layers model from an http(s):// or file:// URL of its model.json (weight files resolved relative to it). */
export async function readArtifactsFromUrl(url: string, opts: ReadUrlOptions = {}): Promise<LayersArtifacts> {
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url);
  } catch {
    throw new Error(`'${url}' is not a URL; give an http(s):// or file:// URL of a TF.js model.json.`);
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  let readBytes: (u: URL) => Promise<Uint8Array>;
  if (parsedUrl.protocol === 'file:') {
    readBytes = async (u) => {
      try {
        return new Uint8Array(await fs.readFile(fileURLToPath(u)));
      } catch (err) {
        throw new Error(`Cannot read ${u.href}: ${(err as Error).message}`);
      }
    };
  } else if (parsedUrl.protocol === 'http:' || parsedUrl.protocol === 'https:') {
    // One deadline for the whole model, so an unreachable or stalling host cannot hold start-up for long.
    const signal = AbortSignal.timeout(timeoutMs);
    readBytes = async (u) => {
      let res: Response;
      try {
        res = await fetch(u, { signal, redirect: 'follow' });
      } catch (err) {
        throw describeFetchError(u.href, err, timeoutMs);
      }
      if (!res.ok) throw new Error(`Fetching ${u.href} failed: HTTP ${res.status} ${res.statusText}.`);
      try {
        return new Uint8Array(await res.arrayBuffer());
      } catch (err) {
        throw describeFetchError(u.href, err, timeoutMs);
      }
    };
  } else {
    throw new Error(`Unsupported URL scheme '${parsedUrl.protocol}' in '${url}'; use http(s):// or file://.`);
  }

  const modelJsonText = new TextDecoder().decode(await readBytes(parsedUrl));
  return assembleArtifacts(modelJsonText, url, (relativePath) => readBytes(new URL(relativePath, parsedUrl)));
}

/**
 * Writes a model as model.json + one weights.bin, atomically: a reader never sees half a model, and when several
 * writers race the first complete one stays.
 */
export async function writeArtifactsDir(
  dir: string,
  artifacts: LayersArtifacts,
  extraFiles: Record<string, string> = {},
) {
  const target = path.resolve(dir);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${randomUUID()}`;
  await fs.mkdir(tmp);
  try {
    const modelJson: ModelJsonFile = {
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    };
    await fs.writeFile(path.join(tmp, 'model.json'), JSON.stringify(modelJson));
    await fs.writeFile(path.join(tmp, 'weights.bin'), new Uint8Array(artifacts.weightData));
    for (const [name, text] of Object.entries(extraFiles)) await fs.writeFile(path.join(tmp, name), text);
    await fs.rm(target, { recursive: true, force: true });
    try {
      await fs.rename(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Reads a model dir (model.json + its weight files). Works without tfjs-node, which alone registers file:// IO. */
export async function readArtifactsDir(dir: string): Promise<LayersArtifacts> {
  const jsonPath = path.join(dir, 'model.json');
  let text: string;
  try {
    text = await fs.readFile(jsonPath, 'utf8');
  } catch (err) {
    throw new Error(`Cannot read model ${jsonPath}: ${(err as Error).message}`);
  }
  return assembleArtifacts(text, jsonPath, async (relativePath) => {
    const file = path.join(dir, relativePath);
    try {
      return new Uint8Array(await fs.readFile(file));
    } catch (err) {
      throw new Error(`Cannot read weights ${file}: ${(err as Error).message}`);
    }
  });
}

/**
 * Loads a layers model from memory. TF.js layers is loaded here, when a network needs it (one the fused engine
 * cannot run, or a comparison), not with the classifier: it is most of what TF.js adds to a worker's heap.
 */
export async function layersModelFromArtifacts(artifacts: LayersArtifacts): Promise<LayersModel> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tfl = require('@tensorflow/tfjs-layers') as typeof import('@tensorflow/tfjs-layers');
  return tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: artifacts.modelTopology,
      weightSpecs: artifacts.weightSpecs,
      weightData: artifacts.weightData,
    }),
  );
}
