// The team's deployment rules, checked by `pulumi preview --policy-pack policy` before anything reaches a
// cluster. Kept apart from index.ts (which starts the policy server) so tests can call each rule directly.

import type {
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from '@pulumi/policy';

// Props are Pulumi's view of the Kubernetes object: plain JSON, loosely typed on purpose.
interface EnvVar {
  name?: string;
  value?: string;
  valueFrom?: unknown;
}
interface Container {
  name?: string;
  image?: string;
  env?: EnvVar[];
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  readinessProbe?: { httpGet?: { path?: string } };
  livenessProbe?: { httpGet?: { path?: string } };
  startupProbe?: { httpGet?: { path?: string } };
  securityContext?: { runAsNonRoot?: boolean; allowPrivilegeEscalation?: boolean };
  ports?: { name?: string; containerPort?: number }[];
}
interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean };
}

const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
const STATEFUL_SET = 'kubernetes:apps/v1:StatefulSet';
const SERVICE = 'kubernetes:core/v1:Service';
const HPA = 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler';
const INFERENCE_SERVICE = 'kubernetes:serving.kserve.io/v1beta1:InferenceService';
const DOCKER_CONTAINER = 'docker:index/container:Container';
const DOCKER_REMOTE_IMAGE = 'docker:index/remoteImage:RemoteImage';

const WORKLOADS: Record<string, (props: Record<string, unknown>) => PodSpec | undefined> = {
  [DEPLOYMENT]: (p) => (p.spec as { template?: { spec?: PodSpec } })?.template?.spec,
  [STATEFUL_SET]: (p) => (p.spec as { template?: { spec?: PodSpec } })?.template?.spec,
  'kubernetes:batch/v1:Job': (p) => (p.spec as { template?: { spec?: PodSpec } })?.template?.spec,
  // A KServe predictor is a pod spec with KServe's own fields (replicas, scaling) beside it.
  [INFERENCE_SERVICE]: (p) => (p.spec as { predictor?: PodSpec })?.predictor,
};
/** Workloads that serve requests (the database too), and so need probes that tell a busy pod from a dead one. */
const SERVING = new Set([DEPLOYMENT, STATEFUL_SET, INFERENCE_SERVICE]);

function podSpec(args: { type: string; props: Record<string, unknown> }): PodSpec | undefined {
  return WORKLOADS[args.type]?.(args.props);
}

function allContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
}

// Values still unknown during a preview are never read here: the policy SDK's unknown-checking proxy
// skips a rule that touches one, so only known values can be violations.
const label = (container: Container) => `container "${container.name ?? '?'}"`;

export const requestsAndLimits: ResourceValidationPolicy = {
  name: 'containers-have-requests-and-limits',
  description:
    'Every container sets CPU and memory requests (the scheduler and the HPA need them) and limits ' +
    '(one runaway pod must not starve its node).',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    const pod = podSpec(args);
    if (!pod) return;
    for (const c of allContainers(pod)) {
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory']) {
          if (c.resources?.[kind]?.[resource] === undefined) {
            report(`${label(c)} has no ${resource} ${kind === 'requests' ? 'request' : 'limit'}`);
          }
        }
      }
    }
  },
};

export const probes: ResourceValidationPolicy = {
  name: 'serving-containers-have-cheap-probes',
  description:
    'Every serving container (Deployment, StatefulSet, KServe predictor) has readiness and liveness probes, and no probe ' +
    'calls /test (it runs a full inference, which under load makes a busy pod look dead).',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (!SERVING.has(args.type)) return;
    for (const c of podSpec(args)?.containers ?? []) {
      if (!c.readinessProbe) report(`${label(c)} has no readiness probe`);
      if (!c.livenessProbe) report(`${label(c)} has no liveness probe`);
      for (const [kind, probe] of Object.entries({
        startup: c.startupProbe,
        readiness: c.readinessProbe,
        liveness: c.livenessProbe,
      })) {
        if (probe?.httpGet?.path === '/test')
          report(`${label(c)} ${kind} probe calls /test, which runs an inference`);
      }
    }
  },
};

export const nonRoot: ResourceValidationPolicy = {
  name: 'pods-run-as-non-root',
  description:
    'Every container runs as non-root (pod or container runAsNonRoot) without privilege escalation.',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    const pod = podSpec(args);
    if (!pod) return;
    for (const c of allContainers(pod)) {
      const runAsNonRoot = c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
      if (runAsNonRoot !== true) report(`${label(c)} may run as root: set runAsNonRoot: true`);
      if (c.securityContext?.allowPrivilegeEscalation !== false) {
        report(`${label(c)} allows privilege escalation: set allowPrivilegeEscalation: false`);
      }
    }
  },
};

const DIGEST_PINNED = /@sha256:[0-9a-f]{64}$/;

export const digestPinned: ResourceValidationPolicy = {
  name: 'images-pinned-by-digest',
  description:
    'Every container image is given as repository@sha256:<digest>: a tag can be pushed again, and then nodes ' +
    'run different code than the one deployed. A Docker host pulls its image by digest too.',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (args.type === DOCKER_REMOTE_IMAGE) {
      const name = (args.props as { name?: string }).name;
      if (name !== undefined && !DIGEST_PINNED.test(name)) {
        report(`image "${name}" pulled onto the Docker host is not pinned by digest`);
      }
      return;
    }
    const pod = podSpec(args);
    if (!pod) return;
    for (const c of allContainers(pod)) {
      // An image to be built has no digest yet in a preview; the SDK skips the rule then, and a missing
      // image is the schema's business, not this rule's.
      if (c.image === undefined) continue;
      if (!DIGEST_PINNED.test(c.image)) report(`${label(c)} image "${c.image}" is not pinned by digest`);
    }
  },
};

// A Docker container's props, as @pulumi/docker names them.
interface DockerContainer {
  name?: string;
  cpus?: string;
  memory?: number;
  user?: string;
  securityOpts?: string[];
  healthcheck?: { tests?: string[] };
}

/** A user Docker would run as root: none (the image's may be root), root by name, or uid 0. */
const ROOT_USER = /^(|root|0)(:.*)?$/;

export const dockerContainerHardened: ResourceValidationPolicy = {
  name: 'docker-containers-hardened',
  description:
    'A container on a Docker host keeps what the pods promise: CPU and memory limits, a health check that ' +
    'does not call /test, a non-root user and no-new-privileges.',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (args.type !== DOCKER_CONTAINER) return;
    const container = args.props as DockerContainer;
    const name = label(container);
    if (!container.cpus) report(`${name} has no CPU limit (cpus)`);
    if (!container.memory) report(`${name} has no memory limit (memory)`);
    const tests = container.healthcheck?.tests;
    if (!tests?.length) report(`${name} has no health check`);
    else if (tests.some((t) => t.includes('/test'))) {
      report(`${name} health check calls /test, which runs an inference`);
    }
    if (ROOT_USER.test(container.user ?? ''))
      report(`${name} may run as root: set user to a non-root uid:gid`);
    if (!(container.securityOpts ?? []).some((o) => /^no-new-privileges(:true|=true)?$/.test(o))) {
      report(`${name} allows privilege escalation: add no-new-privileges:true to securityOpts`);
    }
  },
};

interface Hpa {
  metadata?: { namespace?: string };
  spec?: {
    scaleTargetRef?: { kind?: string; name?: string };
    metrics?: { type?: string; resource?: { name?: string } }[];
  };
}

export const hpaTargetHasCpuRequest: StackValidationPolicy = {
  name: 'hpa-target-has-cpu-request',
  description:
    'A HorizontalPodAutoscaler on CPU measures utilization against the CPU request: every container of the ' +
    'Deployment it scales must have one, or the HPA never scales.',
  enforcementLevel: 'mandatory',
  validateStack: (args: StackValidationArgs, report: ReportViolation) => {
    const deployments = args.resources.filter((r) => r.type === DEPLOYMENT);
    for (const hpa of args.resources.filter((r) => r.type === HPA)) {
      const props = hpa.props as Hpa;
      const onCpu = (props.spec?.metrics ?? []).some(
        (m) => m.type === 'Resource' && m.resource?.name === 'cpu',
      );
      const target = props.spec?.scaleTargetRef;
      if (!onCpu || target?.kind !== 'Deployment' || target.name === undefined) continue;
      const deployment = deployments.find(
        (d) =>
          (d.props.metadata as { name?: string } | undefined)?.name === target.name &&
          (d.props.metadata as { namespace?: string } | undefined)?.namespace === props.metadata?.namespace,
      );
      if (!deployment) {
        report(`HPA scales Deployment "${target.name}", which this stack does not declare`, hpa.urn);
        continue;
      }
      for (const c of podSpec(deployment)?.containers ?? []) {
        if (c.resources?.requests?.cpu === undefined) {
          report(
            `HPA target "${target.name}" ${label(c)} has no CPU request to measure utilization against`,
            hpa.urn,
          );
        }
      }
    }
  },
};

interface Workload {
  metadata?: { namespace?: string };
  spec?: {
    template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } };
  };
}
interface ServiceProps {
  metadata?: { name?: string; namespace?: string };
  spec?: { selector?: Record<string, string>; ports?: { port?: number; targetPort?: number | string }[] };
}

const METRICS_PORT_NAME = 'metrics';

export const metricsScrapedNotPublic: StackValidationPolicy = {
  name: 'metrics-scraped-not-public',
  description:
    'A pod that serves metrics (a container port named "metrics") is annotated for Prometheus to scrape that ' +
    'port, and no Service routes to it: a Service is what a load balancer or node port exposes to the internet.',
  enforcementLevel: 'mandatory',
  validateStack: (args: StackValidationArgs, report: ReportViolation) => {
    const services = args.resources.filter((r) => r.type === SERVICE);
    for (const deployment of args.resources.filter((r) => r.type === DEPLOYMENT)) {
      const props = deployment.props as Workload;
      const template = props.spec?.template;
      const containers = podSpec(deployment)?.containers ?? [];
      const metricsPorts = containers.flatMap((container) =>
        (container.ports ?? [])
          .filter((p) => p.name === METRICS_PORT_NAME)
          .map((p) => ({ container, port: p.containerPort })),
      );
      if (metricsPorts.length === 0) continue;
      const annotations = template?.metadata?.annotations ?? {};
      if (annotations['prometheus.io/scrape'] !== 'true') {
        report('pods with a metrics port are not annotated prometheus.io/scrape: "true"', deployment.urn);
      }
      if (!metricsPorts.some(({ port }) => String(port) === annotations['prometheus.io/port'])) {
        report(
          `prometheus.io/port is "${annotations['prometheus.io/port'] ?? ''}", not the metrics container port ${metricsPorts.map((m) => m.port).join(', ')}`,
          deployment.urn,
        );
      }
      const labels = template?.metadata?.labels ?? {};
      for (const service of services) {
        const serviceProps = service.props as ServiceProps;
        const selector = serviceProps.spec?.selector;
        if (!selector || serviceProps.metadata?.namespace !== props.metadata?.namespace) continue;
        if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
        for (const port of serviceProps.spec?.ports ?? []) {
          const target = port.targetPort ?? port.port;
          if (target === METRICS_PORT_NAME || metricsPorts.some((m) => m.port === target)) {
            report(
              `Service "${serviceProps.metadata?.name ?? '?'}" routes port ${port.port} to the metrics port: scrape it from inside the cluster instead`,
              service.urn,
            );
          }
        }
      }
    }
  },
};

/** Names of variables that hold credentials: they come from a Secret, never as a value in the pod spec. */
const CREDENTIAL_NAME = /(PASSWORD|SECRET|TOKEN|DATABASE_URL|_KEY)$/i;
/** A URL with a password in it (scheme://user:password@host), whatever the variable is called. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i;

export const credentialsFromSecrets: ResourceValidationPolicy = {
  name: 'credentials-from-secrets',
  description:
    'A password (DATABASE_URL, *_PASSWORD, *_SECRET, *_TOKEN, *_KEY, or any URL with a password) reaches a ' +
    'container from a Secret (valueFrom.secretKeyRef), never as a value in the pod spec, which anyone who may ' +
    'read the Deployment, or the stack state, could read.',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    const pod = podSpec(args);
    if (!pod) return;
    for (const c of allContainers(pod)) {
      for (const variable of c.env ?? []) {
        if (variable.value === undefined) continue;
        if (CREDENTIAL_NAME.test(variable.name ?? '') || URL_WITH_PASSWORD.test(variable.value)) {
          report(
            `${label(c)} sets ${variable.name ?? '?'} in plain text: take it from a Secret (secretKeyRef)`,
          );
        }
      }
    }
  },
};

interface StatefulSetProps {
  spec?: {
    volumeClaimTemplates?: {
      metadata?: { name?: string };
      spec?: { resources?: { requests?: { storage?: string } } };
    }[];
  };
}

export const statefulSetsHaveVolumes: ResourceValidationPolicy = {
  name: 'stateful-sets-have-volumes',
  description:
    'A StatefulSet (the labels database) keeps its data on a PersistentVolumeClaim of a stated size: without one ' +
    'the data lives in the pod and is gone when the pod moves to another node.',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (args.type !== STATEFUL_SET) return;
    const templates = (args.props as StatefulSetProps).spec?.volumeClaimTemplates ?? [];
    if (templates.length === 0)
      report('StatefulSet has no volumeClaimTemplates: its data would die with the pod');
    for (const template of templates) {
      if (!template.spec?.resources?.requests?.storage) {
        report(`volume claim "${template.metadata?.name ?? '?'}" requests no storage size`);
      }
    }
  },
};

const PUBLIC_SERVICE_TYPES = new Set(['LoadBalancer', 'NodePort']);
const POSTGRES_PORT = 5432;

export const databasesNotPublic: StackValidationPolicy = {
  name: 'databases-not-public',
  description:
    'A Service in front of a StatefulSet (the labels database) or of the PostgreSQL port is ClusterIP: a node port ' +
    'or a load balancer would put the database on the internet.',
  enforcementLevel: 'mandatory',
  validateStack: (args: StackValidationArgs, report: ReportViolation) => {
    const statefulPods = args.resources
      .filter((r) => r.type === STATEFUL_SET)
      .map((r) => ({
        namespace: (r.props.metadata as { namespace?: string } | undefined)?.namespace,
        labels: (r.props as Workload).spec?.template?.metadata?.labels ?? {},
      }));
    for (const service of args.resources.filter((r) => r.type === SERVICE)) {
      const props = service.props as ServiceProps & { spec?: { type?: string } };
      const type = props.spec?.type ?? 'ClusterIP';
      if (!PUBLIC_SERVICE_TYPES.has(type)) continue;
      const selector = props.spec?.selector;
      const selectsStatefulPods =
        selector !== undefined &&
        Object.keys(selector).length > 0 &&
        statefulPods.some(
          (pods) =>
            pods.namespace === props.metadata?.namespace &&
            Object.entries(selector).every(([k, v]) => pods.labels[k] === v),
        );
      const postgresPort = (props.spec?.ports ?? []).some(
        (p) => p.port === POSTGRES_PORT || p.targetPort === POSTGRES_PORT || p.targetPort === 'postgres',
      );
      if (selectsStatefulPods || postgresPort) {
        report(
          `Service "${props.metadata?.name ?? '?'}" exposes the database as ${type}: make it ClusterIP`,
          service.urn,
        );
      }
    }
  },
};

export const policies = [
  requestsAndLimits,
  probes,
  nonRoot,
  digestPinned,
  dockerContainerHardened,
  hpaTargetHasCpuRequest,
  metricsScrapedNotPublic,
  credentialsFromSecrets,
  statefulSetsHaveVolumes,
  databasesNotPublic,
];
