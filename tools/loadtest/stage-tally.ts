import { ascending, mean, percentile } from '../../model/train/latency';
import type { SiegeRow } from '../shared/siege-log';
import type { Stage } from './profile';

/**
 * Why a request did not succeed. Disjoint: a 503 is the service shedding load (its queue would wait longer than
 * QUEUE_MAX_WAIT_MS), any other status outside 2xx is `non_2xx`; no response at all is `timeout` (no headers or
 * body within the request timeout) or `connection` (refused, reset, DNS, TLS, connect timeout).
 */
export const ERROR_KINDS = ['timeout', 'connection', 'non_2xx', 'shed_503'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface RequestOutcome {
  /** epoch ms when the request was sent */
  sentAt: number;
  latencyMs: number;
  /** null when no response arrived */
  status: number | null;
  bytes: number;
  error: ErrorKind | null;
}

export function errorKindOfStatus(status: number): ErrorKind | null {
  if (status >= 200 && status < 300) return null;
  return status === 503 ? 'shed_503' : 'non_2xx';
}

/**
 * The latency CSV's row (keys are its column names): what siege does not tell. Latencies are of successful (2xx)
 * responses only, so fast 503s cannot flatter them; failures are counted by kind instead.
 */
export interface LatencyRow {
  stage: number;
  started_at: string;
  ended_at: string;
  users: number;
  delay_s: number;
  planned_s: number;
  elapsed_s: number;
  requests: number;
  ok: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  timeout: number;
  connection: number;
  non_2xx: number;
  shed_503: number;
  /** `interrupted` when Ctrl-C cut the stage short */
  status: 'complete' | 'interrupted';
}

export const LATENCY_COLUMNS: readonly (keyof LatencyRow)[] = [
  'stage',
  'started_at',
  'ended_at',
  'users',
  'delay_s',
  'planned_s',
  'elapsed_s',
  'requests',
  'ok',
  'p50_ms',
  'p90_ms',
  'p99_ms',
  'max_ms',
  'mean_ms',
  ...ERROR_KINDS,
  'status',
];

export class StageTally {
  readonly outcomes: RequestOutcome[] = [];

  constructor(
    readonly index: number,
    readonly stage: Stage,
  ) {}

  add(outcome: RequestOutcome): void {
    this.outcomes.push(outcome);
  }

  get okCount(): number {
    return this.outcomes.filter((o) => o.error === null).length;
  }

  get errorCount(): number {
    return this.outcomes.length - this.okCount;
  }

  siegeRow(startedAt: number, endedAt: number): SiegeRow {
    const elapsedSeconds = (endedAt - startedAt) / 1000;
    const hits = this.outcomes.filter((o) => o.status !== null && o.status < 500);
    const hitSeconds = hits.reduce((sum, o) => sum + o.latencyMs, 0) / 1000;
    const dataMiB = this.outcomes.reduce((sum, o) => sum + o.bytes, 0) / (1024 * 1024);
    const perSecond = (x: number) => (elapsedSeconds > 0 ? x / elapsedSeconds : 0);
    return {
      dateTime: new Date(endedAt),
      trans: hits.length,
      elapsedSeconds,
      dataMiB,
      respTimeSeconds: hits.length > 0 ? hitSeconds / hits.length : 0,
      transRate: perSecond(hits.length),
      throughputMiBps: perSecond(dataMiB),
      concurrent: perSecond(hitSeconds),
      okay: hits.filter((o) => (o.status as number) < 400).length,
      failed: this.outcomes.filter((o) => o.status === null || o.status >= 500).length,
    };
  }

  latencyRow(startedAt: number, endedAt: number, interrupted: boolean): LatencyRow {
    const okLatencies = ascending(this.outcomes.filter((o) => o.error === null).map((o) => o.latencyMs));
    const count = (kind: ErrorKind) => this.outcomes.filter((o) => o.error === kind).length;
    const round = (ms: number) => (Number.isNaN(ms) ? NaN : Math.round(ms * 10) / 10);
    return {
      stage: this.index + 1,
      started_at: new Date(startedAt).toISOString(),
      ended_at: new Date(endedAt).toISOString(),
      users: this.stage.users,
      delay_s: this.stage.delaySeconds,
      planned_s: this.stage.durationSeconds,
      elapsed_s: Math.round(endedAt - startedAt) / 1000,
      requests: this.outcomes.length,
      ok: okLatencies.length,
      p50_ms: round(percentile(okLatencies, 50)),
      p90_ms: round(percentile(okLatencies, 90)),
      p99_ms: round(percentile(okLatencies, 99)),
      max_ms: round(okLatencies.at(-1) ?? NaN),
      mean_ms: round(mean(okLatencies)),
      timeout: count('timeout'),
      connection: count('connection'),
      non_2xx: count('non_2xx'),
      shed_503: count('shed_503'),
      status: interrupted ? 'interrupted' : 'complete',
    };
  }
}
