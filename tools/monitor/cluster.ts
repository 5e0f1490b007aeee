import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type PodMetricsList,
  type V1Pod,
} from '@kubernetes/client-node';
import { summarise, type MetricsState, type ResourceSample } from './sample';

export interface ClusterTarget {
  /** kubeconfig file; default: $KUBECONFIG or ~/.kube/config, or the in-cluster service account */
  kubeconfig?: string;
  context?: string;
  namespace: string;
  /** label selector, e.g. app.kubernetes.io/name=gourmetgram,app.kubernetes.io/instance=hpa */
  selector: string;
}

const NO_CLUSTER =
  'no Kubernetes cluster configured: pass --kubeconfig or set KUBECONFIG ' +
  '(for a stack: pulumi stack output kubeconfig --show-secrets > <file>)';

/**
 * loadFromDefault() quietly falls back to http://localhost:8080 when it finds nothing, which then fails with an
 * unrelated TLS message; say what is actually missing instead.
 */
function hasDefaultKubeconfig(): boolean {
  return Boolean(
    process.env.KUBECONFIG ||
    process.env.KUBERNETES_SERVICE_HOST ||
    existsSync(join(homedir(), '.kube', 'config')),
  );
}

/** The pod list itself cannot be read: nothing to report. */
export class ClusterUnreachableError extends Error {}

function describe(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    const reason = /"message":"([^"]+)"/.exec(body ?? '')?.[1];
    return `HTTP ${err.code}${reason ? `: ${reason}` : ''}`;
  }
  const failure = err as { code?: string; message?: string };
  return failure.code ?? failure.message ?? String(err);
}

export class ResourceSampler {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  readonly server: string;
  private metricsWarned = false;

  constructor(
    readonly target: ClusterTarget,
    private readonly warn: (message: string) => void,
  ) {
    const kc = new KubeConfig();
    if (target.kubeconfig) kc.loadFromFile(target.kubeconfig);
    else if (!hasDefaultKubeconfig()) throw new ClusterUnreachableError(NO_CLUSTER);
    else kc.loadFromDefault();
    if (target.context) kc.setCurrentContext(target.context);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new ClusterUnreachableError(NO_CLUSTER);
    this.server = cluster.server;
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  private async pods(): Promise<V1Pod[]> {
    try {
      const list = await this.core.listNamespacedPod({
        namespace: this.target.namespace,
        labelSelector: this.target.selector,
      });
      return list.items;
    } catch (err) {
      throw new ClusterUnreachableError(
        `cannot list pods in namespace "${this.target.namespace}" on ${this.server} (${describe(err)})`,
      );
    }
  }

  private async podMetrics(): Promise<{ items: PodMetricsList['items'] | null; state: MetricsState }> {
    try {
      const list = (await this.custom.listNamespacedCustomObject({
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        namespace: this.target.namespace,
        plural: 'pods',
        labelSelector: this.target.selector,
      })) as PodMetricsList;
      return { items: list.items ?? [], state: 'ok' };
    } catch (err) {
      // 404: the metrics.k8s.io API is not registered at all. 503: registered but metrics-server is not answering.
      const missing = err instanceof ApiException && (err.code === 404 || err.code === 503);
      if (!this.metricsWarned) {
        this.metricsWarned = true;
        this.warn(
          missing
            ? `metrics.k8s.io is not served by ${this.server} (${describe(err)}): metrics-server is missing or down, ` +
                'so cpu_use_core and mem_use_KB stay empty; requests, limits and replicas are still reported. ' +
                'GKE ships metrics-server; elsewhere: kubectl apply -f ' +
                'https://github.com/kubernetes-sigs/metrics-server/releases/latest/download/components.yaml'
            : `reading pod metrics failed (${describe(err)}); usage columns stay empty while it fails`,
        );
      }
      return { items: null, state: missing ? 'missing' : 'error' };
    }
  }

  async sample(now = new Date()): Promise<ResourceSample> {
    const [pods, metrics] = await Promise.all([this.pods(), this.podMetrics()]);
    if (metrics.state === 'ok') this.metricsWarned = false;
    return summarise(now, pods, metrics.items, metrics.state);
  }
}
