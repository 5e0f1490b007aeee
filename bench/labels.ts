import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { positiveInt } from '../model/cli/arguments';
import { ascending, median, percentile } from '../model/train/latency';
import { postgresInstalled, startPostgres, type PostgresServer } from '../tools/shared/postgres-server';
import {
  COMPILED_SERVICE,
  REPO_ROOT,
  SERVICE_COMMAND,
  startServer,
  type RunningServer,
} from '../tools/shared/service-process';
import { loadAverage, mib, ms } from './format';
import { rssBytes } from './proc-usage';
import { markedSection, writeSection } from './report-sections';

/**
 * Does labelling slow a prediction? (issue 20.) One service per setting, side by side, each with one worker:
 * labels off; on, with the embedded PGlite; on, with a PostgreSQL server; and on, with that server stopped. The
 * requests go round-robin over them (one to each in turn, in a new random order each round, `--clients` at once
 * per service), so machine noise falls on all alike. Reports the client-side latency of POST /predict (JSON) per setting and the services'
 * resident memory at the end. Writes its section of bench/REPORT.md between the labels markers.
 */

const program = new Command()
  .option('--requests <n>', 'predictions per setting', positiveInt('--requests'), 200)
  .option('--clients <n>', 'requests in flight per setting', positiveInt('--clients'), 1)
  .option('--photo <file>', 'the photo POSTed', path.join(REPO_ROOT, 'service/assets/test-photo.jpg'))
  .option('--report <file>', 'report to write the section into', path.join(REPO_ROOT, 'bench/REPORT.md'))
  .option('--no-write', 'print the section only')
  .parse();
const opts = program.opts<{
  requests: number;
  clients: number;
  photo: string;
  report: string;
  write: boolean;
}>();

interface Setting {
  name: string;
  server: RunningServer;
  latencies: number[];
  failures: number;
}

async function predict(url: string, photo: Uint8Array<ArrayBuffer>): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'Content-Type': 'image/jpeg' },
    body: photo,
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t;
}

/**
 * Starts a service on a fresh embedded store (PGlite's initdb is its slowest start) and probes the public
 * /healthz every 50 ms from the moment it listens until the store is open: the longest wait says whether the
 * store's start stalls the event loop.
 */
async function probedStart(
  command: string[],
  dataDir: string,
): Promise<{ server: RunningServer; probes: number; longestMs: number; openMs: number }> {
  const server = await startServer({
    command,
    env: { LABELS: 'on', LABEL_DATA_DIR: dataDir },
    waitReady: false,
  });
  const started = performance.now();
  let longestMs = 0;
  let probes = 0;
  for (;;) {
    const t = performance.now();
    await fetch(`${server.url}/healthz`).then((r) => r.arrayBuffer());
    longestMs = Math.max(longestMs, performance.now() - t);
    probes++;
    const open = await fetch(`${server.url}/accuracy`).then((r) => r.status === 200);
    if (open) break;
    if (performance.now() - started > 120_000)
      throw new Error('the embedded store did not open in 2 minutes');
    await new Promise((r) => setTimeout(r, 50));
  }
  const openMs = performance.now() - started;
  await server.waitReady();
  return { server, probes, longestMs, openMs };
}

async function main() {
  const photo = Uint8Array.from(fs.readFileSync(opts.photo));
  const command = fs.existsSync(COMPILED_SERVICE) ? [process.execPath, COMPILED_SERVICE] : SERVICE_COMMAND;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-bench-labels-'));
  let db: PostgresServer | undefined;
  let dbDown: PostgresServer | undefined;
  const settings: Setting[] = [];
  try {
    const start = async (name: string, env: Record<string, string>) => {
      settings.push({ name, server: await startServer({ command, env }), latencies: [], failures: 0 });
    };
    await start('labels off', { LABELS: 'off' });
    const embeddedStart = await probedStart(command, path.join(tmp, 'pglite'));
    settings.push({
      name: 'labels on, embedded PGlite',
      server: embeddedStart.server,
      latencies: [],
      failures: 0,
    });
    if (postgresInstalled()) {
      db = await startPostgres();
      dbDown = await startPostgres();
      await start('labels on, PostgreSQL', { LABELS: 'on', DATABASE_URL: db.url });
      await start('labels on, PostgreSQL stopped', { LABELS: 'on', DATABASE_URL: dbDown.url });
      dbDown.stop();
    }
    // warm-up: the first requests of each service pay for lazy initialisation
    for (const s of settings) for (let i = 0; i < 10; i++) await predict(s.server.url, photo);
    for (let done = 0; done < opts.requests; done += opts.clients) {
      // A new order every round: the work a service does after answering (scaling, writing) overlaps whichever
      // service is measured next, so no setting may always come after the same one.
      const order = [...settings].sort(() => Math.random() - 0.5);
      for (const s of order) {
        const batch = Array.from({ length: Math.min(opts.clients, opts.requests - done) }, () =>
          predict(s.server.url, photo).then(
            (t) => s.latencies.push(t),
            () => s.failures++,
          ),
        );
        await Promise.all(batch);
      }
    }
    const rows = settings.map((s) => {
      const sorted = ascending(s.latencies);
      return `| ${s.name} | ${s.latencies.length} | ${s.failures} | ${ms(median(sorted))} | ${ms(percentile(sorted, 90))} | ${ms(percentile(sorted, 99))} | ${mib(rssBytes(s.server.proc.pid!))} |`;
    });
    const section = markedSection('labels', [
      '## Labelling on and off (one worker each)',
      `Written by \`node --import tsx bench/labels.ts --requests ${opts.requests} --clients ${opts.clients}\``,
      `(bench/labels.ts) on ${new Date().toISOString()}, on ${os.cpus().length} CPUs, load average ${loadAverage()} at the end.`,
      `\`${path.relative(REPO_ROOT, command.at(-1)!)}\` (WORKERS=1, wasm), one process per setting, side by side; POST /predict of`,
      `${path.basename(opts.photo)} (${Math.round(fs.statSync(opts.photo).size / 1024)} kB) as JSON, ${opts.clients} at a time per setting, round-robin over the settings in a new random order each round, after 10 warm-up requests each.`,
      'With labels on, each prediction is queued for the store (its photo scaled to 512 px and written after the answer).',
      '',
      '| setting | predictions | failed | p50 | p90 | p99 | RSS at the end |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `Starting on a fresh embedded store (PGlite creating its database): open after ${ms(embeddedStart.openMs, 0)}; the longest of`,
      `${embeddedStart.probes} public \`/healthz\` probes meanwhile waited ${ms(embeddedStart.longestMs)} (PGlite runs in a thread of its own, service/src/labels/embedded-thread.ts).`,
    ]);
    console.log(section);
    if (opts.write) writeSection(opts.report, 'labels', section);
  } finally {
    await Promise.all(settings.map((s) => s.server.stop()));
    db?.destroy();
    dbDown?.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench/labels: ${err.message}`);
  process.exit(1);
});
