import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

/**
 * Starts the classifier as its own process (as in production: its own event loop, worker threads and signals)
 * on a free port, and stops it. The benchmarks and the service, container and tools tests all start it this way;
 * it lives with the tools because product code may import tools, never tests.
 */

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Offline, on wasm, one worker, quiet: what every test wants unless it says otherwise. */
export const TEST_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  PORT: '0', // 0: a free port chosen by startServer
  TFJS_BACKEND: 'wasm',
  WORKERS: '1',
  LOG_LEVEL: 'info',
  // The labels store is off unless a test is about it: each process on PGlite needs a folder of its own.
  LABELS: 'off',
};

/**
 * glibc's malloc as the image runs it (service/Dockerfile's ENV, and `npm start`): bench/memory.ts chose it over
 * glibc's defaults and jemalloc; the memory tests run with it. The image test checks that both say the same.
 */
export const IMAGE_MALLOC_ENV: Record<string, string> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
};

export interface StartOptions {
  /** added to TEST_ENV (and the parent's PATH/HOME); a value of '' removes a TEST_ENV entry */
  env?: Record<string, string>;
  /** the command; default: the TypeScript entry point under tsx */
  command?: string[];
  cwd?: string;
  /** wait until /readyz answers 200 (default true) */
  waitReady?: boolean;
  timeoutMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  /** where /metrics is served: its own port (METRICS_PORT), never the public one */
  metricsUrl: string;
  proc: ChildProcess;
  /** every log line the process wrote, parsed when it is JSON */
  logs: Record<string, unknown>[];
  stderr: string[];
  /** resolves with the exit code once the process has ended */
  exited: Promise<number | null>;
  /** SIGTERM (or the given signal), then the exit code; SIGKILL if it has not exited after killAfterMs */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
  waitReady(timeoutMs?: number): Promise<void>;
}

/** A port nothing listens on right now (the kernel's pick, released for the server to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export const SERVICE_COMMAND = [
  process.execPath,
  '--import',
  'tsx',
  path.join(REPO_ROOT, 'service/src/main.ts'),
];

/** The entry point `npm run build` compiles, which the image runs (`node dist/service/src/main.js`): what the benchmarks measure. */
export const COMPILED_SERVICE = path.join(REPO_ROOT, 'dist/service/src/main.js');

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  // MODEL_DIR from the caller's environment lets a developer run the tests against another model.
  const inherited = process.env.MODEL_DIR ? { MODEL_DIR: process.env.MODEL_DIR } : {};
  for (const [k, v] of Object.entries({ ...TEST_ENV, ...inherited, ...options.env }))
    if (v !== '') env[k] = v;
  const port = env.PORT && env.PORT !== '0' ? Number(env.PORT) : await freePort();
  env.PORT = String(port);
  const metricsPort =
    env.METRICS_PORT && env.METRICS_PORT !== '0' ? Number(env.METRICS_PORT) : await freePort();
  env.METRICS_PORT = String(metricsPort);
  const [cmd, ...args] = options.command ?? SERVICE_COMMAND;
  const proc = spawn(cmd!, args, { cwd: options.cwd ?? REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  proc.stdout!.setEncoding('utf8');
  let buffered = '';
  proc.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));

  // Listening is seen from outside (liveness answers), so it works at any LOG_LEVEL.
  const listenTimeoutMs = options.timeoutMs ?? 60_000;
  const until = Date.now() + listenTimeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      await exited;
      throw new Error(`server exited (code ${proc.exitCode}) before listening: ${stderr.join('')}`);
    }
    const alive = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (alive) break;
    if (Date.now() > until) {
      proc.kill('SIGKILL');
      throw new Error(
        `server did not listen on port ${port} within ${listenTimeoutMs} ms: ${stderr.join('')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const url = `http://127.0.0.1:${port}`;
  const server: RunningServer = {
    url,
    port,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    proc,
    logs,
    stderr,
    exited,
    async stop(signal = 'SIGTERM', killAfterMs = 30_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async waitReady(timeoutMs = options.timeoutMs ?? 120_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if (proc.exitCode !== null)
          throw new Error(`server exited (code ${proc.exitCode}): ${stderr.join('')}`);
        const ok = await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`server not ready within ${timeoutMs} ms`);
    },
  };
  if (options.waitReady ?? true) {
    try {
      await server.waitReady();
    } catch (err) {
      await server.stop('SIGKILL');
      throw err;
    }
  }
  return server;
}
