import type { DecodeRow } from './decoders';
import type { ColdStartRow, LoadRow } from './http';
import { BATCH_SIZES, type InferenceRow } from './inference';
import { loadAverage, mib, ms, ratio, verdict } from './format';
import { median } from '../model/train/latency';
import type { ServiceTimeRow } from './service-time';
import type { StoreMemoryRow } from './store-memory';
import type { ThroughputRow } from './throughput';

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
  /** this checkout's service, and a baseline checkout's when --baseline named one */
  serviceTime: { name: string; row: ServiceTimeRow }[];
  throughput: ThroughputRow[];
  throughputRun: { connections: number; durationS: number; rounds: number };
  /** the throughput row of today's service without batching, and of the baseline checkout, by name */
  throughputNames: { batching: string; single: string; baseline?: string };
  storeMemory: StoreMemoryRow[];
  /** where the memory benchmark's photos came from, in words */
  storePhotos: string;
}

const GOALS = {
  decode12MpMs: 20,
  decodeSpeedup: 40,
  workerScaling: 1.8,
  healthP99Ms: 50,
  coldStartMs: 3000,
  rssBytes: 300 * 1024 * 1024,
  /** issue 24: the service's inferenceMs over the network's own time */
  serviceOverTime: 0.1,
  throughputOverBaseline: 2,
  podRssBytes: 300 * 1024 * 1024,
  npmStartRssBytes: 450 * 1024 * 1024,
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

function goalsTable(figures: ReturnType<typeof headlines>, input: ReportInput): string {
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
      ...issue24Goals(input),
    ],
  );
}

/** Issue 24's goals, from the sections that measure them; a goal whose measurement did not run says so. */
function issue24Goals(input: ReportInput): string[][] {
  const rows: string[][] = [];
  for (const { name, row } of input.serviceTime.filter((t) => t.name.startsWith('this checkout'))) {
    // Each round times both sides back to back: the median of the rounds' ratios is the paired comparison.
    const over = median(row.roundRatios) - 1;
    rows.push([
      `service \`inferenceMs\` within ${GOALS.serviceOverTime * 100} % of the network's own time (${name.replace('this checkout, ', '')})`,
      `${signedPercent(over)} (median of ${row.roundRatios.length} rounds' ratios; ${ms(row.service.inferenceMs)} against ${ms(row.networkMs)})`,
      verdict(over <= GOALS.serviceOverTime),
    ]);
  }
  const byName = (name?: string) => input.throughput.find((t) => t.name === name);
  const batching = byName(input.throughputNames.batching);
  const baseline = byName(input.throughputNames.baseline);
  if (batching && baseline) {
    const gain = batching.throughput / baseline.throughput;
    rows.push(
      [
        `\`GET /test\` with ${input.throughputRun.connections} clients ≥ ${GOALS.throughputOverBaseline}× the baseline's requests per second`,
        `${ratio(gain)} (${batching.throughput.toFixed(1)} against ${baseline.throughput.toFixed(1)} req/s)`,
        verdict(gain >= GOALS.throughputOverBaseline),
      ],
      (() => {
        // Round by round (both run in every round), so the machine's mood falls on both alike.
        const slower = median(batching.roundSingles.map((x, i) => x / baseline.roundSingles[i]!)) - 1;
        return [
          "one user's latency no worse than the baseline's (within 5 %)",
          `${signedPercent(slower)} (median of the rounds' ratios; ${ms(batching.singleP50, 0)} against ${ms(baseline.singleP50, 0)})`,
          verdict(slower <= 0.05),
        ];
      })(),
    );
  }
  // A pod runs with DATABASE_URL (the issue's goal), or with labels off; PGlite is for one process on a laptop.
  const pod = input.storeMemory.filter((r) => r.name === 'labels on, PostgreSQL' || r.name === 'labels off');
  if (pod.length > 0) {
    const worst = Math.max(...pod.map((r) => r.peak));
    rows.push([
      `peak RSS as a pod runs it (one worker; PostgreSQL, and labels off) ≤ ${mib(GOALS.podRssBytes)} at ${[...new Set(pod.map((r) => r.clients))].join(' and ')} clients`,
      `${mib(worst)} (${pod.map((r) => `${r.name}, ${r.clients} client${r.clients > 1 ? 's' : ''}: ${mib(r.peak)}`).join('; ')})`,
      verdict(worst <= GOALS.podRssBytes),
    ]);
  }
  // The issue's goal is someone trying it on a laptop: photos sent one at a time; more clients are shown beside it.
  const npmStart = input.storeMemory.filter((r) => r.name.startsWith('`npm start`'));
  const oneAtATime = npmStart.find((r) => r.clients === 1);
  if (oneAtATime) {
    rows.push([
      `peak RSS of \`npm start\` with nothing configured ≤ ${mib(GOALS.npmStartRssBytes)}, photos sent one at a time`,
      `${mib(oneAtATime.peak)} (${npmStart.map((r) => `${r.clients} client${r.clients > 1 ? 's' : ''}: ${mib(r.peak)}`).join('; ')})`,
      verdict(oneAtATime.peak <= GOALS.npmStartRssBytes),
    ]);
  }
  // This checkout's embedded stores; the baseline's readiness never waited for its store.
  const atReady = input.storeMemory.filter(
    (r) => r.accuracyAtReady !== undefined && !r.name.startsWith('baseline'),
  );
  if (atReady.length > 0) {
    rows.push([
      'no 503 from `/accuracy` once `/readyz` says ready (embedded store, fresh folder)',
      atReady.map((r) => `${r.accuracyAtReady}`).join(', '),
      verdict(atReady.every((r) => r.accuracyAtReady === 200)),
    ]);
  }
  return rows;
}

const signedPercent = (x: number) =>
  Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)} %` : 'n/a';

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
      '',
      '',
      '',
    ];
  return [
    row.backend,
    row.ran ?? '?',
    row.model ?? '?',
    `${row.inputSize}×${row.inputSize}`,
    `${ms(row.perImageMs?.['1'] ?? NaN)} (${row.runs?.['1']} runs)`,
    ms(row.cpuPerImageMs?.['1'] ?? NaN),
    ms(row.loadMs ?? NaN, 0),
  ];
}

function inferenceTable(rows: InferenceRow[]): string {
  return table(
    ['backend asked', 'backend ran', 'model', 'view', 'per image (wall)', 'per image (CPU)', 'load'],
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

/** What each batch size costs per photo on wasm, against batch 1, and the wasm memory it leaves resident. */
function batchingSection(rows: InferenceRow[]): string {
  const wasm = rows.find((r) => r.ran === 'wasm' && r.perImageMs);
  if (!wasm) return '## Batching on wasm\nNot measured: the wasm backend did not run.';
  const one = { wall: wasm.perImageMs!['1']!, cpu: wasm.cpuPerImageMs?.['1'] ?? NaN };
  const body = table(
    [
      'batch',
      'per photo (wall)',
      'per photo (CPU)',
      'CPU per photo / batch 1',
      'wasm memory resident after it',
      'calls',
    ],
    BATCH_SIZES.map((b) => {
      const key = String(b);
      const cpu = wasm.cpuPerImageMs?.[key] ?? NaN;
      return [
        b,
        ms(wasm.perImageMs![key] ?? NaN),
        ms(cpu),
        ratio(cpu / one.cpu),
        wasm.wasmHeapBytes?.[key] !== undefined ? mib(wasm.wasmHeapBytes[key]) : 'n/a',
        wasm.runs?.[key] ?? '',
      ];
    }),
  );
  return `## Batching on wasm: what a photo costs by batch size
The same process as above (wasm), the batch sizes taking turns round by round: wall time per photo, and CPU time
per photo (this process's, all threads), which does not count the time it waited for a core on a shared machine.
wasm memory never shrinks: what a batch size leaves resident stays with each worker.

${body}`;
}

function serviceTimeSection(input: ReportInput): string {
  if (input.serviceTime.length === 0) return '';
  const first = input.serviceTime[0]!.row;
  const rows = input.serviceTime.map(({ name, row }) => {
    const t = row.service;
    const rest = t.totalMs - t.decodeMs - t.queueMs - t.inferenceMs;
    return [
      name,
      ms(row.networkMs),
      ms(t.inferenceMs),
      signedPercent(median(row.roundRatios) - 1),
      ms(t.decodeMs),
      ms(t.queueMs),
      ms(rest),
      ms(t.totalMs),
      ms(t.clientMs),
      `${ms(row.serviceCpuMs)} / ${ms(row.networkCpuMs)}`,
      row.roundRatios.map((r) => r.toFixed(2)).join(', '),
    ];
  });
  const kernelTotal = first.kernels.reduce((a, k) => a + k.ms, 0);
  const kernels = first.kernels
    .slice(0, 6)
    .map((k) => `${k.name} ${((k.ms / kernelTotal) * 100).toFixed(1)} %`)
    .join(', ');
  return `## The service's share of a photo's time
${first.photo} POSTed to \`/predict\` (a JSON answer), one request at a time, to the compiled service (one worker,
wasm; labels as the row says: on, each answer is followed by the store's work, as \`npm start\` runs), and the same photo's view classified by the same network in the measuring process, as
\`bench/networks.ts\` times it: ${first.rounds} rounds of ${first.requestsPerRound} each, the two sides taking turns (bench/service-time.ts). ${first.model}.
\`inferenceMs\` is what the worker reports for the network; decode, queue (the hand-off to the worker and back) and
the rest (HTTP, the answer) make up \`totalMs\`; the client's round trip adds the loopback connection. CPU per photo
is the service process's (all threads) against the network's alone: it does not count waiting for a core.

${table(['service', 'network alone', 'service inferenceMs', "over the network (median of the rounds' ratios)", 'decodeMs', 'queueMs', 'rest of totalMs', 'totalMs', 'client round trip', 'CPU per photo: service / network', 'inferenceMs / network, per round'], rows)}

What one classification's kernels take (tf.profile, wasm): ${kernels}. The scaling to [-1, 1] (RealDiv, Sub)
and the tensor's creation are a few tenths of a millisecond; the convolutions are the cost.`;
}

function throughputSection(input: ReportInput): string {
  if (input.throughput.length === 0) return '';
  const run = input.throughputRun;
  const rows = input.throughput.map((t) => [
    t.name,
    Object.entries(t.env)
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || 'defaults',
    `**${t.throughput.toFixed(1)} req/s**`,
    t.roundThroughputs.map((x) => x.toFixed(1)).join(', '),
    ms(t.p50, 0),
    ms(t.p99, 0),
    ms(t.singleP50, 0),
    ms(t.cpuMsPerRequest),
    Object.entries(t.statuses)
      .map(([code, n]) => `${code}: ${n}`)
      .join(', '),
  ]);
  return `## Throughput with and without batching
\`GET /test\` (the bundled photo, decoded and classified each time) from ${run.connections} autocannon clients without pause, as
\`siege -c ${run.connections}\` sends it, ${run.durationS} s per setting per round, ${run.rounds} rounds, the settings in a new random order
each round (bench/throughput.ts); then one client for half as long (one user's latency). Every setting's
process runs the whole time; wasm, labels off, the image's malloc settings.

${table(['setting', 'environment', 'throughput (200s)', 'per round', 'p50', 'p99', 'one user p50', 'server CPU per request', 'statuses'], rows)}${throughputCeiling(input)}`;
}

/**
 * What the machine's cores could serve at most if the network were the only work: a throughput goal above it
 * cannot be met by the service's own overhead, only by a cheaper network or more cores.
 */
function throughputCeiling(input: ReportInput): string {
  const networkCpuMs = input.inference.find((r) => r.backend === 'wasm')?.cpuPerImageMs?.['1'];
  const cpus = Number(/\((\d+) usable\)/.exec(input.machine.cpu)?.[1]);
  if (!networkCpuMs || !cpus) return '';
  const ceiling = (cpus * 1000) / networkCpuMs;
  const best = Math.max(...input.throughput.map((t) => t.throughput));
  const baseline = input.throughput.find((t) => t.name === input.throughputNames.baseline);
  return (
    `\n\nThe ceiling: the network alone costs ${ms(networkCpuMs)} of CPU a photo on wasm (batch 1, "Inference per image"), so ` +
    `${cpus} cores running nothing else, not even the load generator, could classify at most ${ceiling.toFixed(1)} photos a second; ` +
    `the best setting here reached ${best.toFixed(1)} req/s (${((100 * best) / ceiling).toFixed(0)} % of it)` +
    (baseline
      ? `, and ${GOALS.throughputOverBaseline}× the baseline would be ${(GOALS.throughputOverBaseline * baseline.throughput).toFixed(1)} req/s.`
      : '.')
  );
}

function storeMemorySection(input: ReportInput): string {
  if (input.storeMemory.length === 0) return '';
  const rows = input.storeMemory.map((r) => [
    r.name,
    r.workers,
    r.clients,
    r.photos,
    mib(r.idle),
    mib(r.median),
    mib(r.sampledMax),
    `**${mib(r.peak)}**`,
    `${r.slope >= 0 ? '+' : '−'}${mib(Math.abs(r.slope), 1)}`,
    mib(r.breakdown.wasm),
    mib(r.breakdown.brk),
    mib(r.breakdown.anonymous),
    mib(r.breakdown.files),
    Object.entries(r.statuses)
      .map(([code, n]) => `${code}: ${n}`)
      .join(', '),
    r.labelsDropped ?? '',
  ]);
  return `## Memory with labels off, on PostgreSQL and on PGlite
${input.storePhotos} Each setting's process runs the whole time and the photos go to each in turn, 25 at a time, in
a new random order each time (bench/store-memory.ts); a photo is POSTed to \`/predict\` as itself (a JSON answer),
and with labels on it is queued and its 512 px copy written to the store. RSS (VmRSS, all threads) is read after
every 25 photos: median and max from the 100th photo on, peak is the kernel's VmHWM over the whole run, slope the
trend over the second half per 1,000 photos. Idle is once \`/readyz\` said ready (a fresh embedded store created and
open). Where the memory sits is /proc/<pid>/smaps at the end (wasm: the model's heap and PGlite's).

${table(['setting', 'workers', 'clients', 'photos', 'idle', 'median', 'max', 'peak (VmHWM)', 'slope, 2nd half', 'wasm', 'glibc brk heap', 'other anonymous', 'files', 'statuses', 'predictions the labels queue dropped'], rows)}`;
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
${goalsTable(figures, input)}

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

${batchingSection(input.inference)}

${serviceTimeSection(input)}

${throughputSection(input)}

${storeMemorySection(input)}

${httpSection(input, figures)}

## Cold start
From spawning the process to \`/readyz\` answering 200 (the model loaded and warmed in every worker), polled
every 20 ms.

${coldStartTable(input.coldStart)}
`;
}
