// The stack's configuration, read from Pulumi once and validated once: every other module receives the typed
// object and never calls `new pulumi.Config()`. A bad value stops `pulumi preview` before any resource is
// planned, with a message that names the key, what is allowed and the command that fixes it. The keys
// themselves, with their defaults, are in config-keys.ts; the checks across keys in config-checks.ts.

import * as pulumi from '@pulumi/pulumi';
import type { z } from 'zod';
import { configWarnings, crossKeyChecks } from './config-checks';
import { CONFIG_KEYS, SECRET_KEYS, configFields, type StackSettings } from './config-keys';
import {
  KSERVE_DEFAULT_TARGET,
  KSERVE_METRICS,
  STRATEGIES,
  type KServeScaleMetric,
  type ServiceType,
  type Strategy,
  type StrategyName,
} from './strategies';

/** The config namespace of every key: `gourmetgram:replicas`. */
const PROJECT = 'gourmetgram';

/** Every key's schema, then the checks across keys. */
export const configSchema = configFields.superRefine(crossKeyChecks);

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
  /** Empty: the service's default. */
  labelSampleRate: string;
  labelRetentionDays: string;
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

export type DatabaseServer = 'in-cluster' | 'cloudsql' | 'external';

export interface DatabaseConfig {
  /** external: databaseUrl names a server this stack does not manage, and nothing is created. */
  server: DatabaseServer;
  /** The existing server's URL when server is external, else empty. A secret: wrap it in pulumi.secret. */
  externalUrl: string;
  /** Pulumi protect on what holds the data and its password: `pulumi destroy` refuses to delete them. */
  protect: boolean;
  /** The official PostgreSQL image by tag, pinned to its digest at deploy. */
  image: string;
  /** Requests equal limits. */
  resources: { cpu: string; memory: string };
  volumeSize: string;
  storageClass: string;
  cloudSql: { tier: string; version: string };
}

export interface StackConfig {
  stack: string;
  cluster: ClusterConfig;
  image: ImageConfig;
  classifier: ClassifierConfig;
  training: TrainingConfig;
  /** The labels store every strategy's classifier writes to (DATABASE_URL). */
  database: DatabaseConfig;
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
    const secret = (SECRET_KEYS as readonly string[]).includes(key);
    const got = raw[key] === undefined || secret ? '' : ` (got ${JSON.stringify(raw[key])})`;
    return `  - ${PROJECT}:${key}: ${issue.message}${got}`;
  });
  return `Invalid stack configuration:\n${lines.join('\n')}\nSee the config table in docs/configuration.md ("The stacks").`;
}

/**
 * Validates raw config values (strings, as Pulumi hands them over; absent keys take their defaults) into the
 * typed stack configuration. Pure, so tests can feed it the committed stack files directly.
 */
export function parseConfig(raw: Partial<Record<string, string>>, stack: string): StackConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(result.error, raw));
  const settings = result.data;
  const strategy: Strategy = STRATEGIES[settings.strategy];
  return {
    stack,
    cluster: clusterConfig(settings),
    image: {
      registry: settings.registry,
      repository: settings.imageRepository,
      tag: settings.imageTag,
      prebuilt: settings.image,
      platform: settings.imagePlatform,
    },
    classifier: classifierConfig(settings, strategy),
    training: trainingConfig(settings),
    database: databaseConfig(settings),
    docker: strategy.workload === 'dockerContainer' ? dockerConfig(settings) : undefined,
    kserve: strategy.workload === 'inferenceService' ? kserveConfig(settings) : undefined,
    warnings: configWarnings(settings),
  };
}

function clusterConfig(settings: StackSettings): ClusterConfig {
  return {
    kind: settings.cluster,
    kubeconfig: settings.kubeconfig,
    kubeContext: settings.kubeContext,
    nodeAddress: settings.nodeAddress,
    gcp: {
      project: settings.gcpProject,
      region: settings.gcpRegion,
      zone: settings.gcpZone,
      releaseChannel: settings.releaseChannel,
      machineType: settings.machineType,
      nodeCount: settings.nodeCount,
      minNodes: settings.minNodes,
      maxNodes: settings.maxNodes,
      spot: settings.spotNodes,
      diskSizeGb: settings.nodeDiskSizeGb,
      mode: settings.gkeMode,
    },
  };
}

function classifierConfig(settings: StackSettings, strategy: Strategy): ClassifierConfig {
  return {
    namespace: settings.namespace,
    strategyName: settings.strategy,
    strategy,
    replicas: strategy.autoscaled ? undefined : settings.replicas,
    serviceType: settings.serviceType === 'auto' ? strategy.serviceType : settings.serviceType,
    servicePort: settings.servicePort,
    nodePort: settings.nodePort,
    awaitLoadBalancer: settings.awaitLoadBalancer,
    nodePortSourceRanges: settings.nodePortSourceRanges,
    resources: {
      requests: { cpu: settings.cpuRequest, memory: settings.memoryRequest },
      limits: { cpu: settings.cpuLimit, memory: settings.memoryLimit },
    },
    hpa: strategy.autoscaled
      ? {
          minReplicas: settings.hpaMinReplicas,
          maxReplicas: settings.hpaMaxReplicas,
          cpuUtilization: settings.hpaCpuUtilization,
          scaleUpStabilizationSeconds: settings.hpaScaleUpStabilizationSeconds,
          scaleUpPods: settings.hpaScaleUpPods,
          scaleDownStabilizationSeconds: settings.hpaScaleDownStabilizationSeconds,
          scaleDownPods: settings.hpaScaleDownPods,
        }
      : undefined,
    env: {
      workers: settings.workers,
      tfjsBackend: settings.tfjsBackend,
      queueMaxWaitMs: settings.queueMaxWaitMs,
      shutdownTimeoutMs: settings.shutdownTimeoutMs,
      batchMaxSize: settings.batchMaxSize,
      batchMaxWaitMs: settings.batchMaxWaitMs,
      logLevel: settings.logLevel,
      labelSampleRate: settings.labelSampleRate,
      labelRetentionDays: settings.labelRetentionDays,
    },
    modelSource: settings.modelSource,
  };
}

function trainingConfig(settings: StackSettings): TrainingConfig {
  return {
    enabled: settings.trainingEnabled,
    volumeNeeded: settings.trainingEnabled || settings.modelSource === 'volume',
    dataDir: settings.trainingDataDir,
    prebuiltImage: settings.trainingImage,
    base: settings.trainingBase,
    epochs: settings.trainingEpochs,
    resources: { cpu: settings.trainingCpu, memory: settings.trainingMemory },
    volumeSize: settings.volumeSize,
    storageClass: settings.storageClass,
  };
}

function databaseConfig(settings: StackSettings): DatabaseConfig {
  return {
    server: settings.databaseUrl ? 'external' : settings.databaseServer,
    externalUrl: settings.databaseUrl,
    protect: settings.databaseProtect,
    image: settings.databaseImage,
    resources: { cpu: settings.databaseCpu, memory: settings.databaseMemory },
    volumeSize: settings.databaseVolumeSize,
    storageClass: settings.storageClass,
    cloudSql: { tier: settings.cloudSqlTier, version: settings.cloudSqlVersion },
  };
}

function dockerConfig(settings: StackSettings): DockerConfig {
  return {
    host: settings.dockerHost,
    port: settings.dockerPort,
    restart: settings.dockerRestart,
    address: settings.nodeAddress || dockerHostName(settings.dockerHost) || 'localhost',
  };
}

function kserveConfig(settings: StackSettings): KServeConfig {
  const scaleMetric: KServeScaleMetric = settings.kserveScaleMetric || KSERVE_METRICS[settings.kserveMode][0];
  return {
    mode: settings.kserveMode,
    install: settings.kserveInstall,
    version: settings.kserveVersion,
    minReplicas: settings.kserveMinReplicas,
    maxReplicas: settings.kserveMaxReplicas,
    scaleMetric,
    scaleTarget: settings.kserveScaleTarget || KSERVE_DEFAULT_TARGET[scaleMetric],
    canaryTrafficPercent:
      settings.kserveCanaryTrafficPercent < 100 ? settings.kserveCanaryTrafficPercent : undefined,
  };
}

/**
 * The SDK knows which values the stack file holds encrypted, but only exports the check untyped; where it is
 * missing nothing is said (the program keeps the value secret either way).
 */
const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean })
  .isConfigSecret;

/** A secret key set in plain text sits readable in Pulumi.<stack>.yaml, and so in git. */
export function plaintextSecretWarnings(raw: Partial<Record<string, string>>): string[] {
  return SECRET_KEYS.filter((key) => raw[key] && isConfigSecret?.(`${PROJECT}:${key}`) === false).map(
    (key) =>
      `${key} is stored in plain text in Pulumi.${pulumi.getStack()}.yaml: ` +
      `pulumi config set --secret ${key} <value> encrypts it`,
  );
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
    const warnings = [...parsed.warnings, ...plaintextSecretWarnings(raw)];
    for (const warning of warnings) void pulumi.log.warn(warning);
    return parsed;
  } catch (error) {
    if (error instanceof ConfigError) throw new pulumi.RunError(error.message);
    throw error;
  }
}
