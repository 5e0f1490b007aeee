// Every stack setting in one table: its key, type and default (a zod schema), what it means, and the section
// it is listed under. Pulumi.yaml's `config:` block and docs/configuration.md's table are generated from
// here (`npm run docs`; a test fails when either is stale), so a default changes here and nowhere else.
//
// Pulumi.yaml still declares every key with its default, because the CLI reads it: it type-checks stack
// values against the declarations, and it treats a key declared without a default as required.
// Keys are flat (`hpaMinReplicas`, not `hpa.minReplicas`) because Pulumi.yaml can declare only string,
// integer, boolean and array keys.

import { z } from 'zod';
import { parseCpu, parseMemory } from './quantity';
import { STRATEGY_NAMES } from './strategies';

const text = (fallback: string) => z.string().trim().default(fallback);
const integer = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);
const flag = (fallback: boolean) => z.stringbool().default(fallback);
const cpu = (fallback: string) =>
  text(fallback).refine((v) => (parseCpu(v) ?? 0) > 0, {
    message: 'must be a CPU quantity such as 500m, 1 or 1.5',
  });
const memory = (fallback: string) =>
  text(fallback).refine((v) => (parseMemory(v) ?? 0) > 0, {
    message: 'must be a memory quantity such as 384Mi or 2Gi',
  });
const imageRef = () =>
  text('').refine((v) => v === '' || /^[^\s@]+(@sha256:[0-9a-f]{64})?$/.test(v), {
    message: 'must be an image reference such as registry/repo:tag or registry/repo@sha256:<64 hex digits>',
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

const strategyKeys = {
  strategy: z
    .enum(STRATEGY_NAMES)
    .default('k8s')
    .describe(
      'Serving strategy: k8s (fixed pods on a node port), lb (fixed pods behind a load balancer), hpa (load balancer + HorizontalPodAutoscaler), kserve (a KServe InferenceService) or docker (one container on a Docker host).',
    ),
};

const clusterKeys = {
  cluster: z
    .enum(['existing', 'gke'])
    .default('existing')
    .describe('existing (use a kubeconfig) or gke (create a GKE cluster in gcpProject).'),
  kubeconfig: text('').describe('existing: path to a kubeconfig file; empty = KUBECONFIG or ~/.kube/config.'),
  kubeContext: text('').describe('existing: kubeconfig context to use; empty = its current context.'),
  nodeAddress: text('').describe(
    "Host or IP where users reach a node port (docker: the published port); empty = a node's external IP on GKE, the dockerHost's host, or localhost.",
  ),
  gcpProject: text('').describe(
    'gke: Google Cloud project ID (required with cluster gke; gcp:project is used when this is empty).',
  ),
  gcpRegion: text('us-central1').describe(
    'gke: region of the Artifact Registry repository (and of the cluster when gcpZone is empty).',
  ),
  gcpZone: text('us-central1-a').describe(
    'gke: zone of a zonal cluster (free control plane, one set of nodes); empty = a regional cluster.',
  ),
  releaseChannel: z
    .enum(['RAPID', 'REGULAR', 'STABLE'])
    .default('REGULAR')
    .describe('gke: release channel, RAPID, REGULAR or STABLE.'),
  machineType: text('e2-standard-2').describe('gke: node machine type.'),
  nodeCount: integer(1).describe('gke: nodes the pool starts with (within minNodes..maxNodes).'),
  minNodes: integer(1).describe(
    'gke: fewest nodes the cluster autoscaler keeps (what an idle stack pays for).',
  ),
  maxNodes: integer(3, 1).describe('gke: most nodes the cluster autoscaler may add.'),
  spotNodes: flag(false).describe('gke: use Spot VMs (60-90% cheaper, may be reclaimed at any time).'),
  nodeDiskSizeGb: integer(30, 10).describe(
    'gke: boot disk per node in GB (GKE would default to 100, billed while idle).',
  ),
  gkeMode: z
    .enum(['standard', 'autopilot'])
    .default('standard')
    .describe(
      "gke: standard (node pools this stack sizes and pays for while idle) or autopilot (Google runs the nodes; the pods' requests are billed; always regional).",
    ),
};

const dockerHostKeys = {
  dockerHost: text('')
    .refine((v) => v === '' || /^(unix|tcp|ssh|npipe):\/\/\S+$/.test(v), {
      message:
        'must be empty (the local engine) or a Docker host URL: unix://, tcp://host:port or ssh://user@host',
    })
    .describe(
      'docker: the Docker host, as DOCKER_HOST takes it (unix://, tcp://host:port, ssh://user@host); empty = the local engine.',
    ),
  dockerPort: integer(32000, 1)
    .pipe(z.number().max(65535))
    .describe('docker: host port published to the container (the course ran docker run -p 32000:5000).'),
  dockerRestart: z
    .enum(['no', 'on-failure', 'always', 'unless-stopped'])
    .default('unless-stopped')
    .describe('docker: restart policy, no, on-failure, always or unless-stopped.'),
};

const kserveKeys = {
  kserveMode: z
    .enum(['Serverless', 'RawDeployment'])
    .default('Serverless')
    .describe(
      'kserve: Serverless (Knative: scale to zero, concurrency autoscaling, canaries) or RawDeployment (a Deployment with an HPA, no Knative).',
    ),
  kserveInstall: flag(false).describe(
    'kserve: install cert-manager, KServe (and for Serverless Knative Serving with Kourier) from their Helm charts; false = the cluster has them.',
  ),
  kserveVersion: text('v0.20.0').describe(
    'kserve: version of the kserve-crd and kserve-resources charts installed with kserveInstall.',
  ),
  kserveMinReplicas: integer(1).describe(
    'kserve: fewest predictor pods; 0 = scale to zero when idle (Serverless only).',
  ),
  kserveMaxReplicas: integer(5, 1).describe('kserve: most predictor pods.'),
  kserveScaleMetric: z
    .enum(['', 'concurrency', 'rps', 'cpu', 'memory'])
    .default('')
    .describe(
      'kserve: concurrency or rps (Serverless), cpu or memory (RawDeployment); empty = concurrency or cpu.',
    ),
  kserveScaleTarget: integer(0).describe(
    'kserve: target per pod of kserveScaleMetric (requests in flight, requests/s, or percent of the request); 0 = 2, 20, 70 or 80.',
  ),
  kserveCanaryTrafficPercent: integer(100)
    .pipe(z.number().max(100))
    .describe(
      'kserve: share of traffic a changed predictor gets while the previous revision keeps the rest (Serverless); 100 = no canary.',
    ),
};

const imageKeys = {
  registry: text('').describe(
    'Registry (host[:port][/path]) to push the image to; empty on gke = a new Artifact Registry repository.',
  ),
  imageRepository: text('gourmetgram').describe('Repository name inside the registry.'),
  imageTag: text('latest').describe(
    'Tag pushed with each build; the Deployment uses the digest, never the tag.',
  ),
  image: imageRef().describe(
    'A prebuilt image (repo@sha256:... or repo:tag, resolved to its digest); set = nothing is built.',
  ),
  imagePlatform: text('linux/amd64').describe("Platform the image is built for (the nodes' platform)."),
};

const kubernetesKeys = {
  namespace: text('gourmetgram')
    .refine((v) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v), {
      message: 'must be a DNS label: lower-case letters, digits and -, at most 63 characters',
    })
    .describe('Namespace of every object.'),
  replicas: integer(1).describe('Pods for k8s and lb (the hpa strategy ignores it).'),
  serviceType: z
    .enum(['auto', 'NodePort', 'LoadBalancer', 'ClusterIP'])
    .default('auto')
    .describe(
      "auto (the strategy's: NodePort for k8s, LoadBalancer for lb and hpa), NodePort, LoadBalancer or ClusterIP.",
    ),
  servicePort: integer(80, 1)
    .pipe(z.number().max(65535))
    .describe('Port of the Service (and of the load balancer).'),
  nodePort: integer(0)
    .refine((v) => v === 0 || (v >= 30000 && v <= 32767), {
      message: 'must be 0 (let Kubernetes pick) or within the node-port range 30000-32767',
    })
    .describe(
      'Node port (30000-32767); 0 = Kubernetes picks one. Stacks sharing a cluster need different ones.',
    ),
  awaitLoadBalancer: flag(true).describe(
    'Wait for the load balancer address; false on clusters without a load-balancer controller (the URL is then the node port).',
  ),
  nodePortSourceRanges: list(['0.0.0.0/0']).describe(
    'gke: source CIDR ranges the node-port firewall rule admits.',
  ),
};

const podResourceKeys = {
  cpuRequest: cpu('500m').describe(
    'CPU request per pod (what the scheduler reserves and the HPA measures against).',
  ),
  cpuLimit: cpu('1').describe('CPU limit per pod (one inference worker keeps about one core busy).'),
  memoryRequest: memory('256Mi').describe(
    'Memory request per pod: the median resident memory `npm run bench` measured as a pod runs it (one worker, PostgreSQL) with 8 clients over 1,000 real photos of 3–16 MP (187 MiB, bench/REPORT.md), plus the upload budget (MAX_INFLIGHT_UPLOAD_BYTES, 64 MiB), rounded up; docs/deploy.md derives it.',
  ),
  memoryLimit: memory('512Mi').describe(
    "Memory limit per pod: that run's peak (274 MiB) plus the whole upload budget (64 MiB), decode budget (DECODE_MEMORY_BYTES, 96 MiB) and labels queue (LABEL_QUEUE_MAX_MB, 32 MiB), rounded up; with workers: 2, 576Mi (a second worker added 34–87 MiB at the peak in two runs).",
  ),
};

const hpaKeys = {
  hpaMinReplicas: integer(1, 1).describe('hpa: fewest pods.'),
  hpaMaxReplicas: integer(5, 1).describe('hpa: most pods.'),
  hpaCpuUtilization: integer(70, 1).describe('hpa: target average CPU, percent of the CPU request.'),
  hpaScaleUpStabilizationSeconds: integer(0).describe(
    'hpa: look-back window before scaling up (0 = react at once).',
  ),
  hpaScaleUpPods: integer(2, 1).describe('hpa: most pods added per 15 s.'),
  hpaScaleDownStabilizationSeconds: integer(300).describe('hpa: look-back window before scaling down.'),
  hpaScaleDownPods: integer(1, 1).describe('hpa: most pods removed per 60 s.'),
};

/**
 * A number within [min, max] as the service reads it, or empty for the service's own default: the default
 * lives in service/src/config.ts only. Strings, because Pulumi.yaml can declare no decimal keys.
 */
const serviceNumber = (min: number, max: number, example: string, shape = /^\d+(\.\d+)?$/) =>
  text('').refine((v) => v === '' || (shape.test(v) && Number(v) >= min && Number(v) <= max), {
    message: `must be empty (the service's default) or a number from ${min} to ${max}, such as ${example}`,
  });

const serviceEnvKeys = {
  workers: integer(1, 1).describe(
    'WORKERS: inference worker threads per pod (at most the CPU limit in cores, rounded up).',
  ),
  tfjsBackend: z
    .enum(['auto', 'tensorflow', 'wasm', 'cpu'])
    .default('auto')
    .describe('TFJS_BACKEND: auto, tensorflow, wasm or cpu.'),
  queueMaxWaitMs: integer(2000, 1).describe(
    'QUEUE_MAX_WAIT_MS: a request that would wait longer is answered 503 at once.',
  ),
  shutdownTimeoutMs: integer(20000, 1).describe(
    'SHUTDOWN_TIMEOUT_MS: drain deadline after SIGTERM (the grace period is set above it).',
  ),
  batchMaxSize: integer(1, 1).describe(
    'BATCH_MAX_SIZE: the most images one forward pass takes (adaptive batching; 1 = off). docs/deploy.md lists it per pod size.',
  ),
  batchMaxWaitMs: integer(5).describe(
    'BATCH_MAX_WAIT_MS: longest wait for a fuller batch, taken only while more images are on their way (a lone request never waits).',
  ),
  logLevel: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
    .default('info')
    .describe('LOG_LEVEL: fatal, error, warn, info, debug or trace.'),
  labelSampleRate: serviceNumber(0, 1, '0.05').describe(
    "LABEL_SAMPLE_RATE: share of uploads the page asks the user to label first; empty = the service's default.",
  ),
  labelRetentionDays: serviceNumber(1, 3650, '365', /^\d+$/).describe(
    "LABEL_RETENTION_DAYS: labelled photos older than this are deleted; empty = the service's default.",
  ),
};

const trainingKeys = {
  modelSource: z
    .enum(['image', 'volume'])
    .default('image')
    .describe(
      'image (the model shipped in the image) or volume (the model trained into the PVC, MODEL_DIR=/models/current).',
    ),
  trainingEnabled: flag(false).describe(
    'Create the PVC and a Job that trains a model into it from the image.',
  ),
  trainingDataDir: text('Food-11')
    .refine((v) => /^[\w.-]+$/.test(v), {
      message: 'must be one folder name inside the volume data/ folder (letters, digits, . _ -)',
    })
    .describe("Folder under the volume's data/ holding the Food-11 class folders."),
  trainingCpu: cpu('1').describe('CPU request and limit of the training Job.'),
  trainingMemory: memory('2Gi').describe('Memory request and limit of the training Job.'),
  trainingImage: imageRef().describe(
    'Prebuilt training image (repo@sha256:...); empty = built from model/Dockerfile beside the service image.',
  ),
  trainingBase: text(
    'https://storage.googleapis.com/teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json',
  )
    .refine((v) => /^https?:\/\/\S+$|^\/\S+$/.test(v), {
      message:
        'must be an http(s):// URL of a TF.js MobileNetV2 model.json, or a path inside the training image or volume',
    })
    .describe('ImageNet MobileNetV2 (TF.js model.json URL or path) the training Job fine-tunes.'),
  trainingEpochs: integer(6, 1).describe('Passes over the training photos in the training Job.'),
  volumeSize: memory('10Gi').describe('Size of the PVC holding training data and models.'),
  storageClass: text('').describe(
    "Storage class of the PVCs (training volume, the database's volume); empty = the cluster default.",
  ),
};

const databaseKeys = {
  databaseServer: z
    .enum(['in-cluster', 'cloudsql'])
    .default('in-cluster')
    .describe(
      'Where the labels database runs when databaseUrl is empty: in-cluster (a PostgreSQL StatefulSet with a volume; docker: a PostgreSQL container with a volume on the same host) or cloudsql (gke: a Cloud SQL instance on a private IP).',
    ),
  databaseUrl: text('')
    .refine((v) => v === '' || /^postgres(ql)?:\/\/[^\s/]+\/\S+$/.test(v), {
      message: 'must be empty (a database this stack creates) or postgres://user:password@host:5432/db',
    })
    .describe(
      'An existing PostgreSQL server, postgres://user:password@host:5432/db (secret: pulumi config set --secret databaseUrl ...); set = no database is created.',
    ),
  databaseProtect: flag(true).describe(
    'Protect the database, its volume and its password: pulumi destroy refuses to delete them (docs/labels.md, "In each stack", says how to delete them).',
  ),
  databaseImage: text('postgres:17.6')
    .refine((v) => /^[^\s@]+(:[\w.-]+)(@sha256:[0-9a-f]{64})?$/.test(v), {
      message: 'must be an image with a tag, such as postgres:17.6 (resolved to its digest at deploy)',
    })
    .describe(
      'in-cluster and docker: the official PostgreSQL image, by tag (pinned to its digest at deploy).',
    ),
  databaseCpu: cpu('250m').describe('in-cluster and docker: CPU request and limit of the PostgreSQL server.'),
  databaseMemory: memory('256Mi').describe(
    'in-cluster and docker: memory request and limit of the PostgreSQL server.',
  ),
  databaseVolumeSize: memory('5Gi').describe(
    "in-cluster: size of the database's volume claim (a Docker volume has no size).",
  ),
  cloudSqlTier: text('db-f1-micro').describe('cloudsql: machine tier of the Cloud SQL instance.'),
  cloudSqlVersion: text('POSTGRES_17').describe('cloudsql: database version of the Cloud SQL instance.'),
};

/** Keys whose values are secrets: never echoed in an error, and kept secret in the program and its state. */
export const SECRET_KEYS = ['databaseUrl'] as const satisfies readonly ConfigKey[];

/** The keys in the order and under the headings Pulumi.yaml and the README list them. */
export const CONFIG_SECTIONS = [
  { title: 'Strategy', keys: strategyKeys },
  { title: 'Cluster', keys: clusterKeys },
  { title: 'Docker host (strategy docker)', keys: dockerHostKeys },
  { title: 'KServe (strategy kserve)', keys: kserveKeys },
  { title: 'Image', keys: imageKeys },
  { title: 'Kubernetes objects', keys: kubernetesKeys },
  { title: 'Pod resources', keys: podResourceKeys },
  { title: 'HorizontalPodAutoscaler (strategy hpa)', keys: hpaKeys },
  { title: 'Service settings (environment of the container, see docs/interfaces.md)', keys: serviceEnvKeys },
  { title: 'Model and training in the cluster', keys: trainingKeys },
  { title: 'Labels database (PostgreSQL)', keys: databaseKeys },
] as const;

/** Every key, its type and its default. */
export const configFields = z.object({
  ...strategyKeys,
  ...clusterKeys,
  ...dockerHostKeys,
  ...kserveKeys,
  ...imageKeys,
  ...kubernetesKeys,
  ...podResourceKeys,
  ...hpaKeys,
  ...serviceEnvKeys,
  ...trainingKeys,
  ...databaseKeys,
});

export type ConfigKey = keyof typeof configFields.shape;
export const CONFIG_KEYS = Object.keys(configFields.shape) as ConfigKey[];
/** Every key's value, flat and typed, before parseConfig groups them into a StackConfig. */
export type StackSettings = z.infer<typeof configFields>;
