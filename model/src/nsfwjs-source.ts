import path from 'node:path';
import type { LayersArtifacts } from './artifacts';
import type * as tf from '@tensorflow/tfjs';

interface NsfwjsModelJson {
  modelTopology: Record<string, unknown>;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** nsfwjs's package "exports" hide dist/models, so the files are found from its resolved entry point. */
function nsfwjsModelsDir(): string {
  let entry: string;
  try {
    entry = require.resolve('nsfwjs');
  } catch {
    throw new Error(
      'The npm-shipped backbone needs the nsfwjs package, which is not installed (npm install -w service).',
    );
  }
  // entry is <pkg>/dist/cjs/index.js
  return path.join(path.dirname(entry), '..', 'models');
}

function loadBundle(file: string): unknown {
  // Each .min.js is a UMD bundle whose module.exports is the JSON object or the base64 weight string.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as unknown;
}

/**
 * Reads a layers model shipped inside nsfwjs (weights base64 inside its .min.js bundles), offline.
 * `source` is 'nsfwjs/<model>', e.g. 'nsfwjs/mobilenet_v2'.
 */
export function readNsfwjsArtifacts(source: string): LayersArtifacts {
  const match = /^nsfwjs\/([a-z0-9_]+)$/.exec(source);
  if (!match)
    throw new Error(`'${source}' is not an nsfwjs model source; expected e.g. 'nsfwjs/mobilenet_v2'.`);
  const dir = path.join(nsfwjsModelsDir(), match[1] as string);
  let json: NsfwjsModelJson;
  try {
    json = loadBundle(path.join(dir, 'model.min.js')) as NsfwjsModelJson;
  } catch (err) {
    throw new Error(`nsfwjs ships no model '${match[1]}' (${(err as Error).message}).`);
  }
  if (!json.modelTopology || !('model_config' in json.modelTopology)) {
    throw new Error(
      `nsfwjs model '${match[1]}' is not a layers model; only layers models can be cut at named layers.`,
    );
  }
  const parts = json.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const b64 = loadBundle(path.join(dir, `${p}.min.js`));
      if (typeof b64 !== 'string') throw new Error(`nsfwjs weight bundle ${p} is not a base64 string.`);
      return Buffer.from(b64, 'base64');
    }),
  );
  const all = Buffer.concat(parts);
  return {
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer,
  };
}
