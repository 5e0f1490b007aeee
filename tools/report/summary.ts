import { ascending, mean, percentile } from '../../model/train/latency';
import type { LiveAccuracy, ModelAccuracy } from './accuracy';
import type { ResourceRecord, Run } from './read-run';

/** One strategy's line in the comparison table. NaN = not measured (printed "n/a"). */
export interface RunSummary {
  run: string;
  stages: number;
  /** Σ Elap Time over the siege log */
  duration_s: number;
  okay: number;
  /** the course's transaction rate: Σ OKAY / duration */
  trans_rate: number;
  /** the course's response time: Σ(OKAY × Resp Time) / Σ OKAY */
  resp_time_s: number;
  /** over every successful request of the run (requests.csv) */
  p50_ms: number;
  p99_ms: number;
  /** failed requests (timeout, connection, non-2xx, 503) / requests, from latency.csv */
  error_rate: number;
  /** monitor samples taken while the load ran */
  samples: number;
  mean_replicas: number;
  mean_ready: number;
  cpu_req_core: number;
  cpu_use_core: number;
  mem_req_KB: number;
  mem_use_KB: number;
  accuracy: number;
  accuracy_source: string;
  /** held-out accuracy from users' labels (the run's accuracy.json), its 95 % Wilson interval and sample size */
  live_accuracy: number;
  live_accuracy_low: number;
  live_accuracy_high: number;
  live_accuracy_n: number;
  /** what the service said it ran (run.json): name version (architecture, TF.js backend) */
  model: string;
}

/** Samples from the first stage's start to the last stage's end: idle minutes before or after do not dilute. */
export function samplesDuringLoad(run: Run): ResourceRecord[] {
  if (!run.resources || run.stages.length === 0) return [];
  const from = Math.min(...run.stages.map((s) => s.startedAt));
  const to = Math.max(...run.stages.map((s) => s.endedAt));
  return run.resources.filter((r) => r.time >= from && r.time <= to);
}

const present = (values: (number | null)[]) => values.filter((v): v is number => v !== null);

export function summariseRun(
  run: Run,
  accuracy: ModelAccuracy | null,
  live: LiveAccuracy | null = null,
): RunSummary {
  const duration = run.siege.reduce((sum, entry) => sum + entry.elapsedSeconds, 0);
  const okay = run.siege.reduce((sum, entry) => sum + entry.okay, 0);
  const okaySeconds = run.siege.reduce((sum, entry) => sum + entry.okay * entry.respTimeSeconds, 0);
  const requests = run.stages.reduce((sum, stage) => sum + stage.requests, 0);
  const failed = run.stages.reduce((sum, stage) => sum + stage.failed, 0);
  const latencies = run.okLatenciesMs ? ascending(run.okLatenciesMs) : [];
  const samples = samplesDuringLoad(run);
  return {
    run: run.name,
    stages: run.siege.length,
    duration_s: duration,
    okay,
    trans_rate: duration > 0 ? okay / duration : NaN,
    resp_time_s: okay > 0 ? okaySeconds / okay : NaN,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    error_rate: requests > 0 ? failed / requests : NaN,
    samples: samples.length,
    mean_replicas: mean(samples.map((s) => s.nReplica)),
    mean_ready: mean(present(samples.map((s) => s.nReady))),
    cpu_req_core: mean(samples.map((s) => s.cpuReqCore)),
    cpu_use_core: mean(present(samples.map((s) => s.cpuUseCore))),
    mem_req_KB: mean(samples.map((s) => s.memReqKB)),
    mem_use_KB: mean(present(samples.map((s) => s.memUseKB))),
    accuracy: accuracy?.value ?? NaN,
    accuracy_source: accuracy?.source ?? '',
    live_accuracy: live?.value ?? NaN,
    live_accuracy_low: live?.low ?? NaN,
    live_accuracy_high: live?.high ?? NaN,
    live_accuracy_n: live?.n ?? NaN,
    model: run.modelInfo
      ? `${run.modelInfo.name ?? '?'} ${run.modelInfo.version ?? '?'} (${run.modelInfo.architecture ?? '?'}, ${run.modelInfo.tfjs_backend ?? '?'})`
      : '',
  };
}

interface Column {
  key: keyof RunSummary;
  title: string;
  format: (v: number) => string;
}

const fixed = (digits: number) => (v: number) => v.toFixed(digits);
const percent = (v: number) => `${(v * 100).toFixed(1)} %`;

const TABLE: Column[] = [
  { key: 'duration_s', title: 'duration (s)', format: fixed(0) },
  { key: 'okay', title: 'OKAY', format: fixed(0) },
  { key: 'trans_rate', title: 'trans rate (/s)', format: fixed(2) },
  { key: 'resp_time_s', title: 'resp time (s)', format: fixed(3) },
  { key: 'p50_ms', title: 'p50 (ms)', format: fixed(0) },
  { key: 'p99_ms', title: 'p99 (ms)', format: fixed(0) },
  { key: 'error_rate', title: 'errors', format: percent },
  { key: 'mean_replicas', title: 'replicas (mean)', format: fixed(2) },
  { key: 'mean_ready', title: 'ready (mean)', format: fixed(2) },
  { key: 'cpu_req_core', title: 'CPU req (cores)', format: fixed(2) },
  { key: 'cpu_use_core', title: 'CPU used (cores)', format: fixed(2) },
  { key: 'mem_req_KB', title: 'mem req (MiB)', format: (v) => (v / 1024).toFixed(0) },
  { key: 'mem_use_KB', title: 'mem used (MiB)', format: (v) => (v / 1024).toFixed(0) },
  { key: 'accuracy', title: 'accuracy', format: percent },
  { key: 'live_accuracy', title: 'live accuracy (held-out)', format: percent },
];

/** "[low – high], n = …" for the live accuracy, n/a without it. */
function liveInterval(s: RunSummary): string {
  if (!Number.isFinite(s.live_accuracy)) return 'n/a';
  return `${percent(s.live_accuracy_low)} – ${percent(s.live_accuracy_high)}, n = ${s.live_accuracy_n}`;
}

function cell(summary: RunSummary, column: Column): string {
  const v = summary[column.key] as number;
  return Number.isFinite(v) ? column.format(v) : 'n/a';
}

/** Runs side by side: one column per run, one line per figure, so three strategies read across. */
export function markdownTable(summaries: RunSummary[]): string {
  const header = `| | ${summaries.map((s) => s.run).join(' | ')} |`;
  const rule = `|---|${summaries.map(() => '---:').join('|')}|`;
  const lines = TABLE.map(
    (column) => `| ${column.title} | ${summaries.map((summary) => cell(summary, column)).join(' | ')} |`,
  );
  lines.push(`| live accuracy 95 % CI | ${summaries.map(liveInterval).join(' | ')} |`);
  lines.push(`| model served | ${summaries.map((s) => s.model || 'n/a').join(' | ')} |`);
  return [header, rule, ...lines].join('\n') + '\n';
}

export const SUMMARY_COLUMNS: (keyof RunSummary)[] = [
  'run',
  'stages',
  'duration_s',
  'okay',
  'trans_rate',
  'resp_time_s',
  'p50_ms',
  'p99_ms',
  'error_rate',
  'samples',
  'mean_replicas',
  'mean_ready',
  'cpu_req_core',
  'cpu_use_core',
  'mem_req_KB',
  'mem_use_KB',
  'accuracy',
  'accuracy_source',
  'live_accuracy',
  'live_accuracy_low',
  'live_accuracy_high',
  'live_accuracy_n',
  'model',
];
