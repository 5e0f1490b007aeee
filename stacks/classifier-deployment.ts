// The classifier as a Kubernetes Deployment: the Deployment, its Service, and where the strategy asks for them
// an HPA and a PodDisruptionBudget. One component for the k8s, lb and hpa strategies (like the
// ServiceDeployment of Pulumi's kubernetes-ts-guestbook), so they differ only in the fields the strategy sets.
// Each object's spec is built as a value first, then the resources are declared from them.

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClassifierConfig, HpaConfig } from './config';
import { APP_NAME, appLabels, selectorLabels } from './kubernetes-labels';
import {
  SCRAPE_ANNOTATIONS,
  classifierContainer,
  classifierPodFields,
  classifierVolumes,
  type SecretKeyRef,
} from './workload';

type Labels = Record<string, string>;

export const CONTAINER_NAME = 'classifier';
/**
 * The component's type token, unchanged since the class was called `Classifier`: every child's URN is
 * derived from it, so a new token would make `pulumi up` replace the Deployment, Service, HPA and budget of
 * every existing stack. tests/stacks/urns.test.ts pins it.
 */
export const CLASSIFIER_DEPLOYMENT_TYPE = 'gourmetgram:app:Classifier';

export interface ClassifierDeploymentArgs {
  config: ClassifierConfig;
  stack: string;
  namespace: pulumi.Input<string>;
  /** `repository@sha256:…` */
  image: pulumi.Input<string>;
  provider: k8s.Provider;
  /** The claim holding a trained model; required when config.modelSource is `volume`. */
  modelClaim?: pulumi.Input<string>;
  /** The Secret key holding DATABASE_URL (stacks/label-database.ts). */
  databaseUrl: SecretKeyRef;
  /** Where users reach a node port (only asked for when the URL is a node port's). */
  nodeAddress: () => pulumi.Output<string>;
  /** Resources the pods need first (the training Job that writes the model). */
  dependsOn?: pulumi.Resource[];
}

/** True when users reach the pods through a node port: NodePort, or a LoadBalancer not waited for. */
export function exposedOnNodePort(config: ClassifierConfig): boolean {
  return (
    config.serviceType === 'NodePort' || (config.serviceType === 'LoadBalancer' && !config.awaitLoadBalancer)
  );
}

/** What every replica runs: the shared container and pod fields, spread over the nodes. */
function podTemplate(args: ClassifierDeploymentArgs, labels: Labels, selector: Labels) {
  const { config } = args;
  return {
    metadata: { labels, annotations: SCRAPE_ANNOTATIONS },
    spec: {
      ...classifierPodFields(config),
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
        classifierContainer({
          config,
          image: args.image,
          name: CONTAINER_NAME,
          databaseUrl: args.databaseUrl,
        }),
      ],
      volumes: classifierVolumes(config, args.modelClaim),
    },
  } satisfies k8s.types.input.core.v1.PodTemplateSpec;
}

function deploymentSpec(args: ClassifierDeploymentArgs, labels: Labels, selector: Labels) {
  return {
    // Under an HPA the field is left out: with server-side apply, a value here would make Pulumi the
    // field's manager and every `pulumi up` would fight the autoscaler over it.
    replicas: args.config.replicas,
    selector: { matchLabels: selector },
    revisionHistoryLimit: 3,
    // A rollout starts a new pod before stopping an old one: capacity never drops below the target.
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: podTemplate(args, labels, selector),
  } satisfies k8s.types.input.apps.v1.DeploymentSpec;
}

function serviceSpec(config: ClassifierConfig, selector: Labels) {
  const type = config.serviceType;
  return {
    type,
    selector,
    ports: [
      {
        name: 'http',
        port: config.servicePort,
        targetPort: 'http',
        protocol: 'TCP',
        nodePort: type !== 'ClusterIP' && config.nodePort ? config.nodePort : undefined,
      },
    ],
  } satisfies k8s.types.input.core.v1.ServiceSpec;
}

function serviceAnnotations(config: ClassifierConfig): Labels | undefined {
  // Without a load-balancer controller the external address never comes; waiting would end in a ten-minute
  // timeout. The node port works either way.
  return config.serviceType === 'LoadBalancer' && !config.awaitLoadBalancer
    ? { 'pulumi.com/skipAwait': 'true' }
    : undefined;
}

function hpaSpec(hpa: HpaConfig, deploymentName: pulumi.Input<string>) {
  return {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deploymentName },
    minReplicas: hpa.minReplicas,
    maxReplicas: hpa.maxReplicas,
    // Utilization is measured against the CPU *request*: that is why every pod must have one.
    metrics: [
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: hpa.cpuUtilization } },
      },
    ],
    // Explicit, so what a load test sees is what the stack says: add pods fast when a burst comes, remove
    // them slowly so a short lull does not throw away warm pods.
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
  } satisfies k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec;
}

/** A budget only where there are several pods, or an HPA that may add them; one fixed pod must stay drainable. */
function needsDisruptionBudget(config: ClassifierConfig): boolean {
  return config.hpa !== undefined || (config.replicas ?? 0) > 1;
}

export class ClassifierDeployment extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  readonly hpa?: k8s.autoscaling.v2.HorizontalPodAutoscaler;
  readonly pdb?: k8s.policy.v1.PodDisruptionBudget;
  /** True when users reach the pods through a node port (NodePort, or a LoadBalancer not waited for). */
  readonly exposedOnNodePort: boolean;
  readonly nodePort: pulumi.Output<number>;
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: ClassifierDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
    super(CLASSIFIER_DEPLOYMENT_TYPE, name, {}, opts);
    const { config, stack } = args;
    const labels = appLabels(stack);
    const selector = selectorLabels(stack);
    const inCluster = { parent: this, provider: args.provider };
    const metadata = { name: APP_NAME, namespace: args.namespace, labels };

    this.deployment = new k8s.apps.v1.Deployment(
      name,
      { metadata, spec: deploymentSpec(args, labels, selector) },
      { ...inCluster, dependsOn: args.dependsOn },
    );
    this.service = new k8s.core.v1.Service(
      name,
      {
        metadata: { ...metadata, annotations: serviceAnnotations(config) },
        spec: serviceSpec(config, selector),
      },
      // Not after the Deployment: a cloud load balancer takes a minute or two to appear, time the pods
      // spend starting anyway.
      inCluster,
    );
    if (config.hpa) {
      this.hpa = new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        name,
        { metadata, spec: hpaSpec(config.hpa, this.deployment.metadata.name) },
        inCluster,
      );
    }
    if (needsDisruptionBudget(config)) {
      // maxUnavailable, not minAvailable: a node drain may always take one pod (even the only one an HPA
      // keeps when idle) but never several at once.
      this.pdb = new k8s.policy.v1.PodDisruptionBudget(
        name,
        { metadata, spec: { maxUnavailable: 1, selector: { matchLabels: selector } } },
        inCluster,
      );
    }

    this.exposedOnNodePort = exposedOnNodePort(config);
    this.nodePort = this.service.spec.ports.apply((ports) => ports[0]?.nodePort ?? 0);
    this.url = this.serviceUrl(config, args);
    this.registerOutputs({ url: this.url });
  }

  private serviceUrl(config: ClassifierConfig, args: ClassifierDeploymentArgs): pulumi.Output<string> {
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
