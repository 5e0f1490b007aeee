import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * Starting the service's own threads (the inference workers, the internal listener) from their source files.
 * Compiled JavaScript in the image runs `<name>.js` under dist/service/src; under tsx (dev, tests) service/src
 * holds `<name>.ts`.
 */

/** The script of the service's module `name` (its path under service/src, no extension), as this process runs it. */
export function serviceScript(name: string): string {
  return path.join(__dirname, '..', `${name}${path.extname(__filename)}`);
}

/**
 * A TypeScript entry (dev and tests, under tsx) is started through a two-line CommonJS bootstrap that registers
 * tsx's require hook first: a worker thread does not inherit the parent's --import loaders for its entry file.
 */
export function startThread(file: string, workerData: unknown): Worker {
  if (!file.endsWith('.ts')) return new Worker(file, { workerData });
  const bootstrap = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(file)});`;
  return new Worker(bootstrap, { eval: true, workerData });
}
