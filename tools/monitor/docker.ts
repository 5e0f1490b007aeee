// The monitor's view of strategy docker: the container on a Docker host instead of pods, through the Docker
// Engine API (what `docker ps`, `docker inspect` and `docker stats` read), written as the same CSV row.
//
// A Docker container has no requests; the docker stack turns the pods' requests into what the kubelet makes
// of them (CPU shares, a memory reservation), and those are reported as its "requests", so the columns mean
// the same for every strategy.

import { Agent, request, type Dispatcher } from 'undici';
import { resourceRow, type MetricsState, type ResourceSample } from './sample';

export interface DockerTarget {
  /** unix:///path/to/docker.sock or tcp://host:port (plain HTTP); default: DOCKER_HOST, then the local socket */
  host?: string;
  /** the monitor's label selector, `k=v,k=v`: the docker stack labels its container like the pods */
  selector: string;
}

/** The Docker host cannot be asked at all: nothing to report. */
export class DockerUnreachableError extends Error {}

interface ContainerSummary {
  Id: string;
  Names?: string[];
}
interface ContainerInspect {
  State?: { Running?: boolean; Health?: { Status?: string } };
  HostConfig?: { NanoCpus?: number; Memory?: number; CpuShares?: number; MemoryReservation?: number };
}
interface ContainerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; stats?: Record<string, number> };
}

/**
 * Where to connect, from a DOCKER_HOST-style URL (`server`, the one that was used, for messages). ssh:// needs a
 * forwarded socket (see the error).
 */
function dockerEndpoint(host: string | undefined): {
  server: string;
  origin: string;
  dispatcher?: Dispatcher;
} {
  const url = host || process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (url.startsWith('unix://')) {
    const dispatcher = new Agent({ connect: { socketPath: url.slice(7) } });
    return { server: url, origin: 'http://docker', dispatcher };
  }
  if (url.startsWith('tcp://')) return { server: url, origin: `http://${url.slice(6)}` };
  if (url.startsWith('ssh://')) {
    throw new DockerUnreachableError(
      `cannot talk to ${url} directly: forward its socket first, e.g. ` +
        'ssh -nNT -L /tmp/gg-docker.sock:/var/run/docker.sock <user>@<host> & ' +
        'then --docker unix:///tmp/gg-docker.sock',
    );
  }
  throw new DockerUnreachableError(
    `${host ? '--docker' : 'DOCKER_HOST'} "${url}" is not a Docker host: expected unix:///path/to/docker.sock or tcp://host:port`,
  );
}

/** `docker stats`' arithmetic: the container's share of the host's CPU time since the previous reading. */
export function cpuCores(stats: ContainerStats): number | null {
  const used =
    (stats.cpu_stats?.cpu_usage?.total_usage ?? 0) - (stats.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const system = (stats.cpu_stats?.system_cpu_usage ?? 0) - (stats.precpu_stats?.system_cpu_usage ?? 0);
  const cpus = stats.cpu_stats?.online_cpus ?? 0;
  if (system <= 0 || cpus <= 0 || !stats.precpu_stats?.system_cpu_usage) return null;
  return (used / system) * cpus;
}

/** `docker stats`' memory: usage less the reclaimable page cache (cgroup v2 inactive_file, v1 total_inactive_file). */
function memoryBytes(stats: ContainerStats): number | null {
  const usage = stats.memory_stats?.usage;
  if (usage === undefined) return null;
  const s = stats.memory_stats?.stats ?? {};
  const cache = s.inactive_file ?? s.total_inactive_file ?? 0;
  return Math.max(0, usage - cache);
}

export class DockerSampler {
  private readonly endpoint: ReturnType<typeof dockerEndpoint>;
  readonly server: string;
  private readonly labels: string[];

  constructor(
    target: DockerTarget,
    private readonly warn: (message: string) => void,
  ) {
    this.endpoint = dockerEndpoint(target.host);
    this.server = this.endpoint.server;
    this.labels = target.selector
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  private async get<T>(path: string): Promise<T> {
    const res = await request(`${this.endpoint.origin}${path}`, { dispatcher: this.endpoint.dispatcher });
    const body = await res.body.text();
    if (res.statusCode !== 200) {
      const message = (() => {
        try {
          return (JSON.parse(body) as { message?: string }).message;
        } catch {
          return body.slice(0, 200);
        }
      })();
      throw new Error(`HTTP ${res.statusCode} for ${path}${message ? `: ${message}` : ''}`);
    }
    return JSON.parse(body) as T;
  }

  private async containers(): Promise<ContainerSummary[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: this.labels }));
    try {
      return await this.get<ContainerSummary[]>(`/containers/json?filters=${filters}`);
    } catch (err) {
      const failure = err as { code?: string; message?: string };
      throw new DockerUnreachableError(
        `cannot list containers on ${this.server} (${failure.code ?? failure.message ?? String(err)})`,
      );
    }
  }

  async sample(now = new Date()): Promise<ResourceSample> {
    const running = await this.containers();
    let cpuReq = 0;
    let memReq = 0;
    let cpuLim = 0;
    let memLim = 0;
    let cpuUse = 0;
    let memUse = 0;
    let ready = 0;
    let metrics: MetricsState = 'ok';
    for (const summary of running) {
      const id = encodeURIComponent(summary.Id);
      // stream=false: the engine reads twice, a second apart, so precpu_stats holds the earlier reading.
      const [inspect, stats] = await Promise.all([
        this.get<ContainerInspect>(`/containers/${id}/json`),
        this.get<ContainerStats>(`/containers/${id}/stats?stream=false`).catch((err: Error) => {
          this.warn(`stats of ${summary.Names?.[0] ?? summary.Id} failed: ${err.message}`);
          return null;
        }),
      ]);
      const hostConfig = inspect.HostConfig ?? {};
      cpuLim += (hostConfig.NanoCpus ?? 0) / 1e9;
      memLim += hostConfig.Memory ?? 0;
      // 1024 shares per core, the kubelet's own mapping of a CPU request.
      cpuReq += (hostConfig.CpuShares ?? 0) / 1024;
      memReq += hostConfig.MemoryReservation ?? 0;
      // A container with a health check is ready once it passes; without one, once it runs.
      const health = inspect.State?.Health?.Status;
      if (inspect.State?.Running && (health === undefined || health === 'healthy')) ready++;
      const cpu = stats ? cpuCores(stats) : null;
      const mem = stats ? memoryBytes(stats) : null;
      if (cpu === null || mem === null) {
        metrics = 'error';
      } else {
        cpuUse += cpu;
        memUse += mem;
      }
    }
    // One container's stats failing leaves the sum unknown, not smaller.
    const usageKnown = metrics === 'ok';
    return resourceRow(now, {
      replicas: running.length,
      ready,
      cpuReq,
      memReq,
      cpuLim,
      memLim,
      cpuUse: usageKnown ? cpuUse : null,
      memUse: usageKnown ? memUse : null,
      metrics,
    });
  }
}
