// The classifier's container, defined once for every strategy: its environment, its probes, its resources and
// its hardening. A Deployment (k8s, lb, hpa), a KServe predictor (kserve) and a plain Docker container
// (docker) all take them from here, so a load test compares the strategies and nothing else.

import type * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClassifierConfig } from './config';
import {
  APP_UID,
  TMP_DIR,
  TMP_SIZE,
  WRITABLE_DIRS_ENV,
  containerSecurityContext,
  podSecurityContext,
  tmpMount,
  tmpVolume,
} from './pod';
import { mebibytes, parseCpu } from './quantity';

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
/** Where a model trained into the volume is read from. */
export const VOLUME_MODEL_DIR = '/models/current';
export const MODEL_VOLUME = 'models';

/**
 * Seconds the pod keeps serving after Kubernetes starts terminating it. Removing a pod from the Service's
 * endpoints and telling every node (kube-proxy) and the cloud load balancer about it happens in parallel with
 * SIGTERM and takes a few seconds; a pod that stopped accepting at once would meanwhile see its requests
 * fail. The service's own drain (SHUTDOWN_TIMEOUT_MS) starts only after this pause.
 */
export const PRE_STOP_SECONDS = 5;

/** Grace period: the pre-stop pause, then the drain deadline, then a margin for the process to exit. */
export function terminationGraceSeconds(shutdownTimeoutMs: number): number {
  return PRE_STOP_SECONDS + Math.ceil(shutdownTimeoutMs / 1000) + 5;
}

/**
 * The variable naming the labels store (docs/interfaces.md). It holds the database's password, so a pod gets it
 * from a Secret (secretKeyRef), never as a value written into its spec.
 */
export const DATABASE_URL_ENV = 'DATABASE_URL';

/** A key of a Kubernetes Secret: where a pod reads DATABASE_URL. */
export interface SecretKeyRef {
  name: pulumi.Input<string>;
  key: string;
}

/** The container's environment as name → value (docs/interfaces.md), DATABASE_URL aside. */
export function classifierEnvVars(config: ClassifierConfig): Record<string, string> {
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
  // Empty: the service's own default applies (service/src/config.ts holds it, and only it).
  if (env.labelSampleRate) vars.LABEL_SAMPLE_RATE = env.labelSampleRate;
  if (env.labelRetentionDays) vars.LABEL_RETENTION_DAYS = env.labelRetentionDays;
  if (config.modelSource === 'volume') vars.MODEL_DIR = VOLUME_MODEL_DIR;
  return { ...vars, ...WRITABLE_DIRS_ENV };
}

export function classifierEnv(
  config: ClassifierConfig,
  databaseUrl: SecretKeyRef,
): k8s.types.input.core.v1.EnvVar[] {
  return [
    ...Object.entries(classifierEnvVars(config)).map(([name, value]) => ({ name, value })),
    { name: DATABASE_URL_ENV, valueFrom: { secretKeyRef: { name: databaseUrl.name, key: databaseUrl.key } } },
  ];
}

/**
 * The probes, runtime-neutral. They use the cheap endpoints only: /test (the course's probe) runs a whole
 * inference, and every few seconds per pod it would eat the CPU the HPA measures and queue behind real
 * requests under load, so a busy pod would be killed as "dead".
 */
export const PROBES = {
  // Loading and warming the model takes a while on a slow node: up to 5 minutes before
  // liveness takes over.
  startup: { path: '/readyz', periodSeconds: 5, failureThreshold: 60 },
  // Fails fast while draining, so the pod leaves the endpoints before it stops.
  readiness: { path: '/readyz', periodSeconds: 5, failureThreshold: 2 },
  liveness: { path: '/healthz', periodSeconds: 10, failureThreshold: 3 },
  timeoutSeconds: 2,
} as const;

export interface ContainerOptions {
  config: ClassifierConfig;
  image: pulumi.Input<string>;
  name: string;
  /** The Secret key holding DATABASE_URL. */
  databaseUrl: SecretKeyRef;
  /** The container port's name; Knative accepts only `http1` or `h2c` there. */
  portName?: string;
  /**
   * How probes address the port: by name (a Deployment), or by number (Knative rejects a probe port that
   * is not the container port's number).
   */
  probePort?: 'name' | 'number';
  /**
   * Declare the internal port and probe it (default). Knative allows a single container port, so a KServe
   * Serverless predictor probes the public port, which answers /healthz and /readyz too.
   */
  internalPort?: boolean;
}

/** The classifier container of every Kubernetes strategy. */
export function classifierContainer(opts: ContainerOptions): k8s.types.input.core.v1.Container {
  const { config } = opts;
  const portName = opts.portName ?? 'http';
  const internal = opts.internalPort ?? true;
  // Probes go to the internal port where there is one: a thread of its own answers there, so a pod busy
  // shedding load still answers its probes at once (on the public port they wait behind every client).
  const port = internal
    ? opts.probePort === 'number'
      ? METRICS_PORT
      : METRICS_PORT_NAME
    : opts.probePort === 'number'
      ? CONTAINER_PORT
      : portName;
  const probe = (p: { path: string; periodSeconds: number; failureThreshold: number }) => ({
    httpGet: { path: p.path, port },
    periodSeconds: p.periodSeconds,
    failureThreshold: p.failureThreshold,
    timeoutSeconds: PROBES.timeoutSeconds,
  });
  const modelMount: k8s.types.input.core.v1.VolumeMount[] =
    config.modelSource === 'volume'
      ? [{ name: MODEL_VOLUME, mountPath: '/models', subPath: 'models', readOnly: true }]
      : [];
  return {
    name: opts.name,
    image: opts.image,
    imagePullPolicy: 'IfNotPresent',
    ports: [
      { name: portName, containerPort: CONTAINER_PORT, protocol: 'TCP' },
      ...(internal ? [{ name: METRICS_PORT_NAME, containerPort: METRICS_PORT, protocol: 'TCP' }] : []),
    ],
    env: classifierEnv(config, opts.databaseUrl),
    resources: config.resources,
    securityContext: containerSecurityContext,
    startupProbe: probe(PROBES.startup),
    readinessProbe: probe(PROBES.readiness),
    livenessProbe: probe(PROBES.liveness),
    lifecycle: {
      // An exec of node, which the image has for sure (a shell or `sleep` may not be there).
      preStop: { exec: { command: ['node', '-e', `setTimeout(() => {}, ${PRE_STOP_SECONDS * 1000})`] } },
    },
    volumeMounts: [tmpMount, ...modelMount],
  };
}

/** The pod-level fields every classifier pod shares (the containers and volumes aside). */
export function classifierPodFields(config: ClassifierConfig) {
  return {
    automountServiceAccountToken: false,
    securityContext: podSecurityContext,
    terminationGracePeriodSeconds: terminationGraceSeconds(config.env.shutdownTimeoutMs),
  };
}

/** The writable /tmp, and the model volume's claim when the model comes from the PVC. */
export function classifierVolumes(
  config: ClassifierConfig,
  modelClaim: pulumi.Input<string> | undefined,
): k8s.types.input.core.v1.Volume[] {
  if (config.modelSource === 'volume' && !modelClaim) {
    throw new Error('modelSource is volume, but no volume claim was passed for the model');
  }
  const model = modelClaim
    ? [{ name: MODEL_VOLUME, persistentVolumeClaim: { claimName: modelClaim, readOnly: true } }]
    : [];
  return [tmpVolume, ...model];
}

/** What a Docker engine needs to run the same container as the pods do, from the same definitions. */
export interface DockerRuntime {
  /** Secret: DATABASE_URL holds the database's password (a Docker engine has no Secret to refer to). */
  envs: pulumi.Output<string[]>;
  user: string;
  readOnly: boolean;
  /** The writable scratch space the read-only root leaves, sized like the pods' emptyDir. */
  tmpfs: Record<string, string>;
  capabilities: { drops: string[] };
  securityOpts: string[];
  healthcheck: {
    tests: string[];
    interval: string;
    timeout: string;
    retries: number;
    startPeriod: string;
  };
  /** The start period in seconds: how long the container may take to become healthy. */
  startSeconds: number;
  /** Limits, as the kubelet would set them: CPU cores as a decimal, memory in MiB (the provider's unit). */
  cpus: string;
  memory: number;
  /** Requests become what the kubelet makes of them: cgroup CPU shares and a soft memory reservation. */
  cpuShares: number;
  memoryReservation: number;
  /**
   * SIGTERM to SIGKILL: the drain deadline and the exit margin of the pods' grace period. No pre-stop pause:
   * there are no endpoints or load balancers to leave on one host.
   */
  stopTimeout: number;
}

export function dockerRuntime(config: ClassifierConfig, databaseUrl: pulumi.Input<string>): DockerRuntime {
  const { limits, requests } = config.resources;
  const seconds = (s: number) => `${s}s`;
  // The readiness path, not the image's /healthz: a plain Docker engine never restarts an unhealthy
  // container, so the status only informs, and its readers (`pulumi up` waiting for "healthy", the monitor
  // counting ready containers) want "the model is loaded and serving". Liveness timing keeps the extra node
  // process every few seconds cheap.
  const probeUrl = `'http://127.0.0.1:${CONTAINER_PORT}${PROBES.readiness.path}'`;
  const startSeconds = PROBES.startup.periodSeconds * PROBES.startup.failureThreshold;
  return {
    envs: pulumi.secret(
      pulumi
        .output(databaseUrl)
        .apply((url) =>
          Object.entries({ ...classifierEnvVars(config), [DATABASE_URL_ENV]: url }).map(
            ([name, value]) => `${name}=${value}`,
          ),
        ),
    ),
    user: `${APP_UID}:${APP_UID}`,
    readOnly: containerSecurityContext.readOnlyRootFilesystem === true,
    // The kernel's tmpfs takes m, not Mi, for mebibytes.
    tmpfs: { [TMP_DIR]: `rw,noexec,nosuid,size=${mebibytes(TMP_SIZE)}m` },
    capabilities: { drops: ['ALL'] },
    // The container-side twin of allowPrivilegeEscalation: false. Docker's default seccomp profile applies
    // unless a container asks for another, which this one never does.
    securityOpts: ['no-new-privileges:true'],
    healthcheck: {
      // Node's own fetch, as the image's HEALTHCHECK does it: the slim image has no curl.
      tests: [
        'CMD',
        'node',
        '-e',
        `fetch(${probeUrl}).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
      ],
      interval: seconds(PROBES.liveness.periodSeconds),
      timeout: seconds(PROBES.timeoutSeconds),
      retries: PROBES.liveness.failureThreshold,
      // The startup probe's budget: a container still loading its model is "starting", not unhealthy.
      // No start interval: engines before Docker 25 refuse the field, and the 10 s interval only delays
      // "healthy" by a few seconds.
      startPeriod: seconds(startSeconds),
    },
    startSeconds,
    cpus: String(parseCpu(limits.cpu)),
    memory: mebibytes(limits.memory),
    cpuShares: Math.max(2, Math.round((parseCpu(requests.cpu) ?? 0) * 1024)),
    memoryReservation: mebibytes(requests.memory),
    stopTimeout: terminationGraceSeconds(config.env.shutdownTimeoutMs) - PRE_STOP_SECONDS,
  };
}
