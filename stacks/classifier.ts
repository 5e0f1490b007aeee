// The classifier service itself: Deployment, Service, and where the strategy asks for them an HPA and a
// PodDisruptionBudget. One component for every strategy (like the ServiceDeployment of Pulumi's
// kubernetes-ts-guestbook), so the strategies differ only in the fields the strategy sets.

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClassifierConfig } from './config';
import { APP_NAME, appLabels, selectorLabels } from './labels';
import {
  TMP_DIR,
  containerSecurityContext,
  podSecurityContext,
  tmpMount,
  tmpVolume,
  writableDirsEnv,
} from './pod';

/** The service listens here (docs/interfaces.md). */
export const CONTAINER_PORT = 3000;
/**
 * The internal port (METRICS_PORT): Prometheus scrapes /metrics and the kubelet probes /healthz and /readyz
 * here. It is a container port the Service never lists: the Service is what the load balancer or node port
 * exposes to the internet, and these are for the cluster.
 */
export const METRICS_PORT = 9464;
export const METRICS_PORT_NAME = 'metrics';
/** The annotations Prometheus's common kubernetes-pods scrape config (and GKE's managed collection) read. */
export const SCRAPE_ANNOTATIONS = {
  'prometheus.io/scrape': 'true',
  'prometheus.io/port': String(METRICS_PORT),
  'prometheus.io/path': '/metrics',
};
export const CONTAINER_NAME = 'classifier';
/** Where a model trained into the volume is read from. */
export const VOLUME_MODEL_DIR = '/models/current';

/**
 * Seconds the pod keeps serving after Kubernetes starts terminating it. Removing a pod from the Service's
 * endpoints and telling every node (kube-proxy) and the cloud load balancer about it happens in parallel with
 * SIGTERM and takes a few seconds; a pod that stopped accepting at once would meanwhile see its requests
 * fail. The service's own drain (SHUTDOWN_TIMEOUT_MS) starts only after this pause.
 */
export const PRE_STOP_SECONDS = 5;

export interface ClassifierArgs {
  config: ClassifierConfig;
  stack: string;
  namespace: pulumi.Input<string>;
  /** `repository@sha256:…` */
  image: pulumi.Input<string>;
  provider: k8s.Provider;
  /** The claim holding a trained model; required when config.modelSource is `volume`. */
  modelClaim?: pulumi.Input<string>;
  /** Where users reach a node port (only asked for when the URL is a node port's). */
  nodeAddress: () => pulumi.Output<string>;
  /** Resources the pods need first (the training Job that writes the model). */
  dependsOn?: pulumi.Resource[];
}

/** Grace period: the pre-stop pause, then the drain deadline, then a margin for the process to exit. */
export function terminationGraceSeconds(shutdownTimeoutMs: number): number {
  return PRE_STOP_SECONDS + Math.ceil(shutdownTimeoutMs / 1000) + 5;
}

export function classifierEnv(config: ClassifierConfig): k8s.types.input.core.v1.EnvVar[] {
  const { env } = config;
  const vars: Record<string, string> = {
    PORT: String(CONTAINER_PORT),
    METRICS_PORT: String(METRICS_PORT),
    WORKERS: String(env.workers),
    TFJS_BACKEND: env.tfjsBackend,
    QUEUE_MAX_WAIT_MS: String(env.queueMaxWaitMs),
    SHUTDOWN_TIMEOUT_MS: String(env.shutdownTimeoutMs),
    BATCH_MAX_SIZE: String(env.batchMaxSize),
    BATCH_MAX_WAIT_MS: String(env.batchMaxWaitMs),
    LOG_LEVEL: env.logLevel,
  };
  if (env.backboneUrl) {
    vars.BACKBONE_URL = env.backboneUrl;
    // Another backbone than the one baked into the image is fetched at start, and the image's cache
    // directory is read-only: keep it in the writable /tmp instead.
    if (env.backboneUrl !== 'none') vars.BACKBONE_CACHE_DIR = `${TMP_DIR}/backbones`;
  }
  if (env.backboneFallback) vars.BACKBONE_FALLBACK = env.backboneFallback;
  if (config.modelSource === 'volume') vars.MODEL_DIR = VOLUME_MODEL_DIR;
  return [...Object.entries(vars).map(([name, value]) => ({ name, value })), ...writableDirsEnv];
}

export class Classifier extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  readonly hpa?: k8s.autoscaling.v2.HorizontalPodAutoscaler;
  readonly pdb?: k8s.policy.v1.PodDisruptionBudget;
  /** True when users reach the pods through a node port (NodePort, or a LoadBalancer not waited for). */
  readonly exposedOnNodePort: boolean;
  readonly nodePort: pulumi.Output<number>;
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: ClassifierArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:Classifier', name, {}, opts);
    const { config, stack } = args;
    const labels = appLabels(stack);
    const selector = selectorLabels(stack);
    const inCluster = { parent: this, provider: args.provider };
    const metadata = { name: APP_NAME, namespace: args.namespace, labels };

    if (config.modelSource === 'volume' && !args.modelClaim) {
      throw new Error('modelSource is volume, but no volume claim was passed to the Classifier');
    }
    const modelVolume: k8s.types.input.core.v1.Volume[] = args.modelClaim
      ? [{ name: 'models', persistentVolumeClaim: { claimName: args.modelClaim, readOnly: true } }]
      : [];
    const modelMount: k8s.types.input.core.v1.VolumeMount[] =
      config.modelSource === 'volume'
        ? [{ name: 'models', mountPath: '/models', subPath: 'models', readOnly: true }]
        : [];

    // Probes go to the internal port: a thread of its own answers there, so a pod busy shedding load still
    // answers its probes at once (on the public port they waited behind every client's connection).
    const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
      httpGet: { path, port: METRICS_PORT_NAME },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 2,
    });

    this.deployment = new k8s.apps.v1.Deployment(
      name,
      {
        metadata,
        spec: {
          // Under an HPA the field is left out: with server-side apply, a value here would make Pulumi the
          // field's manager and every `pulumi up` would fight the autoscaler over it.
          replicas: config.replicas,
          selector: { matchLabels: selector },
          revisionHistoryLimit: 3,
          // A rollout starts a new pod before stopping an old one: capacity never drops below the target.
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: { labels, annotations: SCRAPE_ANNOTATIONS },
            spec: {
              automountServiceAccountToken: false,
              securityContext: podSecurityContext,
              terminationGracePeriodSeconds: terminationGraceSeconds(config.env.shutdownTimeoutMs),
              // Spread pods over nodes where there is room, so losing a node does not take every pod.
              topologySpreadConstraints: [
                {
                  maxSkew: 1,
                  topologyKey: 'kubernetes.io/hostname',
                  whenUnsatisfiable: 'ScheduleAnyway',
                  labelSelector: { matchLabels: selector },
                },
              ],
              containers: [
                {
                  name: CONTAINER_NAME,
                  image: args.image,
                  imagePullPolicy: 'IfNotPresent',
                  ports: [
                    { name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP' },
                    { name: METRICS_PORT_NAME, containerPort: METRICS_PORT, protocol: 'TCP' },
                  ],
                  env: classifierEnv(config),
                  resources: config.resources,
                  securityContext: containerSecurityContext,
                  // Probes use the cheap endpoints only. /test (the course's probe) runs a whole inference:
                  // every few seconds per pod it would eat the CPU the HPA measures and queue behind real
                  // requests under load, so a busy pod would be killed as "dead".
                  // Loading the model (and fetching its backbone on first start) takes a while: the startup
                  // probe allows up to 5 minutes before liveness takes over.
                  startupProbe: probe('/readyz', 5, 60),
                  // Fails fast while draining, so the pod leaves the endpoints before it stops.
                  readinessProbe: probe('/readyz', 5, 2),
                  livenessProbe: probe('/healthz', 10, 3),
                  lifecycle: {
                    // An exec of node, which the image has for sure (a shell or `sleep` may not be there).
                    preStop: {
                      exec: { command: ['node', '-e', `setTimeout(() => {}, ${PRE_STOP_SECONDS * 1000})`] },
                    },
                  },
                  volumeMounts: [tmpMount, ...modelMount],
                },
              ],
              volumes: [tmpVolume, ...modelVolume],
            },
          },
        },
      },
      { ...inCluster, dependsOn: args.dependsOn },
    );

    const serviceType = config.serviceType;
    this.exposedOnNodePort =
      serviceType === 'NodePort' || (serviceType === 'LoadBalancer' && !config.awaitLoadBalancer);
    const skipAwait =
      serviceType === 'LoadBalancer' && !config.awaitLoadBalancer
        ? // Without a load-balancer controller the external address never comes; waiting would end in a
          // ten-minute timeout. The node port works either way.
          { 'pulumi.com/skipAwait': 'true' }
        : undefined;
    this.service = new k8s.core.v1.Service(
      name,
      {
        metadata: { ...metadata, annotations: skipAwait },
        spec: {
          type: serviceType,
          selector,
          ports: [
            {
              name: 'http',
              port: config.servicePort,
              targetPort: 'http',
              protocol: 'TCP',
              nodePort: serviceType !== 'ClusterIP' && config.nodePort ? config.nodePort : undefined,
            },
          ],
        },
      },
      // Not after the Deployment: a cloud load balancer takes a minute or two to appear, time the pods
      // spend starting anyway.
      inCluster,
    );
    this.nodePort = this.service.spec.ports.apply((ports) => ports[0]?.nodePort ?? 0);

    if (config.hpa) {
      const hpa = config.hpa;
      this.hpa = new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        name,
        {
          metadata,
          spec: {
            scaleTargetRef: {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              name: this.deployment.metadata.name,
            },
            minReplicas: hpa.minReplicas,
            maxReplicas: hpa.maxReplicas,
            // Utilization is measured against the CPU *request*: that is why every pod must have one.
            metrics: [
              {
                type: 'Resource',
                resource: {
                  name: 'cpu',
                  target: { type: 'Utilization', averageUtilization: hpa.cpuUtilization },
                },
              },
            ],
            // Explicit, so what a load test sees is what the stack says: add pods fast when a burst comes,
            // remove them slowly so a short lull does not throw away warm pods.
            behavior: {
              scaleUp: {
                stabilizationWindowSeconds: hpa.scaleUpStabilizationSeconds,
                selectPolicy: 'Max',
                policies: [{ type: 'Pods', value: hpa.scaleUpPods, periodSeconds: 15 }],
              },
              scaleDown: {
                stabilizationWindowSeconds: hpa.scaleDownStabilizationSeconds,
                selectPolicy: 'Max',
                policies: [{ type: 'Pods', value: hpa.scaleDownPods, periodSeconds: 60 }],
              },
            },
          },
        },
        inCluster,
      );
    }

    if (config.hpa || (config.replicas ?? 0) > 1) {
      // maxUnavailable, not minAvailable: a node drain may always take one pod (even the only one an HPA
      // keeps when idle) but never several at once.
      this.pdb = new k8s.policy.v1.PodDisruptionBudget(
        name,
        { metadata, spec: { maxUnavailable: 1, selector: { matchLabels: selector } } },
        inCluster,
      );
    }

    this.url = this.serviceUrl(config, args);
    this.registerOutputs({ url: this.url });
  }

  private serviceUrl(config: ClassifierConfig, args: ClassifierArgs): pulumi.Output<string> {
    if (this.exposedOnNodePort) {
      return pulumi.interpolate`http://${args.nodeAddress()}:${this.nodePort}`;
    }
    const port = config.servicePort === 80 ? '' : `:${config.servicePort}`;
    if (config.serviceType === 'LoadBalancer') {
      // Clouds give either an IP (GKE) or a host name (AWS); take whichever came.
      const ingress = this.service.status.loadBalancer.ingress;
      return ingress.apply((list) => {
        const first = list?.[0];
        return `http://${first?.ip || first?.hostname || 'pending'}${port}`;
      });
    }
    // ClusterIP: reachable inside the cluster, or through `kubectl port-forward`.
    return pulumi.interpolate`http://${this.service.metadata.name}.${this.service.metadata.namespace}.svc.cluster.local${port}`;
  }
}
