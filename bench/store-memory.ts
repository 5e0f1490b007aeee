import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from '../model/train/latency';
import { usableCpus } from '../service/src/config';
import { postgresInstalled, startPostgres, type PostgresServer } from '../tools/shared/postgres-server';
import {
  COMPILED_SERVICE,
  IMAGE_MALLOC_ENV,
  startServer,
  type RunningServer,
} from '../tools/shared/service-process';
import { memoryBreakdown, peakRssBytes, rssBytes, type MemoryBreakdown } from './proc-usage';

/**
 * Resident memory over a stream of photos with labels off, on a PostgreSQL server and on the embedded PGlite
 * (issue 24), side by side: every setting's process runs at once, and the photos go to each in turn, 25 at a time
 * by `clients` clients, in a new random order each time, so the stream and the machine's state are the same for
 * all. Each photo is POSTed to /predict as the photo itself (a JSON answer): with labels on, each is queued for
 * the store and its 512 px copy written. Sampled after every 25 photos; the peak is the kernel's VmHWM.
 */

export interface StoreSetting {
  name: string;
  /** the service's command and environment; `DATABASE_URL: 'postgres'` is replaced by a throwaway server's URL */
  command: string[];
  env: Record<string, string>;
}

/**
 * A baseline checkout's service beside this one's: as a pod runs it with PostgreSQL, and as its own `npm start`
 * ran (its TypeScript sources under tsx, its default workers, PGlite).
 */
export function baselineStoreSettings(checkout: string, withPostgres = postgresInstalled()): StoreSetting[] {
  return [
    ...(withPostgres
      ? [
          {
            name: `baseline, labels on, PostgreSQL`,
            command: [process.execPath, path.join(checkout, 'dist/service/src/main.js')],
            env: { WORKERS: '1', ...IMAGE_MALLOC_ENV, LABELS: 'on', DATABASE_URL: 'postgres' },
          },
        ]
      : []),
    {
      name: "baseline's `npm start` (tsx, PGlite, default workers)",
      command: [process.execPath, '--import', 'tsx', path.join(checkout, 'service/src/main.ts')],
      env: { ...IMAGE_MALLOC_ENV, LABELS: 'on', WORKERS: '' },
    },
  ];
}

/** As a pod runs it (the image's command and malloc settings, one worker), and as `npm start` runs it. */
export function storeSettings(withPostgres = postgresInstalled()): StoreSetting[] {
  const pod = (name: string, env: Record<string, string>): StoreSetting => ({
    name,
    command: [process.execPath, COMPILED_SERVICE],
    env: { WORKERS: '1', ...IMAGE_MALLOC_ENV, ...env },
  });
  return [
    pod('labels off', { LABELS: 'off' }),
    ...(withPostgres ? [pod('labels on, PostgreSQL', { LABELS: 'on', DATABASE_URL: 'postgres' })] : []),
    pod('labels on, embedded PGlite', { LABELS: 'on' }),
    {
      name: '`npm start` with nothing configured (PGlite, default workers)',
      // what npm start runs once it has built (package.json), its malloc settings included; WORKERS left to the service
      command: [process.execPath, COMPILED_SERVICE],
      env: { ...IMAGE_MALLOC_ENV, LABELS: 'on', WORKERS: '' },
    },
  ];
}

export interface StoreMemoryRow {
  name: string;
  clients: number;
  photos: number;
  /** once ready (the embedded store open), before the first photo */
  idle: number;
  median: number;
  sampledMax: number;
  peak: number;
  /** least-squares trend of the samples over the second half, bytes per 1,000 photos */
  slope: number;
  breakdown: MemoryBreakdown;
  statuses: Record<string, number>;
  workers: string;
  /** predictions the labels queue could not keep (label_pending_dropped_total, all reasons); undefined: labels off */
  labelsDropped?: number;
  /** with an embedded store: what GET /accuracy answered at the first moment /readyz said ready */
  accuracyAtReady?: number;
}

/**
 * RSS samples taken as photos were served, as both memory reports print them: median and max from the 100th photo
 * on (the warm-up left out; every sample while there are none that late yet), and the trend over the second half.
 */
export function summariseRss(
  samples: { photos: number; rss: number }[],
  photosSent: number,
): { median: number; sampledMax: number; slope: number } {
  const warm = samples.filter((s) => s.photos >= 100);
  const counted = (warm.length > 0 ? warm : samples).map((s) => s.rss);
  return {
    median: median(counted),
    sampledMax: Math.max(...counted),
    slope: slopePer1000(samples.filter((s) => s.photos > photosSent / 2)),
  };
}

/** Least-squares slope of RSS against photos served, in bytes per 1,000 photos. */
function slopePer1000(points: { photos: number; rss: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.photos, 0) / n;
  const my = points.reduce((a, p) => a + p.rss, 0) / n;
  const sxy = points.reduce((a, p) => a + (p.photos - mx) * (p.rss - my), 0);
  const sxx = points.reduce((a, p) => a + (p.photos - mx) ** 2, 0);
  return (sxy / sxx) * 1000;
}

interface Running {
  setting: StoreSetting;
  server: RunningServer;
  dataDir: string;
  idle: number;
  samples: { photos: number; rss: number }[];
  statuses: Record<string, number>;
  sent: number;
  accuracyAtReady?: number;
}

const CHUNK = 25;

export async function benchStoreMemory(
  photos: string[],
  opts: { count: number; clients: number; settings: StoreSetting[] },
): Promise<StoreMemoryRow[]> {
  const running: Running[] = [];
  let postgres: PostgresServer | undefined;
  const stream = Array.from({ length: opts.count }, (_, i) => photos[i % photos.length]!);
  try {
    for (const setting of opts.settings) {
      const env: Record<string, string> = { ...setting.env, LOG_LEVEL: 'warn' };
      if (env.DATABASE_URL === 'postgres') {
        postgres ??= await startPostgres();
        env.DATABASE_URL = postgres.url;
      }
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-bench-store-'));
      if (env.LABELS === 'on' && !env.DATABASE_URL) env.LABEL_DATA_DIR = dataDir;
      // Ready means the embedded store is open too (created, for this fresh folder): /accuracy is asked at once.
      const server = await startServer({
        command: setting.command,
        env,
        timeoutMs: 300_000,
        waitReady: false,
      });
      await server.waitReady(300_000);
      const embedded = env.LABELS === 'on' && !env.DATABASE_URL;
      const accuracyAtReady = embedded ? (await fetch(`${server.url}/accuracy`)).status : undefined;
      running.push({
        setting,
        server,
        dataDir,
        idle: rssBytes(server.proc.pid!),
        samples: [],
        statuses: {},
        sent: 0,
        ...(accuracyAtReady !== undefined ? { accuracyAtReady } : {}),
      });
    }
    for (let start = 0; start < stream.length; start += CHUNK) {
      const chunk = stream.slice(start, start + CHUNK);
      for (const r of [...running].sort(() => Math.random() - 0.5)) {
        let next = 0;
        const client = async () => {
          while (next < chunk.length) {
            const photo = fs.readFileSync(chunk[next++]!);
            const res = await fetch(`${r.server.url}/predict`, {
              method: 'POST',
              headers: { 'Content-Type': 'image/jpeg' },
              body: Uint8Array.from(photo),
            });
            await res.arrayBuffer();
            r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1;
          }
        };
        await Promise.all(Array.from({ length: opts.clients }, client));
        r.sent += chunk.length;
        r.samples.push({ photos: r.sent, rss: rssBytes(r.server.proc.pid!) });
      }
      if ((start / CHUNK) % 8 === 7)
        console.log(
          `store memory, ${opts.clients} client(s), ${start + chunk.length} photos: ` +
            running
              .map(
                (r) => `${r.setting.name.split(' (')[0]} ${(r.samples.at(-1)!.rss / 2 ** 20).toFixed(0)} MiB`,
              )
              .join('; '),
        );
    }
    const dropped = await Promise.all(
      running.map(async (r) => {
        if (r.setting.env.LABELS !== 'on') return undefined;
        const text = await fetch(`${r.server.metricsUrl}/metrics`).then((res) => res.text());
        return [...text.matchAll(/^label_pending_dropped_total\{[^}]*\} (\d+)/gm)].reduce(
          (n, m) => n + Number(m[1]),
          0,
        );
      }),
    );
    return running.map((r, i) => {
      const pid = r.server.proc.pid!;
      return {
        name: r.setting.name,
        clients: opts.clients,
        photos: r.sent,
        idle: r.idle,
        ...summariseRss(r.samples, r.sent),
        peak: peakRssBytes(pid),
        breakdown: memoryBreakdown(pid),
        statuses: r.statuses,
        ...(r.accuracyAtReady !== undefined ? { accuracyAtReady: r.accuracyAtReady } : {}),
        ...(dropped[i] !== undefined ? { labelsDropped: dropped[i] } : {}),
        workers: r.setting.env.WORKERS || `${usableCpus()} (the CPUs this machine gives it)`,
      };
    });
  } finally {
    await Promise.all(running.map((r) => r.server.stop()));
    for (const r of running) fs.rmSync(r.dataDir, { recursive: true, force: true });
    postgres?.destroy();
  }
}
