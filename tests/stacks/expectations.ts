// What must hold for every stack, whatever its strategy: the Kubernetes schemas, the labels and namespace of
// docs/interfaces.md, the container's probes, resources, hardening and digest-pinned image.

import assert from 'node:assert/strict';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { revealed, type RecordedResource, type StackRun } from './harness';
import { InferenceService } from './kserve-schema';

export const T = {
  namespace: 'kubernetes:core/v1:Namespace',
  deployment: 'kubernetes:apps/v1:Deployment',
  service: 'kubernetes:core/v1:Service',
  hpa: 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler',
  pdb: 'kubernetes:policy/v1:PodDisruptionBudget',
  pvc: 'kubernetes:core/v1:PersistentVolumeClaim',
  job: 'kubernetes:batch/v1:Job',
  image: 'docker:index/image:Image',
  gkeCluster: 'gcp:container/cluster:Cluster',
  nodePool: 'gcp:container/nodePool:NodePool',
  firewall: 'gcp:compute/firewall:Firewall',
  registry: 'gcp:artifactregistry/repository:Repository',
  k8sProvider: 'pulumi:providers:kubernetes',
  inferenceService: 'kubernetes:serving.kserve.io/v1beta1:InferenceService',
  knativeServing: 'kubernetes:operator.knative.dev/v1beta1:KnativeServing',
  helmRelease: 'kubernetes:helm.sh/v3:Release',
  dockerProvider: 'pulumi:providers:docker',
  dockerContainer: 'docker:index/container:Container',
  remoteImage: 'docker:index/remoteImage:RemoteImage',
  statefulSet: 'kubernetes:apps/v1:StatefulSet',
  secret: 'kubernetes:core/v1:Secret',
  randomPassword: 'random:index/randomPassword:RandomPassword',
  dockerNetwork: 'docker:index/network:Network',
  dockerVolume: 'docker:index/volume:Volume',
  sqlInstance: 'gcp:sql/databaseInstance:DatabaseInstance',
  sqlDatabase: 'gcp:sql/database:Database',
  sqlUser: 'gcp:sql/user:User',
  peering: 'servicenetworking',
} as const;

/** The KServeInstall component's name in index.ts: its children are the platform, not the app. */
export const PLATFORM = 'kserve-platform';
/** The LabelDatabase component's name in index.ts: its children are the labels store, not the classifier. */
export const DATABASE = 'label-database';

export const isDatabaseObject = (object: RecordedResource) => object.name.startsWith(DATABASE);

/** The classifier's own objects of one type: the database's Service and Secret aside. */
export function classifierObjects(run: StackRun, type: string): RecordedResource[] {
  return run.ofType(type).filter((object) => !isDatabaseObject(object));
}

export function databaseObjects(run: StackRun, type: string): RecordedResource[] {
  return run.ofType(type).filter(isDatabaseObject);
}

export function only<R>(objects: R[], what: string): R {
  assert.equal(objects.length, 1, `one ${what}`);
  return objects[0]!;
}

export const classifierService = (run: StackRun) =>
  only(classifierObjects(run, T.service), 'classifier Service');

type Validating = new (data: never) => { validate(): void };
const SCHEMAS: Record<string, Validating> = {
  [T.namespace]: Namespace as Validating,
  [T.deployment]: Deployment as Validating,
  [T.service]: Service as Validating,
  [T.hpa]: HorizontalPodAutoscaler as Validating,
  [T.pdb]: PodDisruptionBudget as Validating,
  [T.pvc]: PersistentVolumeClaim as Validating,
  [T.job]: Job as Validating,
  [T.inferenceService]: InferenceService as Validating,
  [T.statefulSet]: StatefulSet as Validating,
  [T.secret]: Secret as Validating,
};

export const DIGEST_REF = /^[^\s@]+@sha256:[0-9a-f]{64}$/;

/** The app's Kubernetes objects: what the stack installs for KServe (Helm releases, Knative) is apart. */
export function kubernetesObjects(run: StackRun): RecordedResource[] {
  return run.resources.filter((r) => r.type.startsWith('kubernetes:') && !r.name.startsWith(PLATFORM));
}

export function platformObjects(run: StackRun): RecordedResource[] {
  return run.resources.filter((r) => r.type.startsWith('kubernetes:') && r.name.startsWith(PLATFORM));
}

/** Every Kubernetes object against the Kubernetes OpenAPI schema (kubernetes-models). */
export function assertValidKubernetesObjects(run: StackRun): void {
  const objects = kubernetesObjects(run);
  assert.ok(objects.length >= 2, 'expected at least a namespace and a workload');
  for (const object of objects) {
    const Model = SCHEMAS[object.type];
    assert.ok(Model, `no schema mapped for ${object.type}: add it to SCHEMAS`);
    assert.doesNotThrow(
      () => new Model(revealed(object.inputs) as never).validate(),
      `${object.type} ${object.name}`,
    );
  }
}

/**
 * What the stack installs for KServe: the kinds with a schema here are validated; Helm releases (Pulumi's own
 * resource, not a Kubernetes object) and the KnativeServing (whose CRD the project does not vendor) are the
 * only ones allowed without.
 */
export function assertValidPlatformObjects(run: StackRun): void {
  for (const object of platformObjects(run)) {
    const Model = SCHEMAS[object.type];
    if (!Model) {
      assert.ok(
        [T.helmRelease, T.knativeServing].includes(object.type as never),
        `no schema for ${object.type}`,
      );
      continue;
    }
    assert.doesNotThrow(
      () => new Model(revealed(object.inputs) as never).validate(),
      `${object.type} ${object.name}`,
    );
  }
}

/** Labels on every object, the namespace on every namespaced one, and one provider for all of them. */
export function assertLabelsNamespaceProvider(run: StackRun, namespace: string): void {
  const providers = new Set<string | undefined>();
  for (const object of kubernetesObjects(run)) {
    const labels = object.inputs.metadata?.labels ?? {};
    assert.equal(labels['app.kubernetes.io/name'], 'gourmetgram', `${object.type} name label`);
    assert.equal(labels['app.kubernetes.io/instance'], run.stack, `${object.type} instance label`);
    const component = isDatabaseObject(object)
      ? 'database'
      : object.type === T.job || object.type === T.pvc
        ? 'training'
        : 'classifier';
    assert.equal(labels['app.kubernetes.io/component'], component, `${object.type} component label`);
    if (object.type === T.namespace) assert.equal(object.inputs.metadata.name, namespace);
    else assert.equal(object.inputs.metadata?.namespace, namespace, `${object.type} namespace`);
    providers.add(object.provider);
  }
  // Every object goes to the same cluster through an explicit provider, never the ambient default one.
  assert.equal(providers.size, 1, `Kubernetes objects use ${[...providers].join(', ')}`);
  const [provider] = [...providers];
  assert.match(String(provider), /pulumi:providers:kubernetes::/);
  assert.doesNotMatch(String(provider), /::default_/);
}

/** What every Kubernetes stack's objects share: valid schemas, the labels, the namespace, one provider. */
export function assertAppObjects(run: StackRun, namespace: string): void {
  assertValidKubernetesObjects(run);
  assertLabelsNamespaceProvider(run, namespace);
}

export function container(run: StackRun) {
  const deployment = run.one(T.deployment);
  const containers = deployment.inputs.spec.template.spec.containers;
  assert.equal(containers.length, 1);
  return { deployment, pod: deployment.inputs.spec.template.spec, container: containers[0] };
}

export function envOf(container: { env: { name: string; value: string }[] }): Record<string, string> {
  return Object.fromEntries(container.env.map((variable) => [variable.name, variable.value]));
}

/** The environment every strategy's container gets (docs/interfaces.md). */
export function assertClassifierEnv(env: Record<string, string | undefined>, workers: string): void {
  assert.equal(env.PORT, '3000');
  assert.equal(env.METRICS_PORT, '9464');
  assert.equal(env.WORKERS, workers);
  for (const name of [
    'TFJS_BACKEND',
    'QUEUE_MAX_WAIT_MS',
    'SHUTDOWN_TIMEOUT_MS',
    'BATCH_MAX_SIZE',
    'BATCH_MAX_WAIT_MS',
  ]) {
    assert.ok(env[name] !== undefined && env[name] !== '', `${name} is set`);
  }
  assert.equal(
    env.MODEL_DIR === undefined || env.MODEL_DIR === '/models/current',
    true,
    'the shipped model, or the volume',
  );
  assert.equal(env.HOME, '/tmp', 'the home directory is read-only: HOME points at the writable /tmp');
}

/** The container contract of issue 4 and docs/interfaces.md; by default with the stack defaults' resources and one worker. */
export function assertClassifierContainer(
  run: StackRun,
  expected: { resources: object; workers: string } = { resources: DEFAULT_RESOURCES, workers: '1' },
): void {
  const { pod, container: classifier } = container(run);
  assert.equal(classifier.name, 'classifier');
  assert.match(classifier.image, DIGEST_REF, 'the Deployment runs a digest, not a tag');
  assert.equal(classifier.image, run.outputs.image, 'the exported image is the one deployed');
  assert.deepEqual(classifier.ports, [
    { name: 'http', containerPort: 3000, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9464, protocol: 'TCP' },
  ]);
  // Prometheus scrapes the metrics port from inside the cluster; the Service, which the internet reaches,
  // never routes to it (issue 12).
  const { deployment } = container(run);
  assert.deepEqual(deployment.inputs.spec.template.metadata.annotations, {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '9464',
    'prometheus.io/path': '/metrics',
  });
  const service = classifierService(run);
  assert.deepEqual(
    service.inputs.spec.ports.map((p: { targetPort: unknown }) => p.targetPort),
    ['http'],
    'the Service exposes the http port only',
  );

  // the internal port, answered by its own thread even while the public one is overloaded (issue 12)
  assertProbes(classifier, 'metrics', true);

  assert.deepEqual(classifier.resources, expected.resources);

  assert.deepEqual(classifier.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
  });
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
  assert.equal(pod.automountServiceAccountToken, false);

  // Read-only root: /tmp is the writable emptyDir.
  const tmpMount = classifier.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
  assert.ok(tmpMount, '/tmp is mounted');
  const tmpVolume = pod.volumes.find((v: { name: string }) => v.name === tmpMount.name);
  assert.ok(tmpVolume?.emptyDir, '/tmp is an emptyDir');

  const env = envOf(classifier);
  assertClassifierEnv(env, expected.workers);

  // The grace period covers the pre-stop pause and the whole drain.
  const drainSeconds = Number(env.SHUTDOWN_TIMEOUT_MS) / 1000;
  assert.ok(pod.terminationGracePeriodSeconds > drainSeconds, 'grace period exceeds SHUTDOWN_TIMEOUT_MS');
  assert.ok(classifier.lifecycle.preStop, 'a preStop pause lets endpoints drop the pod before it drains');
}

// Loose: the probes as the SDK serialised them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function assertProbes(probed: any, port: string | number, withStartup: boolean): void {
  assert.equal(probed.readinessProbe.httpGet.path, '/readyz');
  assert.equal(probed.livenessProbe.httpGet.path, '/healthz');
  if (withStartup) assert.equal(probed.startupProbe.httpGet.path, '/readyz');
  else assert.equal(probed.startupProbe, undefined);
  for (const probe of [probed.startupProbe, probed.readinessProbe, probed.livenessProbe].filter(Boolean)) {
    assert.notEqual(probe.httpGet.path, '/test', 'a probe must never run an inference');
    assert.equal(probe.httpGet.port, port);
  }
}

export const DEFAULT_RESOURCES = {
  requests: { cpu: '500m', memory: '256Mi' },
  limits: { cpu: '1', memory: '512Mi' },
};

export function servicePort(run: StackRun) {
  const service = classifierService(run);
  assert.equal(service.inputs.spec.ports.length, 1);
  return { service, port: service.inputs.spec.ports[0] };
}

/** The exports every stack has; kubeconfig only where the stack created the cluster, and then secret. */
export function assertExports(
  run: StackRun,
  strategy: string,
  /** Undefined where no cluster is involved (strategy docker). */
  namespace: string | undefined,
  createsCluster: boolean,
): void {
  assert.equal(run.outputs.strategy, strategy);
  assert.equal(run.outputs.namespace, namespace);
  assert.match(String(run.outputs.image), DIGEST_REF);
  assert.match(String(run.outputs.url), /^http:\/\/[^/\s]+$/);
  if (createsCluster) {
    assert.match(String(run.outputs.kubeconfig), /gke-gcloud-auth-plugin/);
    assert.ok(run.secretOutputs.has('kubeconfig'), 'the kubeconfig export is secret');
  } else {
    assert.equal(run.outputs.kubeconfig, undefined);
  }
}
