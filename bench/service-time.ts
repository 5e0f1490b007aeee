import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, loadClassifier } from '../model/src/index';
import { DEFAULT_MAX_PIXELS, preprocessPhoto } from '../model/src/preprocess';
import { median } from '../model/train/latency';
import { IMAGE_MALLOC_ENV, startServer } from '../tools/shared/service-process';
import { childOutput } from './child-output';
import { processCpuSeconds } from './proc-usage';

/**
 * The service's share of a photo's time (issue 24): the same photo through the compiled service over HTTP (one
 * worker, wasm, labels off) and through the classifier alone in this process, as bench/networks.ts times a
 * network, round by round in turns, so a busy machine slows both alike. Per request it reads the service's own
 * timings (decodeMs, queueMs, inferenceMs, totalMs) and the client's round trip; per round, the CPU the service
 * process spent (all its threads) against the CPU of the classifier's calls here. CPU time is what a core
 * actually did: it does not count the time a thread waited for a core, which on a shared machine is most of
 * the noise in wall-clock times. It also lists what TF.js's kernels take of one classification (tf.profile). With
 * `labels`, each answer is followed by the labels store's work (the photo scaled to 512 px and written to PGlite),
 * on the same CPUs as the next request, as `npm start` runs the service.
 */

export interface ServiceTimeRow {
  model: string;
  photo: string;
  rounds: number;
  requestsPerRound: number;
  /** the classifier alone, in this process: median over rounds of each round's median */
  networkMs: number;
  /** CPU per classification, the classifier alone */
  networkCpuMs: number;
  /** the service's own timings, medians over rounds of each round's median */
  service: { decodeMs: number; queueMs: number; inferenceMs: number; totalMs: number; clientMs: number };
  /** CPU the service process spent per request, all threads (HTTP, decoding, hand-off, inference) */
  serviceCpuMs: number;
  /** inferenceMs / networkMs per round, for the spread */
  roundRatios: number[];
  /** share of one classification's kernel time, by kernel (tf.profile), largest first */
  kernels: { name: string; ms: number }[];
}

interface Options {
  server: string;
  photo: string;
  rounds: number;
  perRound: number;
  /** labels on, in a fresh embedded store, as `npm start` runs: each answer is followed by the store's work */
  labels?: boolean;
}

interface Timings {
  decodeMs: number;
  queueMs: number;
  inferenceMs: number;
  totalMs: number;
}

async function measure(opts: Options): Promise<ServiceTimeRow> {
  await initBackend('wasm');
  const classifier = await loadClassifier();
  const photo = fs.readFileSync(opts.photo);
  // The very pixels the service will classify: the network is timed on the same input.
  const { rgb } = await preprocessPhoto(photo, {
    view: classifier.view,
    maxPixels: DEFAULT_MAX_PIXELS,
    decoder: 'sharp',
  });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-bench-time-'));
  const server = await startServer({
    command: [process.execPath, opts.server],
    env: {
      WORKERS: '1',
      TFJS_BACKEND: 'wasm',
      LABELS: opts.labels ? 'on' : 'off',
      LABEL_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...IMAGE_MALLOC_ENV,
    },
    timeoutMs: 300_000,
  });
  await server.waitReady(300_000);
  const pid = server.proc.pid!;
  const body = Uint8Array.from(photo);
  const request = async () => {
    const started = performance.now();
    const res = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body,
    });
    const answer = (await res.json()) as { timings?: Timings };
    if (res.status !== 200 || !answer.timings) throw new Error(`POST /predict answered ${res.status}`);
    return { ...answer.timings, clientMs: performance.now() - started };
  };
  try {
    // wasm code is compiled twice (a baseline tier first): both sides run past it before anything is timed.
    for (let i = 0; i < 20; i++) {
      await classifier.classify([rgb]);
      await request();
    }
    const rounds: {
      network: number[];
      networkCpuMs: number;
      service: (Timings & { clientMs: number })[];
      cpuMs: number;
    }[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const network: number[] = [];
      let networkCpuMs = 0;
      const service: (Timings & { clientMs: number })[] = [];
      let cpuMs = 0;
      const timeNetwork = async () => {
        const cpu = process.cpuUsage();
        for (let i = 0; i < opts.perRound; i++) {
          const started = performance.now();
          await classifier.classify([rgb]);
          network.push(performance.now() - started);
        }
        const used = process.cpuUsage(cpu);
        networkCpuMs = (used.user + used.system) / 1000 / opts.perRound;
      };
      const timeService = async () => {
        const cpu = processCpuSeconds(pid);
        for (let i = 0; i < opts.perRound; i++) service.push(await request());
        cpuMs = ((processCpuSeconds(pid) - cpu) * 1000) / opts.perRound;
      };
      // Turns alternate, so neither side always runs right after the other.
      if (round % 2 === 0) {
        await timeNetwork();
        await timeService();
      } else {
        await timeService();
        await timeNetwork();
      }
      rounds.push({ network, networkCpuMs, service, cpuMs });
    }
    const perRound = (pick: (r: (typeof rounds)[number]) => number) => median(rounds.map(pick));
    const serviceMedian = (key: keyof Timings | 'clientMs') =>
      perRound((r) => median(r.service.map((t) => t[key])));

    const profile = await tf.profile(async () => {
      await classifier.classify([rgb]);
    });
    const byKernel = new Map<string, number>();
    for (const k of profile.kernels) {
      byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ((await k.kernelTimeMs) as number));
    }
    const { info } = classifier;
    return {
      model: `${info.name} ${info.version}: ${info.architecture} at ${info.inputSize} px (${info.engine})`,
      photo: `${path.basename(opts.photo)} (${Math.round(photo.length / 1024)} kB)`,
      rounds: opts.rounds,
      requestsPerRound: opts.perRound,
      networkMs: perRound((r) => median(r.network)),
      networkCpuMs: perRound((r) => r.networkCpuMs),
      service: {
        decodeMs: serviceMedian('decodeMs'),
        queueMs: serviceMedian('queueMs'),
        inferenceMs: serviceMedian('inferenceMs'),
        totalMs: serviceMedian('totalMs'),
        clientMs: serviceMedian('clientMs'),
      },
      serviceCpuMs: perRound((r) => r.cpuMs),
      roundRatios: rounds.map((r) => median(r.service.map((t) => t.inferenceMs)) / median(r.network)),
      // tf.profile reports each op and the kernel it runs under; the kernels (capitalised) are what ran.
      kernels: [...byKernel]
        .filter(([name]) => /^[A-Z]/.test(name))
        .map(([name, ms]) => ({ name, ms }))
        .sort((a, b) => b.ms - a.ms),
    };
  } finally {
    classifier.dispose();
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Runs the measurement in a process of its own (TF.js keeps one backend per process) and returns its row. */
export async function benchServiceTime(opts: Options): Promise<ServiceTimeRow> {
  const { code, out, err } = await childOutput(
    process.execPath,
    ['--import', 'tsx', __filename, JSON.stringify(opts)],
    { ...process.env, BENCH_SERVICE_TIME_CHILD: '1' },
  );
  const last = out.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as ServiceTimeRow;
  } catch {
    throw new Error(
      `bench/service-time exited ${code}: ${(err || out).trim().split('\n').slice(-3).join(' ')}`,
    );
  }
}

if (process.env.BENCH_SERVICE_TIME_CHILD === '1' && require.main === module) {
  measure(JSON.parse(process.argv[2]!) as Options).then(
    (row) => {
      console.log(JSON.stringify(row));
      process.exit(0);
    },
    (err: Error) => {
      console.error(err.stack ?? err.message);
      process.exit(1);
    },
  );
}
