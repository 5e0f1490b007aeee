import type { PodMetric, V1Pod } from '@kubernetes/client-node';
import { parseQuantity } from '../../stacks/quantity';

/**
 * The course's resource_monitor.py columns first (so its notebook keeps working), then what it could not tell:
 * ready and unready replicas apart, and whether usage could be read at all.
 */
export const RESOURCE_COLUMNS = [
  'time',
  'n_replica',
  'cpu_req_core',
  'mem_req_KB',
  'cpu_lim_core',
  'mem_lim_KB',
  'cpu_use_core',
  'mem_use_KB',
  'n_ready',
  'n_unready',
  'metrics',
] as const;

/** `ok`: usage read; `missing`: no metrics.k8s.io (metrics-server absent); `error`: it failed this time */
export type MetricsState = 'ok' | 'missing' | 'error';

export interface ResourceSample {
  time: string;
  /** pods that exist and have not finished: ready + unready */
  n_replica: number;
  cpu_req_core: number;
  mem_req_KB: number;
  cpu_lim_core: number;
  mem_lim_KB: number;
  /** null when metrics are not available */
  cpu_use_core: number | null;
  mem_use_KB: number | null;
  n_ready: number;
  /** starting, failing readiness, or terminating: they hold their requests but serve nothing */
  n_unready: number;
  metrics: MetricsState;
}

const KIB = 1024;

/**
 * A container's request, limit or usage in base units (cores, bytes). Unset adds 0 (a container without a
 * limit); a value that is not a quantity stops the sample rather than being summed as 0.
 */
export function quantity(text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  const value = parseQuantity(text);
  if (value === undefined) throw new Error(`not a Kubernetes quantity: "${text}"`);
  return value;
}

/** What a sampler adds up, in cores and bytes; usage null when it could not be read. */
export interface ResourceTotals {
  replicas: number;
  ready: number;
  cpuReq: number;
  memReq: number;
  cpuLim: number;
  memLim: number;
  cpuUse: number | null;
  memUse: number | null;
  metrics: MetricsState;
}

/** The CSV row, pods and a Docker container alike: cores to 3 decimals, memory in whole KiB. */
export function resourceRow(time: Date, totals: ResourceTotals): ResourceSample {
  const round = (n: number, digits: number) => Number(n.toFixed(digits));
  return {
    time: time.toISOString(),
    n_replica: totals.replicas,
    cpu_req_core: round(totals.cpuReq, 3),
    mem_req_KB: round(totals.memReq / KIB, 0),
    cpu_lim_core: round(totals.cpuLim, 3),
    mem_lim_KB: round(totals.memLim / KIB, 0),
    cpu_use_core: totals.cpuUse === null ? null : round(totals.cpuUse, 3),
    mem_use_KB: totals.memUse === null ? null : round(totals.memUse / KIB, 0),
    n_ready: totals.ready,
    n_unready: totals.replicas - totals.ready,
    metrics: totals.metrics,
  };
}

function isReady(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false; // terminating pods are being drained
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Succeeded/Failed pods (e.g. evicted) keep showing in the list but hold no resources. */
function isLive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

/**
 * One row from the pods the selector matched and their metrics. Requests and limits are summed over each live
 * pod's containers (a container without a limit adds 0); usage only over pods in that same set, so a metrics
 * entry for a pod that has already gone is not counted.
 */
export function summarise(
  time: Date,
  pods: readonly V1Pod[],
  podMetrics: readonly PodMetric[] | null,
  metricsState: MetricsState,
): ResourceSample {
  const live = pods.filter(isLive);
  const ready = live.filter(isReady).length;
  let cpuReq = 0;
  let memReq = 0;
  let cpuLim = 0;
  let memLim = 0;
  for (const pod of live) {
    for (const container of pod.spec?.containers ?? []) {
      cpuReq += quantity(container.resources?.requests?.cpu);
      memReq += quantity(container.resources?.requests?.memory);
      cpuLim += quantity(container.resources?.limits?.cpu);
      memLim += quantity(container.resources?.limits?.memory);
    }
  }
  let cpuUse: number | null = null;
  let memUse: number | null = null;
  if (podMetrics) {
    const names = new Set(live.map((p) => p.metadata?.name));
    cpuUse = 0;
    memUse = 0;
    for (const podMetric of podMetrics) {
      if (!names.has(podMetric.metadata.name)) continue;
      for (const container of podMetric.containers) {
        cpuUse += quantity(container.usage.cpu);
        memUse += quantity(container.usage.memory);
      }
    }
  }
  return resourceRow(time, {
    replicas: live.length,
    ready,
    cpuReq,
    memReq,
    cpuLim,
    memLim,
    cpuUse,
    memUse,
    metrics: metricsState,
  });
}
