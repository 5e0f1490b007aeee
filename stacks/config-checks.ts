// What no single key's schema can say: keys that must agree with each other (errors, each naming the key to
// change and the command that fixes it), and combinations that deploy but probably not as the user hopes
// (warnings).

import type { z } from 'zod';
import type { StackSettings, ConfigKey } from './config-keys';
import { parseCpu, parseMemory } from './quantity';
import { KSERVE_METRICS, STRATEGIES } from './strategies';

type Fail = (key: ConfigKey, message: string) => void;

/** Zod's hook for checks across keys: each failure is reported against the key to change. */
export function crossKeyChecks(settings: StackSettings, ctx: z.RefinementCtx): void {
  const fail: Fail = (key, message) => ctx.addIssue({ code: 'custom', path: [key], message });
  const workload = STRATEGIES[settings.strategy].workload;
  if (workload === 'dockerContainer') dockerHostChecks(settings, fail);
  if (workload === 'inferenceService') kserveChecks(settings, fail);
  clusterAndImageChecks(settings, fail);
  databaseChecks(settings, fail);
  sizeChecks(settings, fail);
}

/** Cloud SQL needs the GKE cluster's network to peer with, and one database source at a time. */
function databaseChecks(settings: StackSettings, fail: Fail): void {
  if (settings.databaseServer !== 'cloudsql') return;
  if (settings.databaseUrl) {
    fail(
      'databaseServer',
      'databaseUrl names an existing server, so no Cloud SQL instance would be created: ' +
        'pulumi config set databaseServer in-cluster, or pulumi config rm databaseUrl',
    );
  }
  if (settings.cluster !== 'gke' || STRATEGIES[settings.strategy].workload === 'dockerContainer') {
    fail(
      'databaseServer',
      'cloudsql peers a Cloud SQL instance with the network of the GKE cluster this stack creates: ' +
        'pulumi config set databaseServer in-cluster (or cluster gke), or give an existing server with ' +
        'pulumi config set --secret databaseUrl postgres://user:password@host:5432/db',
    );
  }
}

/** Strategy docker has a host, not a cluster: nothing may ask for one. */
function dockerHostChecks(settings: StackSettings, fail: Fail): void {
  if (settings.cluster !== 'existing') {
    fail(
      'cluster',
      'strategy docker runs one container on a Docker host, not on a cluster it would create: ' +
        'pulumi config set cluster existing (dockerHost names the host)',
    );
  }
  if (settings.trainingEnabled) {
    fail(
      'trainingEnabled',
      'training runs as a Kubernetes Job, and strategy docker has no cluster: pulumi config set trainingEnabled false',
    );
  }
  if (settings.modelSource === 'volume') {
    fail(
      'modelSource',
      'the trained model lives on a Kubernetes volume, which a Docker host does not have: ' +
        'pulumi config set modelSource image',
    );
  }
}

/** What each KServe mode can do: scale to zero, canaries and volume claims only where Knative allows them. */
function kserveChecks(settings: StackSettings, fail: Fail): void {
  if (settings.kserveMinReplicas > settings.kserveMaxReplicas) {
    fail(
      'kserveMinReplicas',
      `kserveMinReplicas (${settings.kserveMinReplicas}) must not exceed kserveMaxReplicas (${settings.kserveMaxReplicas})`,
    );
  }
  if (settings.kserveMode === 'RawDeployment' && settings.kserveMinReplicas === 0) {
    fail(
      'kserveMinReplicas',
      'RawDeployment scales with an HPA, which keeps at least one pod; scale to zero needs Knative: ' +
        'pulumi config set kserveMode Serverless, or pulumi config set kserveMinReplicas 1',
    );
  }
  const metrics: readonly string[] = KSERVE_METRICS[settings.kserveMode];
  if (settings.kserveScaleMetric && !metrics.includes(settings.kserveScaleMetric)) {
    fail(
      'kserveScaleMetric',
      `kserveMode ${settings.kserveMode} scales on ${metrics.join(' or ')}: ` +
        `pulumi config set kserveScaleMetric ${metrics[0]} (or empty for that default)`,
    );
  }
  if (settings.kserveMode === 'RawDeployment' && settings.kserveCanaryTrafficPercent < 100) {
    fail(
      'kserveCanaryTrafficPercent',
      'a canary splits traffic between Knative revisions, which RawDeployment does not have: ' +
        'pulumi config set kserveCanaryTrafficPercent 100, or pulumi config set kserveMode Serverless',
    );
  }
  if (settings.kserveMode === 'Serverless' && settings.modelSource === 'volume') {
    fail(
      'modelSource',
      'Knative refuses volume claims unless its kubernetes.podspec-persistent-volume-claim feature is on: ' +
        'pulumi config set modelSource image, or pulumi config set kserveMode RawDeployment',
    );
  }
}

/** Where the cluster and the image come from. */
function clusterAndImageChecks(settings: StackSettings, fail: Fail): void {
  const workload = STRATEGIES[settings.strategy].workload;
  if (settings.cluster === 'gke' && !settings.gcpProject) {
    fail(
      'gcpProject',
      'cluster is gke, so the cluster, its nodes and the image registry need a Google Cloud project: ' +
        'pulumi config set gcpProject <project-id> (or gcp:project; gcloud projects list shows yours)',
    );
  }
  if (settings.cluster === 'existing' && !settings.registry && !settings.image) {
    fail(
      'registry',
      (workload === 'dockerContainer'
        ? 'the Docker host pulls the image from a registry (e.g. node-0:5000), or runs a prebuilt image: '
        : 'an existing cluster needs a registry to push the image to (e.g. node-0:5000) or a prebuilt image: ') +
        'pulumi config set registry <host[:port][/path]>, or pulumi config set image <repo@sha256:...>',
    );
  }
  if (settings.trainingEnabled && settings.image && !settings.trainingImage) {
    fail(
      'trainingImage',
      'with a prebuilt image nothing is built, and the training Job runs the training image (model/Dockerfile, ' +
        'with PyTorch), not the service image: pulumi config set trainingImage <repo@sha256:...>, or leave image empty',
    );
  }
}

/** Lower bounds within upper ones, requests within limits, and no more workers than the CPU limit runs. */
function sizeChecks(settings: StackSettings, fail: Fail): void {
  if (settings.minNodes > settings.maxNodes) {
    fail('minNodes', `minNodes (${settings.minNodes}) must not exceed maxNodes (${settings.maxNodes})`);
  }
  if (settings.nodeCount < settings.minNodes || settings.nodeCount > settings.maxNodes) {
    fail(
      'nodeCount',
      `nodeCount (${settings.nodeCount}) must lie within minNodes..maxNodes (${settings.minNodes}..${settings.maxNodes})`,
    );
  }
  if (settings.hpaMinReplicas > settings.hpaMaxReplicas) {
    fail(
      'hpaMinReplicas',
      `hpaMinReplicas (${settings.hpaMinReplicas}) must not exceed hpaMaxReplicas (${settings.hpaMaxReplicas})`,
    );
  }
  const cpuRequest = parseCpu(settings.cpuRequest);
  const cpuLimit = parseCpu(settings.cpuLimit);
  if (cpuRequest !== undefined && cpuLimit !== undefined) {
    if (cpuRequest > cpuLimit)
      fail('cpuRequest', `cpuRequest (${settings.cpuRequest}) exceeds cpuLimit (${settings.cpuLimit})`);
    // Each worker keeps about one core busy; more workers than the limit allows only adds throttling.
    if (settings.workers > Math.max(1, Math.ceil(cpuLimit))) {
      fail(
        'workers',
        `workers (${settings.workers}) exceeds what cpuLimit (${settings.cpuLimit}) can run: one worker needs about one core; ` +
          'raise cpuLimit or lower workers',
      );
    }
  }
  const memoryRequest = parseMemory(settings.memoryRequest);
  const memoryLimit = parseMemory(settings.memoryLimit);
  if (memoryRequest !== undefined && memoryLimit !== undefined && memoryRequest > memoryLimit) {
    fail(
      'memoryRequest',
      `memoryRequest (${settings.memoryRequest}) exceeds memoryLimit (${settings.memoryLimit})`,
    );
  }
}

/** Settings that deploy, but probably not as the user hopes: said as warnings, not refused. */
export function configWarnings(settings: StackSettings): string[] {
  const strategy = STRATEGIES[settings.strategy];
  const podsAtMost = strategy.autoscaled
    ? settings.hpaMaxReplicas
    : strategy.workload === 'inferenceService'
      ? settings.kserveMaxReplicas
      : settings.replicas;
  const warnings: string[] = [];
  if (strategy.autoscaled && settings.replicas !== 1) {
    warnings.push(
      `replicas (${settings.replicas}) is ignored under the hpa strategy: hpaMinReplicas..hpaMaxReplicas apply`,
    );
  }
  if (strategy.workload !== 'deployment' && settings.replicas !== 1) {
    warnings.push(
      `replicas (${settings.replicas}) is ignored under the ${settings.strategy} strategy` +
        (strategy.workload === 'inferenceService' ? ': kserveMinReplicas..kserveMaxReplicas apply' : ''),
    );
  }
  if (settings.gkeMode === 'autopilot' && settings.cluster !== 'gke') {
    warnings.push(
      'gkeMode autopilot applies to a cluster this stack creates (cluster gke); it is ignored here',
    );
  }
  if (settings.gkeMode === 'autopilot' && settings.cluster === 'gke' && settings.spotNodes) {
    warnings.push(
      'spotNodes is ignored under gkeMode autopilot: Autopilot picks Spot capacity per pod, not per node pool',
    );
  }
  const databaseHost = /^postgres(?:ql)?:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)/.exec(settings.databaseUrl)?.[1];
  if (databaseHost && /^(localhost|127\.[\d.]+|\[::1\])$/.test(databaseHost)) {
    warnings.push(
      `databaseUrl names ${databaseHost}, which inside a pod or container is that pod or container itself, ` +
        'not the machine running pulumi: name a host the classifier can reach',
    );
  }
  if (settings.modelSource === 'volume' && podsAtMost > 1) {
    warnings.push(
      'modelSource is volume with more than one pod: a ReadWriteOnce volume attaches to one node only, so ' +
        'pods on other nodes stay Pending unless storageClass gives ReadWriteMany storage',
    );
  }

  return warnings;
}
