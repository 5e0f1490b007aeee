import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../src';
import { timeExtraction } from '../src/bench-backbones';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Model time per photo as the service runs it (one photo per call): the backbone's median extraction time, twice
 * with test-time flip, plus the head's median. Decoding is not included.
 */
export async function modelMsPerPhoto(
  backbone: Backbone,
  head: tf.LayersModel,
  testTimeFlip: boolean,
  runs: number,
): Promise<number> {
  const backboneMs = (await timeExtraction(backbone, 1, runs)).medianMsPerPhoto;
  const x = tf.zeros([1, backbone.featureDim]);
  const headMs: number[] = [];
  for (let r = 0; r <= runs; r++) {
    const start = performance.now();
    const p = head.predict(x) as tf.Tensor;
    await p.data();
    p.dispose();
    if (r > 0) headMs.push(performance.now() - start);
  }
  x.dispose();
  return backboneMs * (testTimeFlip ? 2 : 1) + median(headMs) * (testTimeFlip ? 2 : 1);
}
