import { performance } from 'node:perf_hooks';
import type { Classifier } from '../src';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Model time per photo as the service runs it (one photo per call, test-time flip included when the model has
 * it): the median of `runs` calls after a few warm-up calls, which on wasm reach its optimised tier. Decoding is
 * not included.
 */
export async function medianMsPerPhoto(classifier: Classifier, runs: number): Promise<number> {
  const { size } = classifier.view;
  const photo = new Uint8Array(size * size * 3);
  for (let i = 0; i < photo.length; i++) photo[i] = (i * 31) % 256;
  for (let i = 0; i < 10; i++) await classifier.classify([photo]);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await classifier.classify([photo]);
    times.push(performance.now() - started);
  }
  return median(times);
}
