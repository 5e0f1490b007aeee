import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { median } from '../model/train/latency';
import { COMPILED_SERVICE, startServer, type RunningServer } from '../tools/shared/service-process';
import { autocannon, photoForm } from './autocannon';
import { machineJiffies, processCpuSeconds, rssBytes } from './proc-usage';

/**
 * The service end to end over HTTP on 127.0.0.1, as compiled for the image (node dist/service/src/main.js).
 * autocannon runs as its own process so the load generator does not share an event loop with the probe
 * measurements; a second, gentle autocannon measures /healthz while the first saturates /predict.
 */

/** Extra environment for the service under test (the shipped model unless MODEL_DIR is set). */
export type ServiceEnv = Record<string, string>;

export interface LoadRow {
  workers: number;
  connections: number;
  durationS: number;
  tfjsBackend: string;
  model: string;
  requests: number;
  throughput: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** status code → count, so a run full of 503s or 4xx is visible as such */
  statuses: Record<string, number>;
  errors: number;
  healthP99: number;
  healthRequests: number;
  rssMedianBytes: number;
  rssMaxBytes: number;
  /** CPU the server process used during the measured run, in cores (1.0 = one core busy throughout). */
  serverCores: number;
  /** Share of the whole machine's CPU time that was busy (the load generator and other work included). */
  machineBusy: number;
}

export interface ColdStartRow {
  workers: number;
  runs: number[];
  medianMs: number;
  tfjsBackend: string;
  model: string;
}

function start(workers: number, env: ServiceEnv): Promise<RunningServer> {
  return startServer({
    command: [process.execPath, COMPILED_SERVICE],
    // TFJS_BACKEND unset (auto): a machine with tfjs-node measures it, this one falls back to wasm.
    env: { ...env, WORKERS: String(workers), TFJS_BACKEND: '' },
    waitReady: false,
    timeoutMs: 120_000,
  });
}

function readyLine(server: RunningServer): { tfjsBackend: string; model: string } {
  const line = server.logs.find((l) => typeof l.tfjsBackend === 'string');
  return {
    tfjsBackend: String(line?.tfjsBackend ?? '?'),
    model: `${String(line?.model ?? '?')}, ${String(line?.architecture ?? '?')} at ${String(line?.inputSize ?? '?')} px`,
  };
}

export async function benchLoad(
  workers: number,
  env: ServiceEnv,
  photoPath: string,
  run = { connections: 8, durationS: 20, warmupS: 5 },
): Promise<LoadRow> {
  const server = await start(workers, env);
  try {
    await server.waitReady(120_000);
    const predict = ['-c', String(run.connections), ...photoForm(photoPath), `${server.url}/predict`];
    // One request by hand first: a benchmark of error answers would be fast and meaningless.
    const probe = new FormData();
    probe.append(
      'file',
      new Blob([new Uint8Array(fs.readFileSync(photoPath))], { type: 'image/jpeg' }),
      'photo.jpg',
    );
    const first = await fetch(`${server.url}/predict`, { method: 'POST', body: probe });
    if (first.status !== 200)
      throw new Error(`POST /predict answered ${first.status}: ${await first.text()}`);
    await autocannon(['-d', String(run.warmupS), ...predict]);

    const rss: number[] = [];
    const pid = server.proc.pid!;
    const cpu0 = processCpuSeconds(pid);
    const machine0 = machineJiffies();
    const t0 = performance.now();
    const sampler = setInterval(() => rss.push(rssBytes(pid)), 500);
    const [load, health] = await Promise.all([
      autocannon(['-d', String(run.durationS), ...predict]),
      // 20 probes a second, as a kubelet and a load balancer together would hardly reach.
      autocannon(['-c', '1', '-R', '20', '-d', String(run.durationS), `${server.url}/healthz`]),
    ]);
    clearInterval(sampler);
    const elapsedS = (performance.now() - t0) / 1000;
    const serverCores = (processCpuSeconds(pid) - cpu0) / elapsedS;
    const machine1 = machineJiffies();
    const machineBusy = (machine1.busy - machine0.busy) / (machine1.total - machine0.total);
    const row: LoadRow = {
      workers,
      connections: run.connections,
      durationS: run.durationS,
      ...readyLine(server),
      requests: load.requests.total,
      throughput: load.requests.average,
      p50: load.latency.p50,
      p99: load.latency.p99,
      non2xx: load.non2xx,
      statuses: Object.fromEntries(
        Object.entries(load.statusCodeStats ?? {}).map(([code, v]) => [code, v.count]),
      ),
      errors: load.errors + load.timeouts,
      healthP99: health.latency.p99,
      healthRequests: health.requests.total,
      rssMedianBytes: median(rss),
      rssMaxBytes: Math.max(...rss),
      serverCores,
      machineBusy,
    };
    console.log(
      `load ${workers} worker(s): ${row.throughput.toFixed(1)} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, ` +
        `/healthz p99 ${row.healthP99} ms, RSS ${(row.rssMedianBytes / 2 ** 20).toFixed(0)} MB, ` +
        `server ${row.serverCores.toFixed(2)} cores, machine ${(row.machineBusy * 100).toFixed(0)} % busy`,
    );
    return row;
  } finally {
    await server.stop();
  }
}

/** Wall time from spawning the process to /readyz answering 200 (model loaded and warmed in every worker). */
export async function benchColdStart(workers: number, env: ServiceEnv, runs = 3): Promise<ColdStartRow> {
  const times: number[] = [];
  let seen = { tfjsBackend: '?', model: '?' };
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const server = await start(workers, env);
    try {
      for (;;) {
        const ok = await fetch(`${server.url}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) break;
        if (server.proc.exitCode !== null) throw new Error(`the service exited: ${server.stderr.join('')}`);
        if (performance.now() - t0 > 120_000) throw new Error('the service was not ready within 120 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      times.push(performance.now() - t0);
      seen = readyLine(server);
    } finally {
      await server.stop();
    }
  }
  const row = { workers, runs: times, medianMs: median(times), ...seen };
  console.log(
    `cold start ${workers} worker(s): ${row.medianMs.toFixed(0)} ms (runs ${times.map(Math.round).join(', ')})`,
  );
  return row;
}
