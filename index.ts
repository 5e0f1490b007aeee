// GourmetGram on Kubernetes: the table of contents. Config is read and validated once; every resource family
// is created here from stacks/, and every export is listed at the bottom.

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { Classifier } from './stacks/classifier';
import { connectCluster } from './stacks/cluster';
import { loadConfig } from './stacks/config';
import { ClassifierImage } from './stacks/image';
import { appLabels } from './stacks/labels';
import { ModelStore, TrainingJob } from './stacks/training';

const config = loadConfig();
const { stack } = config;

// 1. The cluster (created on GKE, or an existing one) and the provider that talks to it.
const cluster = connectCluster(config.cluster, stack);

// 2. The image, built and pushed (or prebuilt), pinned by digest.
const classifierImage = new ClassifierImage('classifier-image', {
  image: config.image,
  stack,
  gcp: cluster.gke && {
    provider: cluster.gke.gcp,
    project: config.cluster.gcp.project,
    region: config.cluster.gcp.region,
  },
});

// 3. The namespace everything else lives in.
const appNamespace = new k8s.core.v1.Namespace(
  'namespace',
  { metadata: { name: config.classifier.namespace, labels: appLabels(stack) } },
  { provider: cluster.provider },
);
const inNamespace = { stack, namespace: appNamespace.metadata.name, provider: cluster.provider };

// 4. Optional training in the cluster: a volume for photos and models, and a Job that trains into it.
const store = config.training.volumeNeeded
  ? new ModelStore('model-store', { ...inNamespace, config: config.training })
  : undefined;
const training =
  store && config.training.enabled
    ? new TrainingJob('training', {
        ...inNamespace,
        config: config.training,
        image: classifierImage.ref,
        claimName: store.claim.metadata.name,
      })
    : undefined;

// 5. The classifier: Deployment, Service, and the strategy's HPA and PodDisruptionBudget.
const classifier = new Classifier('classifier', {
  ...inNamespace,
  config: config.classifier,
  image: classifierImage.ref,
  modelClaim: store?.claim.metadata.name,
  nodeAddress: cluster.nodeAddress,
  dependsOn: training ? [training] : undefined,
});

// 6. On GKE, a node port is closed until a firewall rule opens it.
if (cluster.gke && classifier.exposedOnNodePort) {
  cluster.gke.allowNodePort(
    'classifier-node-port',
    classifier.nodePort,
    config.classifier.nodePortSourceRanges,
  );
}

export const url = classifier.url;
export const namespace = appNamespace.metadata.name;
export const strategy = config.classifier.strategyName;
export const image = classifierImage.ref;
/** Only when this stack created the cluster: `pulumi stack output kubeconfig --show-secrets > kubeconfig`. */
export const kubeconfig = cluster.gke ? pulumi.secret(cluster.gke.kubeconfig) : undefined;
