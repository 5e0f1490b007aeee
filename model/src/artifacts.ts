import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';

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
  const j = parsed as Partial<ModelJsonFile> | null;
  if (!j || typeof j.modelTopology !== 'object' || !Array.isArray(j.weightsManifest)) {
    throw new Error(
      `${where} is not a TF.js layers model.json (it needs modelTopology and weightsManifest).`,
    );
  }
  return j as ModelJsonFile;
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out.buffer;
}

function describeFetchError(url: string, err: unknown, timeoutMs: number): Error {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new Error(`Fetching ${url} timed out after ${timeoutMs} ms.`);
  }
  const cause = e.cause?.code ?? e.cause?.message ?? e.message;
  return new Error(`Fetching ${url} failed: ${cause}.`);
}

export interface ReadUrlOptions {
  /** Upper bound for the whole download (model.json and every weight file). */
  timeoutMs?: number;
}

export const DEFAULT_FETCH_TIMEOUT_MS = 20_000;

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

  const modelJson = parseModelJson(new TextDecoder().decode(await readBytes(parsedUrl)), url);
  const parts: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const p of group.paths) parts.push(await readBytes(new URL(p, parsedUrl)));
  }
  return {
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: concat(parts),
  };
}

/**
 * Writes a model as model.json + one weights.bin, atomically: a reader never sees half a model, and when several
 * writers race the first complete one stays.
 */
export async function writeArtifactsDir(
  dir: string,
  a: LayersArtifacts,
  extraFiles: Record<string, string> = {},
) {
  const target = path.resolve(dir);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${randomUUID()}`;
  await fs.mkdir(tmp);
  try {
    const modelJson: ModelJsonFile = {
      modelTopology: a.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
    };
    await fs.writeFile(path.join(tmp, 'model.json'), JSON.stringify(modelJson));
    await fs.writeFile(path.join(tmp, 'weights.bin'), new Uint8Array(a.weightData));
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
  const modelJson = parseModelJson(text, jsonPath);
  const parts: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const p of group.paths) {
      const file = path.join(dir, p);
      try {
        parts.push(new Uint8Array(await fs.readFile(file)));
      } catch (err) {
        throw new Error(`Cannot read weights ${file}: ${(err as Error).message}`);
      }
    }
  }
  return {
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: concat(parts),
  };
}

/** Loads a layers model from memory; `strict: false` lets a wrapper's extra weights be ignored. */
export async function layersModelFromArtifacts(a: LayersArtifacts, strict = true): Promise<tf.LayersModel> {
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: a.modelTopology,
      weightSpecs: a.weightSpecs,
      weightData: a.weightData,
    }),
    { strict },
  );
}

function joinWeightData(data: tf.io.WeightData): ArrayBuffer {
  return Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
}

/** Saves a layers model as model.json + weights.bin in `dir`. */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  let captured: LayersArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (!artifacts.weightSpecs || !artifacts.weightData || !artifacts.modelTopology) {
        throw new Error('TF.js produced a model without topology or weights; cannot save it.');
      }
      captured = {
        modelTopology: artifacts.modelTopology as Record<string, unknown>,
        weightSpecs: artifacts.weightSpecs,
        weightData: joinWeightData(artifacts.weightData),
      };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (!captured) throw new Error('Saving the model produced nothing.');
  await writeArtifactsDir(dir, captured);
}

/** Loads a layers model saved by saveLayersModel (or any model.json + weights dir). */
export async function loadLayersModelDir(dir: string): Promise<tf.LayersModel> {
  return layersModelFromArtifacts(await readArtifactsDir(dir));
}
