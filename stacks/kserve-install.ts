// KServe on a cluster that lacks it, from the projects' own Helm charts, in the order KServe's install guide
// gives: cert-manager (KServe's webhooks need certificates), then for Serverless Knative Serving with Kourier
// as its networking layer (through the Knative Operator's chart), then KServe's CRDs and controller.
// RawDeployment needs none of Knative.

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { KServeConfig } from './config';

// Pinned, so two `pulumi up`s a month apart install the same thing; raise them deliberately.
export const CERT_MANAGER_VERSION = 'v1.18.2';
export const KNATIVE_OPERATOR_VERSION = 'v1.19.6';
export const KSERVE_CHARTS = 'oci://ghcr.io/kserve/charts';
export const KSERVE_NAMESPACE = 'kserve';
export const KNATIVE_SERVING_NAMESPACE = 'knative-serving';

export interface KServeInstallArgs {
  kserve: KServeConfig;
  provider: k8s.Provider;
}

/**
 * Knative Serving with Kourier as its networking layer, through the Knative Operator's chart: what
 * Serverless InferenceServices run on.
 */
function knativeServing(
  name: string,
  inCluster: pulumi.CustomResourceOptions,
): k8s.apiextensions.CustomResource {
  const operator = new k8s.helm.v3.Release(
    `${name}-knative-operator`,
    {
      name: 'knative-operator',
      chart: 'knative-operator',
      version: KNATIVE_OPERATOR_VERSION,
      repositoryOpts: { repo: 'https://knative.github.io/operator' },
      namespace: 'knative-operator',
      createNamespace: true,
    },
    inCluster,
  );
  const servingNamespace = new k8s.core.v1.Namespace(
    `${name}-knative-serving`,
    { metadata: { name: KNATIVE_SERVING_NAMESPACE } },
    inCluster,
  );
  return new k8s.apiextensions.CustomResource(
    `${name}-knative-serving`,
    {
      apiVersion: 'operator.knative.dev/v1beta1',
      kind: 'KnativeServing',
      metadata: {
        name: 'knative-serving',
        namespace: servingNamespace.metadata.name,
        // Custom resources are not awaited by default; KServe's controller needs Knative's CRDs.
        annotations: { 'pulumi.com/waitFor': 'condition=Ready' },
      },
      spec: {
        // Kourier instead of Istio: one small Envoy gateway, which is all KServe's routing needs here.
        ingress: { kourier: { enabled: true } },
        config: { network: { 'ingress-class': 'kourier.ingress.networking.knative.dev' } },
      },
    },
    { ...inCluster, dependsOn: [operator] },
  );
}

export class KServeInstall extends pulumi.ComponentResource {
  /** What an InferenceService must wait for: the controller that admits and reconciles it. */
  readonly controller: k8s.helm.v3.Release;

  constructor(name: string, args: KServeInstallArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:infra:KServeInstall', name, {}, opts);
    const { kserve } = args;
    const inCluster = { parent: this, provider: args.provider };
    const serverless = kserve.mode === 'Serverless';

    const certManager = new k8s.helm.v3.Release(
      `${name}-cert-manager`,
      {
        name: 'cert-manager',
        chart: 'cert-manager',
        version: CERT_MANAGER_VERSION,
        repositoryOpts: { repo: 'https://charts.jetstack.io' },
        namespace: 'cert-manager',
        createNamespace: true,
        values: { crds: { enabled: true } },
      },
      inCluster,
    );

    const networking = serverless ? [knativeServing(name, inCluster)] : [];

    const crds = new k8s.helm.v3.Release(
      `${name}-crd`,
      {
        name: 'kserve-crd',
        chart: `${KSERVE_CHARTS}/kserve-crd`,
        version: kserve.version,
        namespace: KSERVE_NAMESPACE,
        createNamespace: true,
      },
      inCluster,
    );
    this.controller = new k8s.helm.v3.Release(
      `${name}-controller`,
      {
        name: 'kserve',
        chart: `${KSERVE_CHARTS}/kserve-resources`,
        version: kserve.version,
        namespace: KSERVE_NAMESPACE,
        createNamespace: true,
        values: {
          kserve: {
            controller: {
              deploymentMode: kserve.mode,
              // With Kourier there is no Istio to hand a VirtualService to.
              gateway: { disableIstioVirtualHost: serverless },
            },
          },
        },
      },
      { ...inCluster, dependsOn: [certManager, crds, ...networking] },
    );
    this.registerOutputs({ controller: this.controller.status });
  }
}
