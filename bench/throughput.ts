import { median } from '../model/train/latency';
import { IMAGE_MALLOC_ENV, startServer, type RunningServer } from '../tools/shared/service-process';
import { autocannon } from './autocannon';
import { processCpuSeconds } from './proc-usage';

/**
 * Photos per second under load, and one user's latency, for several settings of the service side by side (issue
 * 24): every setting's process is started first, then the load goes to each in turn, round after round in a new
 * random order, so a busy machine slows them alike. The load is the load test's: `GET /test` (the bundled photo,
 * decoded and classified on every request) from `--connections` clients without pause, like `siege -c 10`; one
 * user is one client sending the next request when the last is answered.
 */

export interface ThroughputSetting {
  name: string;
  /** the service's command; the compiled one unless a baseline checkout is named */
  command: string[];
  env: Record<string, string>;
}

export interface ThroughputRow {
  name: string;
  env: Record<string, string>;
  /** requests answered 200 per second, median over rounds */
  throughput: number;
  roundThroughputs: number[];
  p50: number;
  p99: number;
  /** one client at a time: median latency, median over rounds */
  singleP50: number;
  /** one client at a time: each round's median latency, in round order (for paired comparisons) */
  roundSingles: number[];
  statuses: Record<string, number>;
  /** CPU the service process spent per answered request under load, all threads */
  cpuMsPerRequest: number;
}

export interface ThroughputOptions {
  connections: number;
  durationS: number;
  rounds: number;
}

interface Running {
  setting: ThroughputSetting;
  server: RunningServer;
  rounds: { throughput: number; p50: number; p99: number; single: number; cpuMs: number }[];
  statuses: Record<string, number>;
}

export async function benchThroughput(
  settings: ThroughputSetting[],
  opts: ThroughputOptions,
): Promise<ThroughputRow[]> {
  const running: Running[] = [];
  try {
    for (const setting of settings) {
      const server = await startServer({
        command: setting.command,
        env: { TFJS_BACKEND: 'wasm', LABELS: 'off', LOG_LEVEL: 'warn', ...IMAGE_MALLOC_ENV, ...setting.env },
        timeoutMs: 180_000,
      });
      running.push({ setting, server, rounds: [], statuses: {} });
      // Past wasm's baseline tier and the first batches, as a service that has run a while.
      await autocannon(['-c', String(opts.connections), '-d', '3', `${server.url}/test`]);
    }
    for (let round = 0; round < opts.rounds; round++) {
      const order = [...running].sort(() => Math.random() - 0.5);
      for (const r of order) {
        const url = `${r.server.url}/test`;
        const pid = r.server.proc.pid!;
        const cpu = processCpuSeconds(pid);
        const load = await autocannon(['-c', String(opts.connections), '-d', String(opts.durationS), url]);
        const cpuSeconds = processCpuSeconds(pid) - cpu;
        const single = await autocannon(['-c', '1', '-d', String(Math.max(2, opts.durationS / 2)), url]);
        const ok = load.statusCodeStats?.['200']?.count ?? load.requests.total - load.non2xx;
        for (const [code, { count }] of Object.entries(load.statusCodeStats ?? {}))
          r.statuses[code] = (r.statuses[code] ?? 0) + count;
        r.rounds.push({
          throughput: ok / opts.durationS,
          p50: load.latency.p50,
          p99: load.latency.p99,
          single: single.latency.p50,
          cpuMs: ok > 0 ? (cpuSeconds * 1000) / ok : NaN,
        });
        console.log(
          `throughput ${r.setting.name}, round ${round + 1}: ${(ok / opts.durationS).toFixed(1)} req/s, ` +
            `p50 ${load.latency.p50} ms; one user p50 ${single.latency.p50} ms`,
        );
      }
    }
  } finally {
    await Promise.all(running.map((r) => r.server.stop()));
  }
  return running.map((r) => ({
    name: r.setting.name,
    env: r.setting.env,
    throughput: median(r.rounds.map((x) => x.throughput)),
    roundThroughputs: r.rounds.map((x) => x.throughput),
    p50: median(r.rounds.map((x) => x.p50)),
    p99: median(r.rounds.map((x) => x.p99)),
    singleP50: median(r.rounds.map((x) => x.single)),
    roundSingles: r.rounds.map((x) => x.single),
    statuses: r.statuses,
    cpuMsPerRequest: median(r.rounds.map((x) => x.cpuMs)),
  }));
}
