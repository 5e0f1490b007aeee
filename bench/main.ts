import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { REPO_ROOT } from '../tools/shared/service-process';
import { benchDecode, photoLikeJpeg } from './decoders';
import { benchColdStart, benchLoad, type ServiceEnv } from './http';
import { loadAverage } from './format';
import { benchInference, type InferenceRow } from './inference';
import { renderReport, type Machine } from './report';
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
  .parse();
const opts = program.opts<{ out: string; build: boolean; duration: number }>();

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
  const started = Date.now();
  const machine = describeMachine();
  console.log(`bench on ${machine.cpu}, load average ${loadAverage(machine.loadAverage, ' ')}`);
  if (opts.build) {
    console.log('npm run build');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const env: ServiceEnv = {};

  const inference: InferenceRow[] = [];
  for (const backend of ['tensorflow', 'wasm', 'cpu']) {
    const row = await benchInference(backend);
    console.log(`inference ${backend}: ${JSON.stringify(row.perImageMs ?? row.error)}`);
    inference.push(row);
  }
  const inputSize = inference.find((r) => r.inputSize)?.inputSize ?? 64;

  const source = fs.readFileSync(path.join(REPO_ROOT, 'service', 'assets', 'test-photo.jpg'));
  const decode = await benchDecode(source, inputSize);

  const coldStart = [await benchColdStart(1, env), await benchColdStart(2, env)];

  const photoPath = path.join(os.tmpdir(), `gourmetgram-bench-${process.pid}.jpg`);
  const photo = await photoLikeJpeg(source, 640, 480);
  fs.writeFileSync(photoPath, photo);
  const load = [];
  try {
    for (const workers of [1, 2])
      load.push(
        await benchLoad(workers, env, photoPath, { connections: 8, durationS: opts.duration, warmupS: 5 }),
      );
  } finally {
    fs.rmSync(photoPath, { force: true });
  }

  const report = renderReport({
    machine,
    loadAverageAfter: os.loadavg(),
    command: 'npm run bench',
    inputSize,
    decode,
    inference,
    coldStart,
    load,
    photoBytes: photo.length,
    minutes: (Date.now() - started) / 60_000,
  });
  // The sections bench/memory.ts and bench/probes.ts write into the same report are measured separately: keep them.
  fs.writeFileSync(opts.out, [report.trimEnd(), ...markedSections(opts.out)].join('\n\n') + '\n');
  console.log(`wrote ${path.relative(process.cwd(), opts.out)}`);
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
