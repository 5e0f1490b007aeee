import type { DecodeRow } from './decoders';
import type { ColdStartRow, LoadRow } from './http';
import { BATCH_SIZES, type InferenceRow } from './inference';
import { loadAverage, mib, ms, ratio, verdict } from './format';

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

/** The figures the goals are judged on, picked from the rows. */
function headlines(input: ReportInput) {
  const load1 = input.load.find((l) => l.workers === 1);
  const load2 = input.load.find((l) => l.workers === 2);
  const decode12Mp = input.decode.find((d) => d.label === '12 MP');
  return {
    load1,
    workerScaling: load1 && load2 ? load2.throughput / load1.throughput : NaN,
    decode12Mp,
    speedup12Mp: decode12Mp ? decode12Mp.medianMs.jimp / decode12Mp.medianMs.sharp : NaN,
    coldStart1: input.coldStart.find((c) => c.workers === 1),
    healthP99: Math.max(...input.load.map((l) => l.healthP99)),
    rssMax: Math.max(...input.load.map((l) => l.rssMedianBytes)),
  };
}

function goalsTable(figures: ReturnType<typeof headlines>): string {
  const { decode12Mp, speedup12Mp, workerScaling, healthP99, coldStart1, rssMax } = figures;
  return table(
    ['goal', 'measured', 'verdict'],
    [
      [
        `decode + resize 12 MP with sharp ≤ ${GOALS.decode12MpMs} ms`,
        decode12Mp ? ms(decode12Mp.medianMs.sharp) : 'n/a',
        verdict(!!decode12Mp && decode12Mp.medianMs.sharp <= GOALS.decode12MpMs),
      ],
      [
        `sharp ≥ ${GOALS.decodeSpeedup}× faster than jimp at 12 MP`,
        ratio(speedup12Mp),
        verdict(speedup12Mp >= GOALS.decodeSpeedup),
      ],
      [
        `throughput 2 workers / 1 worker ≥ ${GOALS.workerScaling}×`,
        ratio(workerScaling),
        verdict(workerScaling >= GOALS.workerScaling),
      ],
      [
        `/healthz p99 under saturation ≤ ${GOALS.healthP99Ms} ms`,
        ms(healthP99, 0),
        verdict(healthP99 <= GOALS.healthP99Ms),
      ],
      [
        `cold start to ready ≤ ${GOALS.coldStartMs / 1000} s (1 worker)`,
        coldStart1 ? ms(coldStart1.medianMs, 0) : 'n/a',
        verdict(!!coldStart1 && coldStart1.medianMs <= GOALS.coldStartMs),
      ],
      [
        `RSS at steady load ≤ ${mib(GOALS.rssBytes)} (median, worst config)`,
        mib(rssMax),
        verdict(rssMax <= GOALS.rssBytes),
      ],
    ],
  );
}

function decodeTable(rows: DecodeRow[]): string {
  return table(
    ['photo', 'JPEG size', 'sharp median', 'jimp median', 'jimp / sharp', 'runs (sharp, jimp)'],
    rows.map((d) => [
      `${d.label} (${d.width}×${d.height})`,
      `${(d.jpegBytes / 1024).toFixed(0)} kB`,
      ms(d.medianMs.sharp),
      ms(d.medianMs.jimp),
      ratio(d.medianMs.jimp / d.medianMs.sharp),
      `${d.runs.sharp}, ${d.runs.jimp}`,
    ]),
  );
}

/** A backend that could not run keeps its row, with the first sentence of why. */
function inferenceCells(row: InferenceRow): string[] {
  if (row.error)
    return [
      row.backend,
      `not available: ${row.error.replace(/\|/g, '/').split(/(?<=[.;])\s/)[0]}`,
      '',
      '',
      ...BATCH_SIZES.map(() => ''),
      '',
    ];
  return [
    row.backend,
    row.ran ?? '?',
    row.model ?? '?',
    `${row.inputSize}×${row.inputSize}`,
    ...BATCH_SIZES.map((b) => `${ms(row.perImageMs?.[String(b)] ?? NaN)} (${row.runs?.[String(b)]} runs)`),
    ms(row.loadMs ?? NaN, 0),
  ];
}

function inferenceTable(rows: InferenceRow[]): string {
  return table(
    [
      'backend asked',
      'backend ran',
      'model',
      'view',
      ...BATCH_SIZES.map((b) => `per image, batch ${b}`),
      'load',
    ],
    rows.map(inferenceCells),
  );
}

function loadTable(rows: LoadRow[]): string {
  return table(
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
    rows.map((l) => [
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
      `${mib(l.rssMedianBytes)} (${mib(l.rssMaxBytes)})`,
      `${l.serverCores.toFixed(2)} cores`,
      (l.throughput / l.serverCores).toFixed(1),
      `${(l.machineBusy * 100).toFixed(0)} %`,
    ]),
  );
}

function coldStartTable(rows: ColdStartRow[]): string {
  return table(
    ['workers', 'median to /readyz', 'runs'],
    rows.map((c) => [c.workers, ms(c.medianMs, 0), c.runs.map((t) => Math.round(t)).join(', ') + ' ms']),
  );
}

function machineSection(input: ReportInput): string {
  const machine = input.machine;
  return `## Machine
| | |
|---|---|
| CPU | ${machine.cpu} |
| memory | ${mib(machine.memoryBytes)} |
| OS | ${machine.os} |
| Node | ${machine.node} |
| sharp | ${machine.sharp} |
| TF.js | ${machine.tfjs} |
| load average before / after (1, 5, 15 min) | ${loadAverage(machine.loadAverage)} / ${loadAverage(input.loadAverageAfter)} |

A load average above the CPU count means other work shared the machine during the run: every figure, and
above all the worker-scaling ratio, is then a lower bound on what the service does on cores of its own.`;
}

function httpSection(input: ReportInput, figures: ReturnType<typeof headlines>): string {
  const served = input.load[0] ?? input.coldStart[0];
  return `## End to end over HTTP
\`node dist/service/src/main.js\` (the image's command) on 127.0.0.1, \`TFJS_BACKEND=auto\` (ran:
${served?.tfjsBackend ?? '?'}), model ${served?.model ?? '?'}.
Load: autocannon in its own process, ${figures.load1?.connections ?? '?'} connections POSTing a ${(input.photoBytes / 1024).toFixed(0)} kB
640×480 JPEG to /predict for ${figures.load1?.durationS ?? '?'} s after a 5 s warm-up. Meanwhile a second autocannon sends
20 /healthz probes a second; RSS is the server process's (all its worker threads) sampled every 0.5 s.

${loadTable(input.load)}

Throughput ratio, 2 workers / 1 worker: **${ratio(figures.workerScaling)}**. Server CPU is what the service process (its
event loop, libvips threads and inference workers) used during the run; when the machine is near 100 % busy, a
second worker has no core of its own to run on (the load generator needs one too), and requests per server
CPU-second, not the throughput ratio, say how efficiently each configuration works.`;
}

export function renderReport(input: ReportInput): string {
  const figures = headlines(input);
  return `# GourmetGram benchmark report

Written by \`${input.command}\` (bench/main.ts) on ${input.machine.date}, in ${input.minutes.toFixed(1)} minutes. Every number below
comes from that one run, measured side by side on the machine described here; medians unless a column says
otherwise. Rerun it on your machine to compare: absolute times move with the hardware, the ratios much less.

${machineSection(input)}

## Goals
${goalsTable(figures)}

## Decode and resize to the model's input (${input.inputSize}×${input.inputSize}, cover), jimp vs sharp
\`preprocessPhoto\` from model/src/preprocess.ts, in process, one photo at a time. The photos are the service's bundled
test photo scaled to each size with mild noise added, saved as JPEG quality 90 (so they compress like photos).

${decodeTable(input.decode)}

## Inference per image
\`classify()\` from model/src on random pixels, in a fresh process per backend (each backend as a worker
thread starts it), after 20 warm-up calls (one on cpu) so that wasm runs its optimised code as a long-lived
worker does. The input is the model's view (its metadata); the network resizes it to its own input. A backend this machine does not
have is listed with the reason.

${inferenceTable(input.inference)}

${httpSection(input, figures)}

## Cold start
From spawning the process to \`/readyz\` answering 200 (the model loaded and warmed in every worker), polled
every 20 ms.

${coldStartTable(input.coldStart)}
`;
}
