import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { positiveInt } from '../model/cli/arguments';
import { readMetadata } from '../model/src/metadata';
import { DEFAULT_MAX_PIXELS, decodeMemoryBytes, type View } from '../model/src/preprocess';
import { median } from '../model/train/latency';
import { loadConfig } from '../service/src/config';
import { COMPILED_SERVICE, IMAGE_MALLOC_ENV, REPO_ROOT, startServer } from '../tools/shared/service-process';
import { loadAverage, mib, ms } from './format';
import { jpegFiles, PHONE_SIZES, phonePhotos, spread, type PhoneSize } from './phone-photos';
import { memoryBreakdown, peakRssBytes, rssBytes, type MemoryBreakdown } from './proc-usage';
import { markedSection, writeSection } from './report-sections';
import { summariseRss } from './store-memory';

/**
 * Memory on a stream of real photos of phone sizes (issue 19), and what decoding each size costs.
 *
 * 1. The compiled service (node dist/service/src/main.js, the image's command) is fed `--count` photos over HTTP on
 *    127.0.0.1: of every ten, seven real photos as they are (Food-101's, at most 384 px) and three made from real
 *    photos at phone sizes (two of 3 MP, one of 12 MP; bench/phone-photos.ts). One fresh process per allocator
 *    setting, number of workers and number of clients, side by side in one run. Its resident memory (VmRSS, all
 *    threads) is read from /proc every 25 photos, where it sits (WebAssembly heaps, glibc's brk heap, other
 *    anonymous memory, mapped files: /proc/<pid>/smaps) at the end, and its peak (VmHWM) over the run.
 * 2. Decoding one photo of 0.3, 3, 12 and 48 MP to the shipped model's view and to a 224 px one: milliseconds and
 *    the memory decoding adds at its peak, one process per size and view (bench/decode-peak.ts).
 *
 * Writes its section of bench/REPORT.md between the memory markers. Photos are data, never committed: --photos
 * names a folder of real JPEGs (searched recursively); the phone-size ones are cached under --cache.
 */

const serviceDefaults = loadConfig({});

const list = (option: string) => (value: string) => value.split(',').map((v) => positiveInt(option)(v));

const program = new Command()
  .requiredOption('--photos <dir>', 'folder of real photos (JPEG), searched recursively')
  .option('--count <n>', 'photos per configuration', positiveInt('--count'), 1000)
  .option('--concurrency <list>', 'clients sending at once, one run each', list('--concurrency'), [1, 8])
  .option('--workers <list>', 'WORKERS, one run each', list('--workers'), [1, 2])
  .option(
    '--variants <names>',
    'allocator settings to compare (comma-separated names)',
    'glibc,arenas2,arenas2-mmap,jemalloc',
  )
  .option('--decode-runs <n>', 'timed decodes per photo size and view', positiveInt('--decode-runs'), 9)
  .option(
    '--cache <dir>',
    'where the phone-size photos are made',
    path.join(REPO_ROOT, '.cache/phone-photos'),
  )
  .option('--report <file>', 'report to write the section into', path.join(REPO_ROOT, 'bench/REPORT.md'))
  .parse();
const opts = program.opts<{
  photos: string;
  count: number;
  concurrency: number[];
  workers: number[];
  variants: string;
  decodeRuns: number;
  cache: string;
  report: string;
}>();

/** Debian's libjemalloc2, as service/Dockerfile installs it (ld.so finds the bare name in the library path). */
const JEMALLOC = 'libjemalloc.so.2';

interface Variant {
  name: string;
  describe: string;
  env: Record<string, string>;
}

const VARIANTS: Variant[] = [
  { name: 'glibc', describe: 'glibc malloc, default arenas (as `npm start` ran before issue 19)', env: {} },
  {
    name: 'arenas2',
    describe: 'glibc malloc, `MALLOC_ARENA_MAX=2` (the image before issue 19)',
    env: { MALLOC_ARENA_MAX: '2' },
  },
  {
    name: 'arenas2-mmap',
    describe: 'glibc malloc, `MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072` (the image since issue 19)',
    env: IMAGE_MALLOC_ENV,
  },
  {
    name: 'image-decode64',
    describe: 'as the image, with `DECODE_MEMORY_BYTES=67108864` (64 MiB) instead of its default',
    env: { ...IMAGE_MALLOC_ENV, DECODE_MEMORY_BYTES: String(64 * 1024 * 1024) },
  },
  { name: 'jemalloc', describe: `jemalloc, \`LD_PRELOAD=${JEMALLOC}\``, env: { LD_PRELOAD: JEMALLOC } },
  {
    name: 'jemalloc-bg',
    describe: `jemalloc with background purging (\`MALLOC_CONF=background_thread:true\`)`,
    env: { LD_PRELOAD: JEMALLOC, MALLOC_CONF: 'background_thread:true' },
  },
];

/** What service/Dockerfile sets (its ENV lines): the decode costs are measured under it. */
const IMAGE_VARIANT = VARIANTS.find((v) => v.name === 'arenas2-mmap')!;

/**
 * Seven real photos as they are, two at 3 MP, one at 12 MP, in every ten; the pools alternate baseline and
 * progressive JPEGs, so every ten hold one progressive 3 MP photo and every twenty one progressive 12 MP photo.
 */
function mixedStream(originals: string[], mp3: string[], mp12: string[], count: number): string[] {
  const picked = spread(originals, Math.ceil(count * 0.7));
  let o = 0;
  return Array.from({ length: count }, (_, i) => {
    const slot = i % 10;
    if (slot === 9) return mp12[Math.floor(i / 10) % mp12.length]!;
    if (slot >= 7) return mp3[(Math.floor(i / 10) * 2 + slot - 7) % mp3.length]!;
    return picked[o++ % picked.length]!;
  });
}

interface Run {
  variant: Variant;
  workers: number;
  concurrency: number;
  allocator: string;
  idle: number;
  median: number;
  sampledMax: number;
  peak: number;
  slope: number;
  breakdown: MemoryBreakdown;
  statuses: Map<number, number>;
  seconds: number;
}

/** Which malloc the process really runs: a preload that failed would otherwise pass for glibc silently. */
function allocatorOf(pid: number): string {
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  return maps.includes('libjemalloc') ? 'jemalloc' : 'glibc';
}

async function measure(
  variant: Variant,
  workers: number,
  concurrency: number,
  photos: string[],
): Promise<Run> {
  const server = await startServer({
    command: [process.execPath, COMPILED_SERVICE],
    env: { WORKERS: String(workers), TFJS_BACKEND: 'wasm', LOG_LEVEL: 'warn', ...variant.env },
    timeoutMs: 120_000,
  });
  const pid = server.proc.pid!;
  const started = Date.now();
  const samples: { photos: number; rss: number }[] = [];
  const statuses = new Map<number, number>();
  const idle = rssBytes(pid);
  let breakdown: MemoryBreakdown;
  let peak: number;
  const allocator = allocatorOf(pid);
  try {
    let next = 0;
    let done = 0;
    const client = async () => {
      while (next < photos.length) {
        const photo = photos[next++]!;
        // A form with the field `file`, as the upload page and `curl -F` send it (multer reads it).
        const form = new FormData();
        form.append('file', new Blob([fs.readFileSync(photo)], { type: 'image/jpeg' }), path.basename(photo));
        const res = await fetch(`${server.url}/predict`, { method: 'POST', body: form });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (++done % 25 === 0) samples.push({ photos: done, rss: rssBytes(pid) });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, client));
    breakdown = memoryBreakdown(pid);
    peak = peakRssBytes(pid);
  } finally {
    await server.stop();
  }
  return {
    variant,
    workers,
    concurrency,
    allocator,
    idle,
    ...summariseRss(samples, photos.length),
    peak,
    breakdown,
    statuses,
    seconds: (Date.now() - started) / 1000,
  };
}

interface DecodeCost {
  size: PhoneSize;
  progressive: boolean;
  /** what the service reserves for it from DECODE_MEMORY_BYTES */
  counted: number;
  jpegBytes: number;
  view: View;
  medianMs: number;
  addedPeak: number;
  refusedByDefault?: string;
}

/** One process per photo and view (bench/decode-peak.ts), with the allocator the image runs. */
function decodeCost(photo: string, size: PhoneSize, view: View, warmup: string, env: Record<string, string>) {
  const out = execFileSync(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      'tsx',
      path.join(__dirname, 'decode-peak.ts'),
      photo,
      JSON.stringify(view),
      String(opts.decodeRuns),
      warmup,
    ],
    { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, ...env } },
  );
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as {
    ms: number[];
    addedPeakBytes: number;
    refusedByDefault?: string;
  };
  return {
    size,
    jpegBytes: fs.statSync(photo).size,
    view,
    medianMs: median(result.ms),
    addedPeak: result.addedPeakBytes,
    refusedByDefault: result.refusedByDefault,
  } satisfies Omit<DecodeCost, 'progressive' | 'counted'>;
}

const viewName = (view: View) =>
  `${view.size} px${view.jpegQuality !== undefined ? ` + JPEG q${view.jpegQuality}` : ''}`;
const statusList = (statuses: Map<number, number>) =>
  [...statuses]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status}: ${count}`)
    .join(', ');
const signedMib = (bytes: number) => `${bytes >= 0 ? '+' : '−'}${mib(Math.abs(bytes), 1)}`;

async function main() {
  if (!fs.statSync(opts.photos, { throwIfNoEntry: false })?.isDirectory())
    throw new Error(`--photos ${opts.photos} is not a folder`);
  if (!fs.existsSync(COMPILED_SERVICE))
    throw new Error(`${COMPILED_SERVICE} is missing: run npm run build first`);
  const variants = opts.variants.split(',').map((name) => {
    const variant = VARIANTS.find((v) => v.name === name);
    if (!variant)
      throw new Error(`--variants: no variant '${name}' (${VARIANTS.map((v) => v.name).join(', ')})`);
    return variant;
  });
  const originals = jpegFiles(opts.photos);
  if (originals.length === 0) throw new Error(`--photos ${opts.photos} holds no JPEG (*.jpg, *.jpeg)`);
  const bySize = (label: PhoneSize['label']) => PHONE_SIZES.find((s) => s.label === label)!;
  console.log('making the phone-size photos (cached in --cache)…');
  const interleave = (a: string[], b: string[]) => a.flatMap((x, i) => [x, b[i]!]);
  const pool = async (size: PhoneSize, count: number) =>
    interleave(
      await phonePhotos(originals, size, count, opts.cache),
      await phonePhotos(originals, size, count, opts.cache, { progressive: true }),
    );
  const mp3 = await pool(bySize('3 MP'), 15);
  const mp12 = await pool(bySize('12 MP'), 6);
  const stream = mixedStream(originals, mp3, mp12, opts.count);
  const bytes = stream.map((p) => fs.statSync(p).size);
  const loadBefore = loadAverage();

  const model = await readMetadata(path.join(REPO_ROOT, 'model/shipped'));
  const views: View[] = [model.view, { size: 224, crop: 'cover' }];
  const imageEnv = IMAGE_VARIANT.env;
  const costs: DecodeCost[] = [];
  for (const size of PHONE_SIZES) {
    for (const progressive of [false, true]) {
      const [photo] = await phonePhotos(originals, size, 1, opts.cache, { progressive });
      for (const view of views) {
        // phonePhotos saves sharp's default chroma, 4:2:0, as phones do
        const counted = decodeMemoryBytes('jpeg', size.width * size.height, progressive, '4:2:0');
        const cost = { ...decodeCost(photo!, size, view, originals[0]!, imageEnv), progressive, counted };
        console.log(
          `decode ${size.label}${progressive ? ' progressive' : ''} → ${viewName(view)}: ${ms(cost.medianMs)}, peak +${mib(cost.addedPeak)}`,
        );
        costs.push(cost);
      }
    }
  }

  const runs: Run[] = [];
  const report = () => {
    const cmd = `node --import tsx bench/memory.ts --photos <dir> --count ${opts.count} --concurrency ${opts.concurrency.join(',')} --workers ${opts.workers.join(',')} --variants ${variants.map((v) => v.name).join(',')}`;
    const kb = (n: number) => `${Math.round(n / 1024)} kB`;
    const section = markedSection('memory', [
      '## Memory on real photos of phone sizes',
      `Written by \`${cmd}\` (bench/memory.ts) on ${new Date().toISOString()}, on ${os.cpus().length} CPUs; load average`,
      `${loadBefore} before and ${loadAverage()} after (a load above the CPU count means other work shared the machine).`,
      `--photos was Food-101's \`photos/\` (../shared/data/food11/photos.tar.gz, ${originals.length} real photos of at most 384 px).`,
      '',
      `The compiled service (\`node dist/service/src/main.js\`, wasm) was sent ${stream.length} photos, POSTed to /predict as a form (as the upload page and \`curl -F\` send them): of every ten,`,
      `seven real photos as they are, two at 3 MP and one at 12 MP made from real photos (bench/phone-photos.ts: a real`,
      `photo scaled up with sensor-like noise, JPEG q90; ${mp3.length} distinct at 3 MP, ${mp12.length} at 12 MP, half of each`,
      `baseline as cameras write them, half progressive as photos saved from the web or an app often are). JPEGs of`,
      `${kb(Math.min(...bytes))}–${kb(Math.max(...bytes))}, median ${kb(median(bytes))}. A fresh process per row. RSS is VmRSS read every 25 photos: median`,
      "and max over the samples from the 100th photo on; peak is the kernel's VmHWM over the whole run (it catches what",
      'falls between samples); slope is the least-squares trend of the samples over the second half, per 1,000 photos',
      '(flat after warm-up is about zero). Where the memory sits is /proc/<pid>/smaps at the end of the run.',
      '',
      '| workers | clients | allocator | idle | median | max | peak (VmHWM) | slope, 2nd half | at the end: wasm heaps | glibc brk heap | other anonymous | files | statuses | seconds |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...runs.map(
        (r) =>
          `| ${r.workers} | ${r.concurrency} | ${r.variant.describe}${r.allocator === (r.variant.env.LD_PRELOAD ? 'jemalloc' : 'glibc') ? '' : ` (**ran ${r.allocator}**)`} | ${mib(r.idle)} | ${mib(r.median)} | ${mib(r.sampledMax)} | **${mib(r.peak)}** | ${signedMib(r.slope)} | ${mib(r.breakdown.wasm)} | ${mib(r.breakdown.brk)} | ${mib(r.breakdown.anonymous)} | ${mib(r.breakdown.files)} | ${statusList(r.statuses)} | ${r.seconds.toFixed(0)} |`,
      ),
      '',
      '### Decoding one photo, by size and view',
      `\`preprocessPhoto\` (model/src/preprocess.ts, sharp) on one photo of each size made as above, in a process of its own`,
      `per row (bench/decode-peak.ts, with the image's allocator setting: ${IMAGE_VARIANT.describe}): the median of ${opts.decodeRuns} decodes after one`,
      'warm-up, and the resident memory decoding added at its peak over a baseline taken after decoding a small photo.',
      `The shipped model's view (${viewName(model.view)}, model/shipped/metadata.json) beside a 224 px one.`,
      '',
      `| photo | JPEG | view | decode median | peak memory added | counted by decodeMemoryBytes | the service's defaults (MAX_PIXELS ${DEFAULT_MAX_PIXELS / 1e6} MP, DECODE_MEMORY_BYTES ${mib(serviceDefaults.decodeMemoryBytes)}) |`,
      '|---|---|---|---|---|---|---|',
      ...costs.map(
        (c) =>
          `| ${c.size.label} (${c.size.width}×${c.size.height})${c.progressive ? ', progressive' : ''} | ${kb(c.jpegBytes)} | ${viewName(c.view)} | ${ms(c.medianMs)} | ${mib(c.addedPeak, 1)} | ${mib(c.counted, 1)} | ${c.refusedByDefault ? '422 (over MAX_PIXELS)' : c.counted > serviceDefaults.decodeMemoryBytes ? '422 (over DECODE_MEMORY_BYTES)' : 'decoded'} |`,
      ),
    ]);
    writeSection(opts.report, 'memory', section);
    return section;
  };
  for (const workers of opts.workers) {
    for (const concurrency of opts.concurrency) {
      for (const variant of variants) {
        console.log(`measuring: ${variant.name}, ${workers} worker(s), ${concurrency} client(s)`);
        const run = await measure(variant, workers, concurrency, stream);
        console.log(
          `  median ${mib(run.median)}, peak ${mib(run.peak)}, slope ${signedMib(run.slope)}/1000 (${run.allocator}), ${statusList(run.statuses)}`,
        );
        runs.push(run);
        // Written after every run, so a run cut short keeps what it measured.
        report();
      }
    }
  }

  console.log(report());
}

main().catch((err: Error) => {
  console.error(`bench/memory: ${err.message}`);
  process.exit(1);
});
