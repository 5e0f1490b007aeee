// The stack's configuration, read from Pulumi once and validated once: every other module receives the typed
// object and never calls `new pulumi.Config()`. A bad value stops `pulumi preview` before any resource is
// planned, with a message that names the key, what is allowed and the command that fixes it.
//
// Keys are flat (`hpaMinReplicas`, not `hpa.minReplicas`) because Pulumi.yaml can declare and document only
// string, integer, boolean and array keys; each is declared there with the same default as here (a test
// keeps the two in step).

import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { parseCpu, parseMemory } from './quantity';
import { STRATEGIES, STRATEGY_NAMES, type ServiceType, type Strategy, type StrategyName } from './strategies';

export const PROJECT = 'gourmetgram';

const text = (fallback: string) => z.string().trim().default(fallback);
const integer = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);
const flag = (fallback: boolean) => z.stringbool().default(fallback);
const cpu = (fallback: string) =>
  text(fallback).refine((v) => parseCpu(v) !== undefined && parseCpu(v)! > 0, {
    message: 'must be a CPU quantity such as 500m, 1 or 1.5',
  });
const memory = (fallback: string) =>
  text(fallback).refine((v) => parseMemory(v) !== undefined && parseMemory(v)! > 0, {
    message: 'must be a memory quantity such as 384Mi or 2Gi',
  });
const list = (fallback: string[]) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }, z.array(z.string()).default(fallback));

/** Every key, its type and its default: the same set Pulumi.yaml declares. */
export const configFields = z.object({
  strategy: z.enum(STRATEGY_NAMES).default('k8s'),

  cluster: z.enum(['existing', 'gke']).default('existing'),
  kubeconfig: text(''),
  kubeContext: text(''),
  nodeAddress: text(''),
  gcpProject: text(''),
  gcpRegion: text('us-central1'),
  gcpZone: text('us-central1-a'),
  releaseChannel: z.enum(['RAPID', 'REGULAR', 'STABLE']).default('REGULAR'),
  machineType: text('e2-standard-2'),
  nodeCount: integer(1),
  minNodes: integer(1),
  maxNodes: integer(3, 1),
  spotNodes: flag(false),
  nodeDiskSizeGb: integer(30, 10),
  gkeMode: z.enum(['standard', 'autopilot']).default('standard'),

  dockerHost: text('').refine((v) => v === '' || /^(unix|tcp|ssh|npipe):\/\/\S+$/.test(v), {
    message:
      'must be empty (the local engine) or a Docker host URL: unix://, tcp://host:port or ssh://user@host',
  }),
  dockerPort: integer(32000, 1).pipe(z.number().max(65535)),
  dockerRestart: z.enum(['no', 'on-failure', 'always', 'unless-stopped']).default('unless-stopped'),

  kserveMode: z.enum(['Serverless', 'RawDeployment']).default('Serverless'),
  kserveInstall: flag(false),
  kserveVersion: text('v0.20.0'),
  kserveMinReplicas: integer(1),
  kserveMaxReplicas: integer(5, 1),
  kserveScaleMetric: z.enum(['', 'concurrency', 'rps', 'cpu', 'memory']).default(''),
  kserveScaleTarget: integer(0),
  kserveCanaryTrafficPercent: integer(100).pipe(z.number().max(100)),

  registry: text(''),
  imageRepository: text('gourmetgram'),
  imageTag: text('latest'),
  image: text(''),
  imagePlatform: text('linux/amd64'),

  namespace: text('gourmetgram').refine((v) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v), {
    message: 'must be a DNS label: lower-case letters, digits and -, at most 63 characters',
  }),
  replicas: integer(1),
  serviceType: z.enum(['auto', 'NodePort', 'LoadBalancer', 'ClusterIP']).default('auto'),
  servicePort: integer(80, 1).pipe(z.number().max(65535)),
  nodePort: integer(0).refine((v) => v === 0 || (v >= 30000 && v <= 32767), {
    message: 'must be 0 (let Kubernetes pick) or within the node-port range 30000-32767',
  }),
  awaitLoadBalancer: flag(true),
  nodePortSourceRanges: list(['0.0.0.0/0']),

  cpuRequest: cpu('500m'),
  cpuLimit: cpu('1'),
  memoryRequest: memory('320Mi'),
  memoryLimit: memory('512Mi'),

  hpaMinReplicas: integer(1, 1),
  hpaMaxReplicas: integer(5, 1),
  hpaCpuUtilization: integer(70, 1),
  hpaScaleUpStabilizationSeconds: integer(0),
  hpaScaleUpPods: integer(2, 1),
  hpaScaleDownStabilizationSeconds: integer(300),
  hpaScaleDownPods: integer(1, 1),

  workers: integer(1, 1),
  tfjsBackend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  queueMaxWaitMs: integer(2000, 1),
  shutdownTimeoutMs: integer(20000, 1),
  batchMaxSize: integer(1, 1),
  batchMaxWaitMs: integer(0),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),

  modelSource: z.enum(['image', 'volume']).default('image'),
  trainingEnabled: flag(false),
  trainingDataDir: text('Food-11').refine((v) => /^[\w.-]+$/.test(v), {
    message: 'must be one folder name inside the volume data/ folder (letters, digits, . _ -)',
  }),
  trainingCpu: cpu('1'),
  trainingMemory: memory('2Gi'),
  trainingImage: text(''),
  trainingBase: text(
    'https://storage.googleapis.com/teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json',
  ).refine((v) => /^https?:\/\/\S+$|^\/\S+$/.test(v), {
    message:
      'must be an http(s):// URL of a TF.js MobileNetV2 model.json, or a path inside the training image or volume',
  }),
  trainingEpochs: integer(6, 1),
  volumeSize: memory('10Gi'),
  storageClass: text(''),
});

export type ConfigKey = keyof typeof configFields.shape;
export const CONFIG_KEYS = Object.keys(configFields.shape) as ConfigKey[];
type Fields = z.infer<typeof configFields>;

/** What each KServe mode can scale on, the first being its default. */
const KSERVE_METRICS = {
  Serverless: ['concurrency', 'rps'],
  RawDeployment: ['cpu', 'memory'],
} as const;
/**
 * Per pod: one inference worker serves one request at a time, so two in flight keep it busy without a long
 * queue; the CPU figure is the hpa strategy's.
 */
const KSERVE_DEFAULT_TARGET = { concurrency: 2, rps: 20, cpu: 70, memory: 80 } as const;
export type KServeScaleMetric = keyof typeof KSERVE_DEFAULT_TARGET;

function crossChecks(c: Fields, ctx: z.RefinementCtx): void {
  const fail = (path: ConfigKey, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  const workload = STRATEGIES[c.strategy].workload;
  if (workload === 'dockerContainer') {
    if (c.cluster !== 'existing') {
      fail(
        'cluster',
        'strategy docker runs one container on a Docker host, not on a cluster it would create: ' +
          'pulumi config set cluster existing (dockerHost names the host)',
      );
    }
    if (c.trainingEnabled) {
      fail(
        'trainingEnabled',
        'training runs as a Kubernetes Job, and strategy docker has no cluster: pulumi config set trainingEnabled false',
      );
    }
    if (c.modelSource === 'volume') {
      fail(
        'modelSource',
        'the trained model lives on a Kubernetes volume, which a Docker host does not have: ' +
          'pulumi config set modelSource image',
      );
    }
  }
  if (workload === 'inferenceService') {
    if (c.kserveMinReplicas > c.kserveMaxReplicas) {
      fail(
        'kserveMinReplicas',
        `kserveMinReplicas (${c.kserveMinReplicas}) must not exceed kserveMaxReplicas (${c.kserveMaxReplicas})`,
      );
    }
    if (c.kserveMode === 'RawDeployment' && c.kserveMinReplicas === 0) {
      fail(
        'kserveMinReplicas',
        'RawDeployment scales with an HPA, which keeps at least one pod; scale to zero needs Knative: ' +
          'pulumi config set kserveMode Serverless, or pulumi config set kserveMinReplicas 1',
      );
    }
    const metrics: readonly string[] = KSERVE_METRICS[c.kserveMode];
    if (c.kserveScaleMetric && !metrics.includes(c.kserveScaleMetric)) {
      fail(
        'kserveScaleMetric',
        `kserveMode ${c.kserveMode} scales on ${metrics.join(' or ')}: ` +
          `pulumi config set kserveScaleMetric ${metrics[0]} (or empty for that default)`,
      );
    }
    if (c.kserveMode === 'RawDeployment' && c.kserveCanaryTrafficPercent < 100) {
      fail(
        'kserveCanaryTrafficPercent',
        'a canary splits traffic between Knative revisions, which RawDeployment does not have: ' +
          'pulumi config set kserveCanaryTrafficPercent 100, or pulumi config set kserveMode Serverless',
      );
    }
    if (c.kserveMode === 'Serverless' && c.modelSource === 'volume') {
      fail(
        'modelSource',
        'Knative refuses volume claims unless its kubernetes.podspec-persistent-volume-claim feature is on: ' +
          'pulumi config set modelSource image, or pulumi config set kserveMode RawDeployment',
      );
    }
  }
  if (c.cluster === 'gke' && !c.gcpProject) {
    fail(
      'gcpProject',
      'cluster is gke, so the cluster, its nodes and the image registry need a Google Cloud project: ' +
        'pulumi config set gcpProject <project-id> (or gcp:project; gcloud projects list shows yours)',
    );
  }
  if (c.cluster === 'existing' && !c.registry && !c.image) {
    fail(
      'registry',
      (workload === 'dockerContainer'
        ? 'the Docker host pulls the image from a registry (e.g. node-0:5000), or runs a prebuilt image: '
        : 'an existing cluster needs a registry to push the image to (e.g. node-0:5000) or a prebuilt image: ') +
        'pulumi config set registry <host[:port][/path]>, or pulumi config set image <repo@sha256:...>',
    );
  }
  if (c.trainingEnabled && c.image && !c.trainingImage) {
    fail(
      'trainingImage',
      'with a prebuilt image nothing is built, and the training Job runs the training image (model/Dockerfile, ' +
        'with PyTorch), not the service image: pulumi config set trainingImage <repo@sha256:...>, or leave image empty',
    );
  }
  if (c.minNodes > c.maxNodes) {
    fail('minNodes', `minNodes (${c.minNodes}) must not exceed maxNodes (${c.maxNodes})`);
  }
  if (c.nodeCount < c.minNodes || c.nodeCount > c.maxNodes) {
    fail(
      'nodeCount',
      `nodeCount (${c.nodeCount}) must lie within minNodes..maxNodes (${c.minNodes}..${c.maxNodes})`,
    );
  }
  if (c.hpaMinReplicas > c.hpaMaxReplicas) {
    fail(
      'hpaMinReplicas',
      `hpaMinReplicas (${c.hpaMinReplicas}) must not exceed hpaMaxReplicas (${c.hpaMaxReplicas})`,
    );
  }
  const cpuRequest = parseCpu(c.cpuRequest);
  const cpuLimit = parseCpu(c.cpuLimit);
  if (cpuRequest !== undefined && cpuLimit !== undefined) {
    if (cpuRequest > cpuLimit)
      fail('cpuRequest', `cpuRequest (${c.cpuRequest}) exceeds cpuLimit (${c.cpuLimit})`);
    // Each worker keeps about one core busy; more workers than the limit allows only adds throttling.
    if (c.workers > Math.max(1, Math.ceil(cpuLimit))) {
      fail(
        'workers',
        `workers (${c.workers}) exceeds what cpuLimit (${c.cpuLimit}) can run: one worker needs about one core; ` +
          'raise cpuLimit or lower workers',
      );
    }
  }
  const memoryRequest = parseMemory(c.memoryRequest);
  const memoryLimit = parseMemory(c.memoryLimit);
  if (memoryRequest !== undefined && memoryLimit !== undefined && memoryRequest > memoryLimit) {
    fail('memoryRequest', `memoryRequest (${c.memoryRequest}) exceeds memoryLimit (${c.memoryLimit})`);
  }
  if (c.image && !/^[^\s@]+(@sha256:[0-9a-f]{64})?$/.test(c.image)) {
    fail(
      'image',
      'must be an image reference such as registry/repo:tag or registry/repo@sha256:<64 hex digits>',
    );
  }
}

export const configSchema = configFields.superRefine(crossChecks);

export interface ClusterConfig {
  kind: 'existing' | 'gke';
  /** Path to a kubeconfig file; empty means the ambient one (KUBECONFIG or ~/.kube/config). */
  kubeconfig: string;
  kubeContext: string;
  /** Where users reach a node port; empty means discovered (GKE) or localhost. */
  nodeAddress: string;
  gcp: {
    project: string;
    region: string;
    /** A zonal cluster when set: one control plane zone and a third of a regional cluster's nodes. */
    zone: string;
    releaseChannel: 'RAPID' | 'REGULAR' | 'STABLE';
    machineType: string;
    nodeCount: number;
    minNodes: number;
    maxNodes: number;
    spot: boolean;
    diskSizeGb: number;
    /** standard: node pools this stack sizes and pays for; autopilot: Google runs the nodes, pods are billed. */
    mode: 'standard' | 'autopilot';
  };
}

export interface ImageConfig {
  /** Empty on GKE means "create an Artifact Registry repository". */
  registry: string;
  repository: string;
  tag: string;
  /** A prebuilt image; when set nothing is built. */
  prebuilt: string;
  platform: string;
}

export interface HpaConfig {
  minReplicas: number;
  maxReplicas: number;
  cpuUtilization: number;
  scaleUpStabilizationSeconds: number;
  scaleUpPods: number;
  scaleDownStabilizationSeconds: number;
  scaleDownPods: number;
}

export interface ServiceEnvConfig {
  workers: number;
  tfjsBackend: string;
  queueMaxWaitMs: number;
  shutdownTimeoutMs: number;
  batchMaxSize: number;
  batchMaxWaitMs: number;
  logLevel: string;
}

export interface ClassifierConfig {
  namespace: string;
  strategyName: StrategyName;
  strategy: Strategy;
  /** Undefined under an autoscaling strategy: the HPA owns the count. */
  replicas: number | undefined;
  serviceType: ServiceType;
  servicePort: number;
  /** 0 lets Kubernetes pick. */
  nodePort: number;
  /** False on bare clusters with no load-balancer controller: the URL is then the node port's. */
  awaitLoadBalancer: boolean;
  nodePortSourceRanges: string[];
  resources: { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } };
  hpa: HpaConfig | undefined;
  env: ServiceEnvConfig;
  modelSource: 'image' | 'volume';
}

export interface DockerConfig {
  /** Empty: the local engine (DOCKER_HOST or its socket). */
  host: string;
  /** Published on the host, as the course's `docker run -p 32000:5000`. */
  port: number;
  restart: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  /** Where users reach the published port: nodeAddress, else the host of dockerHost, else localhost. */
  address: string;
}

export interface KServeConfig {
  mode: 'Serverless' | 'RawDeployment';
  /** Install cert-manager, KServe (and for Serverless Knative Serving with Kourier) from their Helm charts. */
  install: boolean;
  version: string;
  minReplicas: number;
  maxReplicas: number;
  scaleMetric: KServeScaleMetric;
  scaleTarget: number;
  /** Undefined: every request goes to the latest revision. */
  canaryTrafficPercent: number | undefined;
}

export interface TrainingConfig {
  enabled: boolean;
  /** The PersistentVolumeClaim exists when training runs or the model is read from it. */
  volumeNeeded: boolean;
  dataDir: string;
  /** A prebuilt training image; empty = built from model/Dockerfile beside the service image. */
  prebuiltImage: string;
  /** The ImageNet MobileNetV2 the Job fine-tunes (`train --base`). */
  base: string;
  epochs: number;
  resources: { cpu: string; memory: string };
  volumeSize: string;
  storageClass: string;
}

export interface StackConfig {
  stack: string;
  cluster: ClusterConfig;
  image: ImageConfig;
  classifier: ClassifierConfig;
  training: TrainingConfig;
  /** Set under strategy docker. */
  docker: DockerConfig | undefined;
  /** Set under strategy kserve. */
  kserve: KServeConfig | undefined;
  /** Things that will deploy but probably not as the user hopes. */
  warnings: string[];
}

export class ConfigError extends Error {}

/** `ssh://user@host:22` or `tcp://host:2376` → `host`; a local socket has no host users could reach. */
export function dockerHostName(dockerHost: string): string {
  const match = /^(?:ssh|tcp):\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)/.exec(dockerHost);
  return match?.[1] ?? '';
}

function describeIssues(error: z.ZodError, raw: Partial<Record<string, string>>): string {
  const lines = error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const got = raw[key] === undefined ? '' : ` (got ${JSON.stringify(raw[key])})`;
    return `  - ${PROJECT}:${key}: ${issue.message}${got}`;
  });
  return `Invalid stack configuration:\n${lines.join('\n')}\nSee the config table in README.md ("Deploy to Kubernetes").`;
}

/**
 * Validates raw config values (strings, as Pulumi hands them over; absent keys take their defaults) into the
 * typed stack configuration. Pure, so tests can feed it the committed stack files directly.
 */
export function parseConfig(raw: Partial<Record<string, string>>, stack: string): StackConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(result.error, raw));
  const c = result.data;
  const strategy: Strategy = STRATEGIES[c.strategy];
  const serviceType: ServiceType = c.serviceType === 'auto' ? strategy.serviceType : c.serviceType;
  const volumeNeeded = c.trainingEnabled || c.modelSource === 'volume';
  const podsAtMost = strategy.autoscaled
    ? c.hpaMaxReplicas
    : strategy.workload === 'inferenceService'
      ? c.kserveMaxReplicas
      : c.replicas;
  const kserveMetric: KServeScaleMetric = c.kserveScaleMetric || KSERVE_METRICS[c.kserveMode][0];

  const warnings: string[] = [];
  if (strategy.autoscaled && c.replicas !== 1) {
    warnings.push(
      `replicas (${c.replicas}) is ignored under the hpa strategy: hpaMinReplicas..hpaMaxReplicas apply`,
    );
  }
  if (strategy.workload !== 'deployment' && c.replicas !== 1) {
    warnings.push(
      `replicas (${c.replicas}) is ignored under the ${c.strategy} strategy` +
        (strategy.workload === 'inferenceService' ? ': kserveMinReplicas..kserveMaxReplicas apply' : ''),
    );
  }
  if (c.gkeMode === 'autopilot' && c.cluster !== 'gke') {
    warnings.push(
      'gkeMode autopilot applies to a cluster this stack creates (cluster gke); it is ignored here',
    );
  }
  if (c.gkeMode === 'autopilot' && c.cluster === 'gke' && c.spotNodes) {
    warnings.push(
      'spotNodes is ignored under gkeMode autopilot: Autopilot picks Spot capacity per pod, not per node pool',
    );
  }
  if (c.modelSource === 'volume' && podsAtMost > 1) {
    warnings.push(
      'modelSource is volume with more than one pod: a ReadWriteOnce volume attaches to one node only, so ' +
        'pods on other nodes stay Pending unless storageClass gives ReadWriteMany storage',
    );
  }

  return {
    stack,
    cluster: {
      kind: c.cluster,
      kubeconfig: c.kubeconfig,
      kubeContext: c.kubeContext,
      nodeAddress: c.nodeAddress,
      gcp: {
        project: c.gcpProject,
        region: c.gcpRegion,
        zone: c.gcpZone,
        releaseChannel: c.releaseChannel,
        machineType: c.machineType,
        nodeCount: c.nodeCount,
        minNodes: c.minNodes,
        maxNodes: c.maxNodes,
        spot: c.spotNodes,
        diskSizeGb: c.nodeDiskSizeGb,
        mode: c.gkeMode,
      },
    },
    image: {
      registry: c.registry,
      repository: c.imageRepository,
      tag: c.imageTag,
      prebuilt: c.image,
      platform: c.imagePlatform,
    },
    classifier: {
      namespace: c.namespace,
      strategyName: c.strategy,
      strategy,
      replicas: strategy.autoscaled ? undefined : c.replicas,
      serviceType,
      servicePort: c.servicePort,
      nodePort: c.nodePort,
      awaitLoadBalancer: c.awaitLoadBalancer,
      nodePortSourceRanges: c.nodePortSourceRanges,
      resources: {
        requests: { cpu: c.cpuRequest, memory: c.memoryRequest },
        limits: { cpu: c.cpuLimit, memory: c.memoryLimit },
      },
      hpa: strategy.autoscaled
        ? {
            minReplicas: c.hpaMinReplicas,
            maxReplicas: c.hpaMaxReplicas,
            cpuUtilization: c.hpaCpuUtilization,
            scaleUpStabilizationSeconds: c.hpaScaleUpStabilizationSeconds,
            scaleUpPods: c.hpaScaleUpPods,
            scaleDownStabilizationSeconds: c.hpaScaleDownStabilizationSeconds,
            scaleDownPods: c.hpaScaleDownPods,
          }
        : undefined,
      env: {
        workers: c.workers,
        tfjsBackend: c.tfjsBackend,
        queueMaxWaitMs: c.queueMaxWaitMs,
        shutdownTimeoutMs: c.shutdownTimeoutMs,
        batchMaxSize: c.batchMaxSize,
        batchMaxWaitMs: c.batchMaxWaitMs,
        logLevel: c.logLevel,
      },
      modelSource: c.modelSource,
    },
    training: {
      enabled: c.trainingEnabled,
      volumeNeeded,
      dataDir: c.trainingDataDir,
      prebuiltImage: c.trainingImage,
      base: c.trainingBase,
      epochs: c.trainingEpochs,
      resources: { cpu: c.trainingCpu, memory: c.trainingMemory },
      volumeSize: c.volumeSize,
      storageClass: c.storageClass,
    },
    docker:
      strategy.workload === 'dockerContainer'
        ? {
            host: c.dockerHost,
            port: c.dockerPort,
            restart: c.dockerRestart,
            address: c.nodeAddress || dockerHostName(c.dockerHost) || 'localhost',
          }
        : undefined,
    kserve:
      strategy.workload === 'inferenceService'
        ? {
            mode: c.kserveMode,
            install: c.kserveInstall,
            version: c.kserveVersion,
            minReplicas: c.kserveMinReplicas,
            maxReplicas: c.kserveMaxReplicas,
            scaleMetric: kserveMetric,
            scaleTarget: c.kserveScaleTarget || KSERVE_DEFAULT_TARGET[kserveMetric],
            canaryTrafficPercent:
              c.kserveCanaryTrafficPercent < 100 ? c.kserveCanaryTrafficPercent : undefined,
          }
        : undefined,
    warnings,
  };
}

/**
 * Reads this stack's configuration from Pulumi. A bad value ends the program as a RunError: Pulumi prints
 * the message alone, without a stack trace the user does not need.
 */
export function loadConfig(): StackConfig {
  const config = new pulumi.Config();
  const raw: Partial<Record<string, string>> = {};
  for (const key of CONFIG_KEYS) {
    const value = config.get(key);
    if (value !== undefined) raw[key] = value;
  }
  // Google's own examples set the project as gcp:project; honour that too rather than ask for it twice.
  if (!raw.gcpProject) {
    const gcpProject = new pulumi.Config('gcp').get('project');
    if (gcpProject) raw.gcpProject = gcpProject;
  }
  try {
    const parsed = parseConfig(raw, pulumi.getStack());
    for (const warning of parsed.warnings) void pulumi.log.warn(warning);
    return parsed;
  } catch (error) {
    if (error instanceof ConfigError) throw new pulumi.RunError(error.message);
    throw error;
  }
}
