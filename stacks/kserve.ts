// Strategy kserve: the classifier as the predictor of a KServe InferenceService (serving.kserve.io/v1beta1).
// The service already speaks the Open Inference Protocol v2 that KServe routes, so the image runs as it is,
// as a custom predictor container, with the pods' environment, probes, resources and hardening
// (stacks/workload.ts). KServe then owns the rest: in RawDeployment mode a Deployment, a Service and an HPA;
// in Serverless mode a Knative Service whose revisions scale to zero when idle, autoscale on requests in
// flight, and split traffic between the previous and the latest revision (canaryTrafficPercent).

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClassifierConfig, KServeConfig } from './config';
import { APP_NAME, appLabels } from './kubernetes-labels';
import { classifierContainer, classifierPodFields, classifierVolumes, type SecretKeyRef } from './workload';

/** KServe's name for the predictor's model-server container (its agent and logger look for it). */
export const KSERVE_CONTAINER = 'kserve-container';

type Container = k8s.types.input.core.v1.Container;
type SecurityContext = k8s.types.input.core.v1.SecurityContext;
type PodFields = ReturnType<typeof classifierPodFields> & { volumes: k8s.types.input.core.v1.Volume[] };

/**
 * Knative's webhook refuses pod and container fields outside its allow-list (knative.dev/serving,
 * pkg/apis/serving/fieldmask.go): no lifecycle hooks, startup probes or grace period (Knative sets the grace
 * period from the revision's timeout and drains through its queue-proxy itself), no `privileged`, and a
 * pod-level security context only behind a feature flag. The same guarantees move to the container where
 * Knative allows them; nothing is dropped that Knative does not do in its own way.
 */
export function forKnative(container: Container, pod: PodFields): { container: Container; pod: object } {
  const { lifecycle: _lifecycle, startupProbe: _startupProbe, ...kept } = container;
  const podSecurity = pod.securityContext;
  const { privileged: _privileged, ...securityContext } = container.securityContext as SecurityContext;
  return {
    container: {
      ...kept,
      securityContext: {
        ...securityContext,
        runAsNonRoot: podSecurity.runAsNonRoot,
        runAsUser: podSecurity.runAsUser,
        runAsGroup: podSecurity.runAsGroup,
        seccompProfile: podSecurity.seccompProfile,
      },
    },
    pod: { automountServiceAccountToken: pod.automountServiceAccountToken, volumes: pod.volumes },
  };
}

export interface KServeClassifierArgs {
  config: ClassifierConfig;
  kserve: KServeConfig;
  stack: string;
  namespace: pulumi.Input<string>;
  image: pulumi.Input<string>;
  provider: k8s.Provider;
  modelClaim?: pulumi.Input<string>;
  /** The Secret key holding DATABASE_URL (stacks/label-database.ts): the same store as every strategy's. */
  databaseUrl: SecretKeyRef;
  /** KServe's controller (when this stack installs it) and the training Job that writes the model. */
  dependsOn?: pulumi.Resource[];
}

/** The InferenceService's predictor: the classifier container, trimmed for Knative in Serverless mode. */
function predictorSpec(args: KServeClassifierArgs, labels: Record<string, string>) {
  const { config, kserve } = args;
  const serverless = kserve.mode === 'Serverless';
  const hardened = classifierContainer({
    config,
    image: args.image,
    name: KSERVE_CONTAINER,
    databaseUrl: args.databaseUrl,
    portName: 'http1',
    probePort: 'number',
    // Knative allows one container port; RawDeployment pods are plain Deployments and keep the internal one.
    internalPort: !serverless,
  });
  const podFields = { ...classifierPodFields(config), volumes: classifierVolumes(config, args.modelClaim) };
  const { container, pod } = serverless
    ? forKnative(hardened, podFields)
    : { container: hardened, pod: podFields };
  return {
    ...pod,
    containers: [container],
    // On the predictor's pods, so the monitor finds them by the labels every strategy's pods carry.
    labels,
    minReplicas: kserve.minReplicas,
    maxReplicas: kserve.maxReplicas,
    scaleMetric: kserve.scaleMetric,
    scaleTarget: kserve.scaleTarget,
    canaryTrafficPercent: kserve.canaryTrafficPercent,
  };
}

export class KServeClassifier extends pulumi.ComponentResource {
  readonly inferenceService: k8s.apiextensions.CustomResource;
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: KServeClassifierArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:KServeClassifier', name, {}, opts);
    const labels = appLabels(args.stack);
    this.inferenceService = new k8s.apiextensions.CustomResource(
      name,
      {
        apiVersion: 'serving.kserve.io/v1beta1',
        kind: 'InferenceService',
        metadata: {
          name: APP_NAME,
          namespace: args.namespace,
          labels,
          annotations: {
            'serving.kserve.io/deploymentMode': args.kserve.mode,
            // Pulumi does not wait for custom resources unless told; the url comes once KServe says Ready.
            'pulumi.com/waitFor': 'condition=Ready',
          },
        },
        spec: { predictor: predictorSpec(args, labels) },
        // Declared (never sent: undefined is left out) so the SDK exposes the status KServe writes, which
        // holds the url; a CustomResource otherwise has outputs only for the fields it was given.
        status: undefined,
      },
      // A Knative revision that never gets ready (an image that cannot be pulled) fails after Knative's
      // progress deadline (10 minutes); the first start may also wait for a node.
      {
        parent: this,
        provider: args.provider,
        dependsOn: args.dependsOn,
        customTimeouts: { create: '20m', update: '20m' },
      },
    );

    const { status } = this.inferenceService as unknown as {
      status: pulumi.Output<{ url?: string } | undefined>;
    };
    this.url = status.apply((current) => current?.url ?? 'pending');
    this.registerOutputs({ url: this.url });
  }
}
