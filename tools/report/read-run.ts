import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { RUN_FILES } from '../shared/run-files';
import { parseSiegeLog, type SiegeLogEntry } from '../shared/siege-log';

export interface StageRecord {
  stage: number;
  startedAt: number;
  endedAt: number;
  users: number;
  delaySeconds: number;
  requests: number;
  ok: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  failed: number;
}

export interface ResourceRecord {
  time: number;
  nReplica: number;
  nReady: number | null;
  cpuReqCore: number;
  memReqKB: number;
  cpuUseCore: number | null;
  memUseKB: number | null;
}

/** One strategy's measurements, as the load test and the monitor left them in its run directory. */
export interface Run {
  /** the directory's name: k8s, lb, hpa… */
  name: string;
  dir: string;
  siege: SiegeLogEntry[];
  stages: StageRecord[];
  /** latencies (ms) of every successful request; null when requests.csv is absent */
  okLatenciesMs: number[] | null;
  /** null when the monitor did not write resources.csv here */
  resources: ResourceRecord[] | null;
  modelInfo: Record<string, string> | null;
}

type Row = Record<string, string>;

function readCsv(file: string): Row[] {
  return parse(readFileSync(file, 'utf8'), { columns: true, trim: true, skip_empty_lines: true }) as Row[];
}

function numberIn(row: Row, column: string, file: string, line: number): number {
  const text = row[column];
  const value = Number(text);
  if (text === undefined || text === '' || !Number.isFinite(value)) {
    throw new Error(`${file}: row ${line} has no number in column "${column}"`);
  }
  return value;
}

/** empty cells (no successful request, metrics-server missing) are "not measured", not zero */
function optionalNumber(row: Row, column: string): number | null {
  const text = row[column];
  if (text === undefined || text === '') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

function timeIn(row: Row, column: string, file: string, line: number): number {
  const t = Date.parse(row[column] ?? '');
  if (Number.isNaN(t)) throw new Error(`${file}: row ${line} has no time in column "${column}"`);
  return t;
}

export function readRun(dirArg: string): Run {
  const dir = resolve(dirArg);
  const file = (name: string) => join(dir, name);
  for (const required of [RUN_FILES.siegeLog, RUN_FILES.latency]) {
    if (!existsSync(file(required))) {
      throw new Error(
        `${dirArg} has no ${required}: point the report at directories written by npm run loadtest`,
      );
    }
  }
  const siege = parseSiegeLog(readFileSync(file(RUN_FILES.siegeLog), 'utf8'), file(RUN_FILES.siegeLog));

  const latencyFile = file(RUN_FILES.latency);
  const stages = readCsv(latencyFile).map((r, i): StageRecord => {
    const n = (column: string) => numberIn(r, column, latencyFile, i + 1);
    return {
      stage: n('stage'),
      startedAt: timeIn(r, 'started_at', latencyFile, i + 1),
      endedAt: timeIn(r, 'ended_at', latencyFile, i + 1),
      users: n('users'),
      delaySeconds: n('delay_s'),
      requests: n('requests'),
      ok: n('ok'),
      p50Ms: optionalNumber(r, 'p50_ms') ?? NaN,
      p90Ms: optionalNumber(r, 'p90_ms') ?? NaN,
      p99Ms: optionalNumber(r, 'p99_ms') ?? NaN,
      failed: n('timeout') + n('connection') + n('non_2xx') + n('shed_503'),
    };
  });

  let okLatenciesMs: number[] | null = null;
  if (existsSync(file(RUN_FILES.requests))) {
    const requestsFile = file(RUN_FILES.requests);
    okLatenciesMs = readCsv(requestsFile)
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => (r.error ?? '') === '')
      .map(({ r, i }) => numberIn(r, 'latency_ms', requestsFile, i + 1));
  }

  let resources: ResourceRecord[] | null = null;
  if (existsSync(file(RUN_FILES.resources))) {
    const resourcesFile = file(RUN_FILES.resources);
    resources = readCsv(resourcesFile).map((r, i) => {
      const n = (column: string) => numberIn(r, column, resourcesFile, i + 1);
      return {
        time: timeIn(r, 'time', resourcesFile, i + 1),
        nReplica: n('n_replica'),
        nReady: optionalNumber(r, 'n_ready'),
        cpuReqCore: n('cpu_req_core'),
        memReqKB: n('mem_req_KB'),
        cpuUseCore: optionalNumber(r, 'cpu_use_core'),
        memUseKB: optionalNumber(r, 'mem_use_KB'),
      };
    });
  }

  let modelInfo: Record<string, string> | null = null;
  if (existsSync(file(RUN_FILES.meta))) {
    try {
      modelInfo =
        (JSON.parse(readFileSync(file(RUN_FILES.meta), 'utf8')) as { modelInfo?: Record<string, string> })
          .modelInfo ?? null;
    } catch {
      modelInfo = null; // run.json only adds the model's name; a damaged one must not hide the measurements
    }
  }

  return { name: basename(dir), dir, siege, stages, okLatenciesMs, resources, modelInfo };
}
