import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { positiveInt } from '../model/cli/arguments';
import { ascending, median, percentile } from '../model/train/latency';
import { COMPILED_SERVICE, REPO_ROOT, startServer } from '../tools/shared/service-process';
import { autocannon, photoForm } from './autocannon';
import { childOutput } from './child-output';
import { loadAverage, ms } from './format';
import { markedSection, writeSection } from './report-sections';

/**
 * /healthz under overload (issue 12, item 9): the compiled service with one worker, 200 autocannon
 * connections POSTing a photo to /predict (far more than one worker serves, so most are shed), and a probe
 * process of its own opening a new connection for each GET /healthz, as the kubelet does, 20 times a second.
 * Writes its section of bench/REPORT.md between the probes markers.
 */

/** Probing starts a second into the load and ends a second before it: more than 2 s leaves it time to run. */
function loadSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 2)
    throw new InvalidArgumentError('--duration must be a number of seconds > 2.');
  return n;
}

const program = new Command()
  .option('--connections <n>', 'autocannon connections on /predict', positiveInt('--connections'), 200)
  .option('--duration <s>', 'seconds of load (after 3 s of warm-up)', loadSeconds, 20)
  .option('--photo <file>', 'the photo POSTed', path.join(REPO_ROOT, 'service/assets/test-photo.jpg'))
  .option('--report <file>', 'report to write the section into', path.join(REPO_ROOT, 'bench/REPORT.md'))
  .option('--no-write', 'print the section only')
  .addOption(
    new Option('--probe-port <which>', 'metrics (METRICS_PORT, what the pods probe) or public (PORT)')
      .choices(['metrics', 'public'])
      .default('metrics'),
  )
  .option(
    '--server <file>',
    'the compiled entry point to run (another checkout, to compare)',
    COMPILED_SERVICE,
  )
  .parse();
const opts = program.opts<{
  connections: number;
  duration: number;
  photo: string;
  report: string;
  write: boolean;
  server: string;
  probePort: 'metrics' | 'public';
}>();

/** The probe loop, run in its own process: a new connection per probe, a 1 s timeout as a kubelet might use. */
const PROBER = `
const http = require('node:http');
const [url, durationMs] = [process.argv[1], Number(process.argv[2])];
const out = [];
const end = Date.now() + durationMs;
function once() {
  if (Date.now() > end) { process.stdout.write(JSON.stringify(out)); return; }
  const t = performance.now();
  let done = false;
  const finish = (ms) => { if (done) return; done = true; out.push(ms); setTimeout(once, Math.max(0, 50 - ms)); };
  const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
    res.resume();
    res.on('end', () => finish(res.statusCode === 200 ? performance.now() - t : 1000));
  });
  req.on('timeout', () => { req.destroy(); finish(1000); });
  req.on('error', () => finish(1000));
}
once();
`;

/** The probe process's latencies: it exits 0 once it has written them. */
async function probeLatencies(url: string, durationMs: number): Promise<number[]> {
  const { code, out, err } = await childOutput(process.execPath, ['-e', PROBER, url, String(durationMs)]);
  if (code !== 0) throw new Error(`the probe process exited ${code}: ${err}`);
  return JSON.parse(out) as number[];
}

async function main() {
  for (const [option, file] of [
    ['--photo', opts.photo],
    ['--server', opts.server],
  ] as const) {
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile())
      throw new Error(
        `${option} ${file} is not a file${option === '--server' ? ' (npm run build first)' : ''}`,
      );
  }
  const server = await startServer({
    command: [process.execPath, opts.server],
    env: { WORKERS: '1', TFJS_BACKEND: 'wasm', LOG_LEVEL: 'info' },
    timeoutMs: 120_000,
  });
  const load = (seconds: number) =>
    autocannon([
      '-c',
      String(opts.connections),
      '-d',
      String(seconds),
      ...photoForm(opts.photo),
      `${server.url}/predict`,
    ]);
  try {
    await load(3);
    const [predictions, probes] = await Promise.all([
      load(opts.duration),
      // Probing starts a second into the load and ends a second before it, so every probe meets the overload.
      new Promise((r) => setTimeout(r, 1000)).then(() =>
        probeLatencies(
          `${opts.probePort === 'public' ? server.url : server.metricsUrl}/healthz`,
          (opts.duration - 2) * 1000,
        ),
      ),
    ]);
    const statuses = Object.entries(predictions.statusCodeStats ?? {})
      .map(([status, v]) => `${status}: ${v.count}`)
      .join(', ');
    const failed = probes.filter((p) => p >= 1000).length;
    const section = markedSection('probes', [
      '## /healthz under overload (one worker)',
      `Written by \`node --import tsx bench/probes.ts --connections ${opts.connections} --duration ${opts.duration} --probe-port ${opts.probePort}\``,
      `(bench/probes.ts) on ${new Date().toISOString()}, on ${os.cpus().length} CPUs, load average ${loadAverage()} at the end.`,
      `\`node dist/service/src/main.js\` (WORKERS=1, wasm); autocannon in its own process with ${opts.connections} connections`,
      `POSTing ${path.basename(opts.photo)} as a form (${Math.round(fs.statSync(opts.photo).size / 1024)} kB) to /predict for ${opts.duration} s after 3 s of warm-up; a probe process`,
      `opens a new connection for every GET /healthz on the ${opts.probePort === 'public' ? 'public port (PORT)' : 'internal port (METRICS_PORT, what the pods probe)'}, 20 a second, with a 1 s timeout (counted as 1000 ms).`,
      '',
      '| /predict requests | statuses | errors | probes | /healthz p50 | p99 | max | probes over 1 s |',
      '|---|---|---|---|---|---|---|---|',
      `| ${predictions.requests.total} | ${statuses} | ${predictions.errors} | ${probes.length} | ${ms(median(probes))} | ${ms(percentile(ascending(probes), 99))} | ${ms(Math.max(...probes))} | ${failed} |`,
    ]);
    console.log(section);
    if (opts.write) writeSection(opts.report, 'probes', section);
  } finally {
    await server.stop();
  }
}

main().catch((err: Error) => {
  console.error(`bench/probes: ${err.message}`);
  process.exit(1);
});
