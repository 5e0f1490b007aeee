import { performance } from 'node:perf_hooks';
import type { Classifier } from '../src';

/**
 * How long things take, and the statistics every measurement here reports them with: the train CLI's
 * msPerPhoto, the benchmarks (bench/) and the load test and its report (tools/) all read them from this one
 * module. It lives in model/ because the train CLI ships in the training image, which holds model/ only;
 * bench/ and tools/ may import model/, not the other way round.
 */

/**
 * Nearest-rank percentile (the smallest value with at least p% of the values at or below it): no interpolation,
 * so every reported latency is one a real request had, and a hand count on a fixture gives the same answer.
 * `sorted` must be ascending. Returns NaN for no values.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

export function ascending(values: Iterable<number>): number[] {
  return Array.from(values).sort((a, b) => a - b);
}

/** Medians, not means, for timings: on a shared, noisy machine one stalled run should not move the number. */
export function median(values: readonly number[]): number {
  return percentile(ascending(values), 50);
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Runs `fn` `runs` times (after `warmup` unmeasured runs) and returns each run's milliseconds. */
export async function timeRuns(runs: number, warmup: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  return times;
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
  return median(await timeRuns(runs, 10, () => classifier.classify([photo])));
}
