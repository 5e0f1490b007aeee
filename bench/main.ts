import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { loadConfig, usableCpus } from '../service/src/config';
import { COMPILED_SERVICE, REPO_ROOT } from '../tools/shared/service-process';
import { benchDecode, photoLikeJpeg } from './decoders';
import { benchColdStart, benchLoad, type ServiceEnv } from './http';
import { loadAverage } from './format';
import { benchInference, type InferenceRow } from './inference';
import { jpegFiles, PHONE_SIZES, phonePhotos } from './phone-photos';
import { benchServiceTime } from './service-time';
import { baselineStoreSettings, benchStoreMemory, storeSettings, type StoreMemoryRow } from './store-memory';
import { benchThroughput, type ThroughputSetting } from './throughput';
import { renderReport, type Machine, type ReportInput } from './report';
import { markedSections } from './report-sections';

/**
 * `npm run bench`: every measurement side by side in one run on this machine, written as a markdown report.
 * A report, not a test: nothing here fails on a slow machine; the report says which goals were met.
 */

const program = new Command()
  .name('bench')
  .description(
    'Measure decoding, inference, HTTP throughput, cold start and memory; write a markdown report.',
  )
  .option('--out <file>', 'report to write', path.join(REPO_ROOT, 'bench', 'REPORT.md'))
  .option('--no-build', 'use the existing dist/ instead of running npm run build first')
  .option('--duration <seconds>', 'length of each measured HTTP run', (v) => Number(v), 20)
  .option(
    '--baseline <dir>',
    "another checkout, built (its dist/service/src/main.js), measured beside this one: the service's time and throughput",
  )
  .option('--service-rounds <n>', "rounds of the service's time against the network's", (v) => Number(v), 16)
  .option('--throughput-rounds <n>', 'rounds of the throughput settings', (v) => Number(v), 3)
  .option('--throughput-duration <seconds>', 'load per setting per round', (v) => Number(v), 15)
  .option('--connections <n>', 'clients of the throughput runs (siege -c)', (v) => Number(v), 10)
  .option(
    '--photos <dir>',
    'real phone photos (JPEGs of 3–16 MP are taken) for the memory runs; default: made from the bundled photo',
  )
  .option('--memory-photos <n>', 'photos per setting in each memory run', (v) => Number(v), 300)
  .option('--memory-clients <list>', 'clients of the memory runs, one run each', '1,8')
  .option(
    '--from <json>',
    "render the report again from a run's saved measurements (.cache/bench/<report name>.json), measuring nothing",
  )
  .option(
    '--skip <sections>',
    'sections not to run: decode,inference,service-time,throughput,memory,http,cold-start',
    '',
  )
  .parse();
const opts = program.opts<{
  out: string;
  build: boolean;
  duration: number;
  baseline?: string;
  serviceRounds: number;
  throughputRounds: number;
  throughputDuration: number;
  connections: number;
  photos?: string;
  memoryPhotos: number;
  memoryClients: string;
  skip: string;
  from?: string;
}>();
const skipped = new Set(opts.skip.split(',').filter(Boolean));

function describeMachine(): Machine {
  const cpus = os.cpus();
  let tfjs = '?';
  try {
    tfjs = (
      JSON.parse(fs.readFileSync(require.resolve('@tensorflow/tfjs/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    // the version is only informative
  }
  return {
    date: new Date().toISOString(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: `${cpus[0]?.model ?? '?'} × ${cpus.length} (${os.availableParallelism()} usable)`,
    memoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
    node: process.version,
    sharp: `${sharp.versions.sharp} (libvips ${sharp.versions.vips})`,
    tfjs,
  };
}

async function main() {
  if (opts.from) {
    writeReport(JSON.parse(fs.readFileSync(opts.from, 'utf8')) as ReportInput);
    return;
  }
  const started = Date.now();
  const machine = describeMachine();
  console.log(`bench on ${machine.cpu}, load average ${loadAverage(machine.loadAverage, ' ')}`);
  if (opts.build) {
    console.log('npm run build');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const env: ServiceEnv = {};
  const run = <T>(section: string, measure: () => Promise<T>, otherwise: T): Promise<T> =>
    skipped.has(section) ? Promise.resolve(otherwise) : measure();

  const inference = await run(
    'inference',
    async () => {
      const rows: InferenceRow[] = [];
      for (const backend of ['tensorflow', 'wasm', 'cpu']) {
        const row = await benchInference(backend);
        console.log(`inference ${backend}: ${JSON.stringify(row.perImageMs ?? row.error)}`);
        rows.push(row);
      }
      return rows;
    },
    [],
  );
  const inputSize = inference.find((r) => r.inputSize)?.inputSize ?? 224;

  const testPhotoPath = path.join(REPO_ROOT, 'service', 'assets', 'test-photo.jpg');
  const source = fs.readFileSync(testPhotoPath);
  const decode = await run('decode', () => benchDecode(source, inputSize), []);

  const baselineServer = opts.baseline && path.resolve(opts.baseline, 'dist/service/src/main.js');
  if (baselineServer && !fs.existsSync(baselineServer))
    throw new Error(`--baseline: ${baselineServer} is missing (npm ci && npm run build there first)`);
  const serviceTime = await run(
    'service-time',
    async () => {
      const servers = [
        { name: 'this checkout, labels off', server: COMPILED_SERVICE, labels: false },
        { name: 'this checkout, labels on (PGlite, as `npm start`)', server: COMPILED_SERVICE, labels: true },
        ...(baselineServer
          ? [{ name: `baseline (${opts.baseline}), labels off`, server: baselineServer, labels: false }]
          : []),
      ];
      const rows = [];
      for (const { name, server, labels } of servers) {
        const row = await benchServiceTime({
          server,
          photo: testPhotoPath,
          rounds: opts.serviceRounds,
          perRound: 10,
          labels,
        });
        console.log(
          `service time, ${name}: inferenceMs ${row.service.inferenceMs} ms, network ${row.networkMs.toFixed(1)} ms`,
        );
        rows.push({ name, row });
      }
      return rows;
    },
    [],
  );

  const cpus = usableCpus();
  const workerCounts = [...new Set([1, cpus])];
  const defaults = loadConfig({});
  const batchSizes = [...new Set([1, defaults.batchMaxSize, 4])];
  const grid: ThroughputSetting[] = workerCounts.flatMap((workers) =>
    batchSizes.map((batch) => ({
      name: `WORKERS=${workers}, BATCH_MAX_SIZE=${batch}${workers === cpus && batch === defaults.batchMaxSize ? ' (the defaults here)' : ''}`,
      command: [process.execPath, COMPILED_SERVICE],
      env: { WORKERS: String(workers), BATCH_MAX_SIZE: String(batch) },
    })),
  );
  const baselineSetting: ThroughputSetting[] = baselineServer
    ? [
        {
          name: `baseline (${opts.baseline}), its defaults`,
          command: [process.execPath, baselineServer],
          // '' unsets the test harness's WORKERS=1: the baseline picks its own, as it would in production
          env: { WORKERS: '' },
        },
      ]
    : [];
  const throughputRun = {
    connections: opts.connections,
    durationS: opts.throughputDuration,
    rounds: opts.throughputRounds,
  };
  const throughput = await run(
    'throughput',
    () => benchThroughput([...grid, ...baselineSetting], throughputRun),
    [],
  );

  const { photos, storePhotos } = await memoryPhotos(testPhotoPath);
  const storeMemory = await run(
    'memory',
    async () => {
      const rows: StoreMemoryRow[] = [];
      for (const clients of opts.memoryClients.split(',').map(Number)) {
        const settings = [
          ...storeSettings(),
          ...(opts.baseline ? baselineStoreSettings(path.resolve(opts.baseline)) : []),
        ];
        rows.push(...(await benchStoreMemory(photos, { count: opts.memoryPhotos, clients, settings })));
      }
      return rows;
    },
    [],
  );

  const coldStart = await run(
    'cold-start',
    async () => [await benchColdStart(1, env), await benchColdStart(2, env)],
    [],
  );

  const photoPath = path.join(os.tmpdir(), `gourmetgram-bench-${process.pid}.jpg`);
  const photo = await photoLikeJpeg(source, 640, 480);
  fs.writeFileSync(photoPath, photo);
  const load = [];
  try {
    if (!skipped.has('http'))
      for (const workers of [1, 2])
        load.push(
          await benchLoad(workers, env, photoPath, { connections: 8, durationS: opts.duration, warmupS: 5 }),
        );
  } finally {
    fs.rmSync(photoPath, { force: true });
  }

  const input: ReportInput = {
    machine,
    loadAverageAfter: os.loadavg(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    inputSize,
    decode,
    inference,
    coldStart,
    load,
    photoBytes: photo.length,
    minutes: (Date.now() - started) / 60_000,
    serviceTime,
    throughput,
    throughputRun,
    throughputNames: {
      batching: grid.find((g) => g.name.endsWith('(the defaults here)'))!.name,
      single: grid[0]!.name,
      ...(baselineSetting[0] ? { baseline: baselineSetting[0].name } : {}),
    },
    storeMemory,
    storePhotos,
  };
  // What was measured, kept beside the build's other caches: `--from` renders the report again from it.
  fs.mkdirSync(path.dirname(RUN_DATA), { recursive: true });
  fs.writeFileSync(RUN_DATA, JSON.stringify(input));
  writeReport(input);
}

// Named after the report, so a run written elsewhere (--out /tmp/x.md) does not replace the measurements behind
// bench/REPORT.md.
const RUN_DATA = path.join(REPO_ROOT, '.cache/bench', `${path.basename(opts.out, '.md')}.json`);

function writeReport(input: ReportInput): void {
  const report = renderReport(input);
  // The sections bench/memory.ts and bench/probes.ts write into the same report are measured separately: keep them.
  fs.writeFileSync(opts.out, [report.trimEnd(), ...markedSections(opts.out)].join('\n\n') + '\n');
  console.log(`wrote ${path.relative(process.cwd(), opts.out)}`);
}

/**
 * The memory runs' photos: real phone photos of 3–16 MP from --photos, or, without it, phone-size photos made
 * from the bundled one (bench/phone-photos.ts), which the report then says.
 */
async function memoryPhotos(testPhotoPath: string): Promise<{ photos: string[]; storePhotos: string }> {
  if (opts.photos) {
    const picked: string[] = [];
    let progressive = 0;
    const sizes: number[] = [];
    for (const file of jpegFiles(opts.photos)) {
      const meta = await sharp(file)
        .metadata()
        .catch(() => undefined);
      const mp = ((meta?.width ?? 0) * (meta?.height ?? 0)) / 1e6;
      if (mp < 3 || mp > 16) continue;
      picked.push(file);
      sizes.push(mp);
      if (meta?.isProgressive) progressive++;
    }
    if (picked.length === 0) throw new Error(`--photos ${opts.photos}: no JPEG of 3–16 MP`);
    const bytes = picked.map((p) => fs.statSync(p).size);
    return {
      photos: picked,
      storePhotos:
        `The photos: the ${picked.length} real JPEGs of 3–16 MP under \`--photos\` (${Math.min(...sizes).toFixed(1)}–${Math.max(...sizes).toFixed(1)} MP, ` +
        `${progressive} progressive, ${(Math.min(...bytes) / 1024).toFixed(0)}–${(Math.max(...bytes) / 1024).toFixed(0)} kB), in turn.`,
    };
  }
  const cache = path.join(REPO_ROOT, '.cache/phone-photos');
  const made: string[] = [];
  for (const size of PHONE_SIZES.filter((p) => p.label === '3 MP' || p.label === '12 MP'))
    for (const progressive of [false, true])
      made.push(...(await phonePhotos([testPhotoPath], size, 1, cache, { progressive })));
  return {
    photos: made,
    storePhotos:
      'The photos: made from the bundled test photo at 3 and 12 MP, baseline and progressive (bench/phone-photos.ts); ' +
      'rerun with `--photos <dir>` for real phone photos.',
  };
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
