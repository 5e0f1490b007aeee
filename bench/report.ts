import type { DecodeRow } from './decoders';
import type { ColdStartRow, LoadRow } from './http';
import { BATCH_SIZES, type InferenceRow } from './inference';
import { mb, ms, ratio, verdict } from './format';

export interface Machine {
  date: string;
  os: string;
  cpu: string;
  memoryBytes: number;
  loadAverage: number[];
  node: string;
  sharp: string;
  tfjs: string;
}

export interface ReportInput {
  machine: Machine;
  loadAverageAfter: number[];
  command: string;
  inputSize: number;
  decode: DecodeRow[];
  inference: InferenceRow[];
  coldStart: ColdStartRow[];
  load: LoadRow[];
  photoBytes: number;
  minutes: number;
}

const GOALS = {
  decode12MpMs: 20,
  decodeSpeedup: 40,
  workerScaling: 1.8,
  healthP99Ms: 50,
  coldStartMs: 3000,
  rssBytes: 300 * 1024 * 1024,
};

const table = (head: string[], rows: (string | number)[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

export function renderReport(r: ReportInput): string {
  const m = r.machine;
  const load1 = r.load.find((l) => l.workers === 1);
  const load2 = r.load.find((l) => l.workers === 2);
  const scaling = load1 && load2 ? load2.throughput / load1.throughput : NaN;
  const mp12 = r.decode.find((d) => d.label === '12 MP');
  const speedup12 = mp12 ? mp12.medianMs.jimp / mp12.medianMs.sharp : NaN;
  const cold1 = r.coldStart.find((c) => c.workers === 1);
  const healthP99 = Math.max(...r.load.map((l) => l.healthP99));
  const rssMax = Math.max(...r.load.map((l) => l.rssMedianBytes));
  const served = r.load[0] ?? r.coldStart[0];

  const goals = table(
    ['goal', 'measured', 'verdict'],
    [
      [
        `decode + resize 12 MP with sharp ≤ ${GOALS.decode12MpMs} ms`,
        mp12 ? ms(mp12.medianMs.sharp) : 'n/a',
        verdict(!!mp12 && mp12.medianMs.sharp <= GOALS.decode12MpMs),
      ],
      [
        `sharp ≥ ${GOALS.decodeSpeedup}× faster than jimp at 12 MP`,
        ratio(speedup12),
        verdict(speedup12 >= GOALS.decodeSpeedup),
      ],
      [
        `throughput 2 workers / 1 worker ≥ ${GOALS.workerScaling}×`,
        ratio(scaling),
        verdict(scaling >= GOALS.workerScaling),
      ],
      [
        `/healthz p99 under saturation ≤ ${GOALS.healthP99Ms} ms`,
        ms(healthP99, 0),
        verdict(healthP99 <= GOALS.healthP99Ms),
      ],
      [
        `cold start to ready ≤ ${GOALS.coldStartMs / 1000} s (1 worker)`,
        cold1 ? ms(cold1.medianMs, 0) : 'n/a',
        verdict(!!cold1 && cold1.medianMs <= GOALS.coldStartMs),
      ],
      [
        `RSS at steady load ≤ ${mb(GOALS.rssBytes)} (median, worst config)`,
        mb(rssMax),
        verdict(rssMax <= GOALS.rssBytes),
      ],
    ],
  );

  const decode = table(
    ['photo', 'JPEG size', 'sharp median', 'jimp median', 'jimp / sharp', 'runs (sharp, jimp)'],
    r.decode.map((d) => [
      `${d.label} (${d.width}×${d.height})`,
      `${(d.jpegBytes / 1024).toFixed(0)} kB`,
      ms(d.medianMs.sharp),
      ms(d.medianMs.jimp),
      ratio(d.medianMs.jimp / d.medianMs.sharp),
      `${d.runs.sharp}, ${d.runs.jimp}`,
    ]),
  );

  const inference = table(
    [
      'backend asked',
      'backend ran',
      'model',
      'view',
      ...BATCH_SIZES.map((b) => `per image, batch ${b}`),
      'load',
    ],
    r.inference.map((i) =>
      i.error
        ? [
            i.backend,
            `not available: ${i.error.replace(/\|/g, '/').split(/(?<=[.;])\s/)[0]}`,
            '',
            '',
            ...BATCH_SIZES.map(() => ''),
            '',
          ]
        : [
            i.backend,
            i.ran ?? '?',
            i.model ?? '?',
            `${i.inputSize}×${i.inputSize}`,
            ...BATCH_SIZES.map(
              (b) => `${ms(i.perImageMs?.[String(b)] ?? NaN)} (${i.runs?.[String(b)]} runs)`,
            ),
            ms(i.loadMs ?? NaN, 0),
          ],
    ),
  );

  const loadTable = table(
    [
      'workers',
      'throughput',
      'p50',
      'p99',
      'requests',
      'status codes',
      'errors',
      '/healthz p99',
      'RSS median (max)',
      'server CPU',
      'req per server CPU-second',
      'machine CPU busy',
    ],
    r.load.map((l) => [
      l.workers,
      `${l.throughput.toFixed(1)} req/s`,
      ms(l.p50, 0),
      ms(l.p99, 0),
      l.requests,
      Object.entries(l.statuses)
        .map(([code, n]) => `${code}: ${n}`)
        .join(', '),
      l.errors,
      `${ms(l.healthP99, 0)} (${l.healthRequests} probes)`,
      `${mb(l.rssMedianBytes)} (${mb(l.rssMaxBytes)})`,
      `${l.serverCores.toFixed(2)} cores`,
      (l.throughput / l.serverCores).toFixed(1),
      `${(l.machineBusy * 100).toFixed(0)} %`,
    ]),
  );

  const cold = table(
    ['workers', 'median to /readyz', 'runs'],
    r.coldStart.map((c) => [
      c.workers,
      ms(c.medianMs, 0),
      c.runs.map((t) => Math.round(t)).join(', ') + ' ms',
    ]),
  );

  return `# GourmetGram benchmark report

Written by \`${r.command}\` (bench/main.ts) on ${m.date}, in ${r.minutes.toFixed(1)} minutes. Every number below
comes from that one run, measured side by side on the machine described here; medians unless a column says
otherwise. Rerun it on your machine to compare: absolute times move with the hardware, the ratios much less.

## Machine
| | |
|---|---|
| CPU | ${m.cpu} |
| memory | ${mb(m.memoryBytes)} |
| OS | ${m.os} |
| Node | ${m.node} |
| sharp | ${m.sharp} |
| TF.js | ${m.tfjs} |
| load average before / after (1, 5, 15 min) | ${m.loadAverage.map((x) => x.toFixed(1)).join(', ')} / ${r.loadAverageAfter.map((x) => x.toFixed(1)).join(', ')} |

A load average above the CPU count means other work shared the machine during the run: every figure, and
above all the worker-scaling ratio, is then a lower bound on what the service does on cores of its own.

## Goals
${goals}

## Decode and resize to the model's input (${r.inputSize}×${r.inputSize}, cover), jimp vs sharp
\`preprocessPhoto\` from model/src/preprocess.ts, in process, one photo at a time. The photos are the service's bundled
test photo scaled to each size with mild noise added, saved as JPEG quality 90 (so they compress like photos).

${decode}

## Inference per image
\`classify()\` from model/src on random pixels, in a fresh process per backend (each backend as a worker
thread starts it), after 20 warm-up calls (one on cpu) so that wasm runs its optimised code as a long-lived
worker does. The input is the model's view (its metadata); the network resizes it to its own input. A backend this machine does not
have is listed with the reason.

${inference}

## End to end over HTTP
\`node dist/service/src/main.js\` (the image's command) on 127.0.0.1, \`TFJS_BACKEND=auto\` (ran:
${served?.tfjsBackend ?? '?'}), model ${served?.model ?? '?'}.
Load: autocannon in its own process, ${load1?.connections ?? '?'} connections POSTing a ${(r.photoBytes / 1024).toFixed(0)} kB
640×480 JPEG to /predict for ${load1?.durationS ?? '?'} s after a 5 s warm-up. Meanwhile a second autocannon sends
20 /healthz probes a second; RSS is the server process's (all its worker threads) sampled every 0.5 s.

${loadTable}

Throughput ratio, 2 workers / 1 worker: **${ratio(scaling)}**. Server CPU is what the service process (its
event loop, libvips threads and inference workers) used during the run; when the machine is near 100 % busy, a
second worker has no core of its own to run on (the load generator needs one too), and requests per server
CPU-second, not the throughput ratio, say how efficiently each configuration works.

## Cold start
From spawning the process to \`/readyz\` answering 200 (the model loaded and warmed in every worker), polled
every 20 ms.

${cold}
`;
}
