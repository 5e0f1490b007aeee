import { performance } from 'node:perf_hooks';
import { ascending, percentile } from '../tools/shared/percentile';

/** Medians, not means: on a shared, noisy machine one stalled run should not move the number. */
export function median(values: readonly number[]): number {
  return percentile(ascending(values), 50);
}

/** Runs `fn` `runs` times (after `warmup` unmeasured runs) and returns each run's milliseconds. */
export async function timeRuns(runs: number, warmup: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

export const ms = (x: number, digits = 1) => (Number.isFinite(x) ? `${x.toFixed(digits)} ms` : 'n/a');
export const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');
export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

/** ✅ / ❌ against a goal, so the report says plainly which goals this machine met. */
export const verdict = (met: boolean) => (met ? '✅ met' : '❌ missed');
