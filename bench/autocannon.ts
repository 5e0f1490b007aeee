import { childOutput } from './child-output';

const AUTOCANNON = require.resolve('autocannon/autocannon.js');

/** The fields of autocannon's --json summary that the benchmarks read. */
export interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodeStats?: Record<string, { count: number }>;
}

/** autocannon in its own process, so the load generator does not share an event loop with what it measures. */
export async function autocannon(args: string[]): Promise<AutocannonResult> {
  const { code, out, err } = await childOutput(process.execPath, [AUTOCANNON, '--json', ...args]);
  try {
    return JSON.parse(out) as AutocannonResult;
  } catch {
    throw new Error(`autocannon exited ${code}: ${err.trim()}`);
  }
}

/** Multipart, as the upload page sends it (autocannon's -i would read the JPEG as UTF-8 text and mangle it). */
export function photoForm(photoPath: string): string[] {
  return ['-m', 'POST', '-F', JSON.stringify({ file: { type: 'file', path: photoPath } })];
}
