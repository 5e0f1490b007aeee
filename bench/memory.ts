import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { positiveInt } from '../model/cli/arguments';
import { median } from '../model/train/latency';
import { COMPILED_SERVICE, REPO_ROOT, startServer } from '../tools/shared/service-process';
import { loadAverage, mib } from './format';
import { rssBytes } from './proc-usage';
import { markedSection, writeSection } from './report-sections';

/**
 * Memory on a stream of real photos (issue 12, item 8): the compiled service (node dist/service/src/main.js,
 * the image's command) with one worker, fed real photos of varied sizes one after another over HTTP on
 * 127.0.0.1, its resident memory (VmRSS of the process, all threads) read from /proc after every 50 photos.
 * One fresh process per configuration, so the allocator and sharp settings are compared side by side.
 * Writes its section of bench/REPORT.md between the memory markers. Photos are data, never committed: point
 * --photos at a folder of JPEGs (searched recursively).
 */

const program = new Command()
  .requiredOption('--photos <dir>', 'folder of real photos (JPEG), searched recursively')
  .option('--count <n>', 'photos per configuration', positiveInt('--count'), 1000)
  .option(
    '--concurrency <n>',
    'clients sending at once (1: one photo after another)',
    positiveInt('--concurrency'),
    1,
  )
  .option('--report <file>', 'report to write the section into', path.join(REPO_ROOT, 'bench/REPORT.md'))
  .parse();
const opts = program.opts<{
  photos: string;
  count: number;
  concurrency: number;
  report: string;
}>();

interface Variant {
  name: string;
  env: Record<string, string>;
}

// The first is what the service did before issue 12 (sharp's defaults, glibc's arenas); the last is what
// the image runs now (service/Dockerfile sets MALLOC_ARENA_MAX, the service defaults set sharp).
const VARIANTS: Variant[] = [
  {
    name: 'before: sharp defaults (cache 50 MB, one thread per core), glibc arenas',
    env: { SHARP_CACHE_MB: '50', SHARP_CONCURRENCY: '0' },
  },
  {
    name: 'MALLOC_ARENA_MAX=2 only',
    env: { SHARP_CACHE_MB: '50', SHARP_CONCURRENCY: '0', MALLOC_ARENA_MAX: '2' },
  },
  { name: 'sharp cache off, 1 thread per image only', env: {} },
  { name: 'now: sharp cache off, 1 thread per image, MALLOC_ARENA_MAX=2', env: { MALLOC_ARENA_MAX: '2' } },
];

function photoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...photoFiles(full));
    else if (/\.jpe?g$/i.test(entry.name)) out.push(full);
  }
  return out.sort();
}

/** A deterministic spread over the folder (every class and size), not its first N files. */
function pick(files: string[], n: number): string[] {
  const step = files.length / n;
  return Array.from({ length: Math.min(n, files.length) }, (_, i) => files[Math.floor(i * step)]!);
}

async function measure(variant: Variant, photos: string[]) {
  const server = await startServer({
    command: [process.execPath, COMPILED_SERVICE],
    env: {
      WORKERS: '1',
      TFJS_BACKEND: 'wasm',
      LOG_LEVEL: 'warn',
      ...variant.env,
    },
    timeoutMs: 120_000,
  });
  const pid = server.proc.pid!;
  const samples: { photos: number; rss: number }[] = [{ photos: 0, rss: rssBytes(pid) }];
  const statuses = new Map<number, number>();
  try {
    let next = 0;
    let done = 0;
    const client = async () => {
      while (next < photos.length) {
        const photo = photos[next++]!;
        const res = await fetch(`${server.url}/predict`, {
          method: 'POST',
          headers: { 'Content-Type': 'image/jpeg' },
          body: Uint8Array.from(fs.readFileSync(photo)),
        });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (++done % 50 === 0) samples.push({ photos: done, rss: rssBytes(pid) });
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, client));
  } finally {
    await server.stop();
  }
  const after100 = samples.filter((s) => s.photos >= 100).map((s) => s.rss);
  return {
    variant,
    idle: samples[0]!.rss,
    at100: samples.find((s) => s.photos === 100)?.rss ?? NaN,
    median: median(after100),
    max: Math.max(...after100),
    last: samples.at(-1)!.rss,
    statuses,
  };
}

async function main() {
  if (!fs.statSync(opts.photos, { throwIfNoEntry: false })?.isDirectory())
    throw new Error(`--photos ${opts.photos} is not a folder`);
  const all = photoFiles(opts.photos);
  if (all.length === 0) throw new Error(`--photos ${opts.photos} holds no JPEG (*.jpg, *.jpeg)`);
  const photos = pick(all, opts.count);
  const sizes = photos.map((p) => fs.statSync(p).size);
  console.log(`${photos.length} photos of ${all.length} in ${opts.photos}`);
  const results = [];
  for (const variant of VARIANTS) {
    console.log(`measuring: ${variant.name}`);
    const result = await measure(variant, photos);
    console.log(`  RSS idle ${mib(result.idle)}, median ${mib(result.median)}, max ${mib(result.max)}`);
    results.push(result);
  }
  const cmd = `node --import tsx bench/memory.ts --photos <dir> --count ${opts.count} --concurrency ${opts.concurrency}`;
  // One section per concurrency, so a sequential and a concurrent run can stand side by side.
  const tag = `memory-c${opts.concurrency}`;
  const section = markedSection(tag, [
    `## Memory on real photos (one worker, ${opts.concurrency} client${opts.concurrency === 1 ? '' : 's'} at once)`,
    `Written by \`${cmd}\` (bench/memory.ts) on ${new Date().toISOString()}, on ${os.cpus().length} CPUs with load`,
    `average ${loadAverage()} at the end. ${photos.length} real photos (JPEG, ${Math.round(Math.min(...sizes) / 1024)}–${Math.round(Math.max(...sizes) / 1024)} kB, median ${Math.round(median(sizes) / 1024)} kB,`,
    `spread evenly over ${all.length} in the folder) POSTed to /predict by ${opts.concurrency} client(s) at once, of \`node dist/service/src/main.js\``,
    `(WORKERS=1, wasm), a fresh process per row; RSS is the process's VmRSS`,
    'read from /proc every 50 photos; median and max are over the samples from the 100th photo on.',
    '',
    '| configuration | idle | after 100 | median | max | after the last | statuses |',
    '|---|---|---|---|---|---|---|',
    ...results.map(
      (result) =>
        `| ${result.variant.name} | ${mib(result.idle)} | ${mib(result.at100)} | ${mib(result.median)} | ${mib(result.max)} | ${mib(result.last)} | ${[...result.statuses].map(([status, count]) => `${status}: ${count}`).join(', ')} |`,
    ),
  ]);
  writeSection(opts.report, tag, section);
  console.log(section);
}

main().catch((err: Error) => {
  console.error(`bench/memory: ${err.message}`);
  process.exit(1);
});
