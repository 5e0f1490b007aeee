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

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}
