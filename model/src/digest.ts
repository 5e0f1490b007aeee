import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import type { LayersArtifacts } from './artifacts';
import { backboneLayerNames } from './topology';

/**
 * sha256 over the backbone's weight values in canonical order (by weight name): name, shape, dtype and the
 * little-endian float32 bytes of each. File layout, sharding, quantisation encoding and JSON formatting do not
 * enter, so two exports of the same weights match and any changed weight does not. It covers every weight of
 * the functional backbone (not an exporter's wrapper head), whichever layers a head reads, so one digest names
 * one backbone.
 */
export function backboneDigest(artifacts: LayersArtifacts): string {
  const decoded = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    return digestOfDecoded(artifacts, decoded);
  } finally {
    tf.dispose(decoded);
  }
}

/** backboneDigest over weights the caller has already decoded (they stay the caller's). */
export function digestOfDecoded(artifacts: LayersArtifacts, decoded: tf.NamedTensorMap): string {
  const layers = backboneLayerNames(artifacts.modelTopology);
  const names = Object.keys(decoded)
    .filter((name) => layers.has(name.split('/')[0] as string))
    .sort();
  if (names.length === 0) throw new Error('The backbone model has no weights for its layers.');
  const hash = createHash('sha256');
  for (const name of names) {
    const t = decoded[name] as tf.Tensor;
    const values = t.dataSync();
    const f32 = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    hash.update(`${name}\0${JSON.stringify(t.shape)}\0${t.dtype}\0`);
    hash.update(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength));
  }
  return hash.digest('hex');
}
