import { execFile } from 'node:child_process';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * Starting the service's own threads (the inference workers, the internal listener) and helper processes from
 * their source files. Compiled JavaScript in the image runs `<name>.js` under dist/service/src; under tsx (dev,
 * tests) service/src holds `<name>.ts`.
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

/**
 * Runs one of the service's scripts as a process of its own, to its end: for work whose memory must not stay with
 * the service (a process hands all of it back to the system when it exits; a thread's wasm memory may linger).
 * Rejects with the script's last lines of stderr when it exits with an error.
 */
export function runScript(file: string, args: string[], timeoutMs: number): Promise<void> {
  const loader = file.endsWith('.ts') ? ['--require', require.resolve('tsx/cjs')] : [];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...loader, file, ...args],
      { timeout: timeoutMs, maxBuffer: 1024 * 1024 },
      (err, _stdout, stderr) => {
        if (!err) resolve();
        else {
          const why = stderr.trim().split('\n').slice(-3).join(' ') || err.message;
          reject(new Error(`${path.basename(file)} failed: ${why}`));
        }
      },
    );
  });
}
