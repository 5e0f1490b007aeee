// GourmetGram on Kubernetes or a Docker host: the table of contents. Config is read and validated once; every
// resource family is created here from stacks/, and every export is listed at the bottom.

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { ClassifierDeployment } from './stacks/classifier-deployment';
import { connectCluster, type ClusterConnection } from './stacks/cluster';
import { loadConfig, type DockerConfig } from './stacks/config';
import { DockerHostClassifier } from './stacks/docker-host';
import { ClassifierImage } from './stacks/image';
import { KServeClassifier } from './stacks/kserve';
import { KServeInstall } from './stacks/kserve-install';
import { appLabels } from './stacks/kubernetes-labels';
import { LabelDatabase } from './stacks/label-database';
import { ModelStore, TrainingJob } from './stacks/training';

const config = loadConfig();
const { stack } = config;

// 1. The cluster (created on GKE, or an existing one) and the provider that talks to it; none for a
//    Docker host.
const cluster = config.docker ? undefined : connectCluster(config.cluster, stack);

// 2. The image, built and pushed (or prebuilt), pinned by digest: the same for every strategy; and the training
//    image beside it when the training Job runs.
const classifierImage = new ClassifierImage('classifier-image', {
  image: config.image,
  stack,
  gcp: cluster?.gke && {
    provider: cluster.gke.gcp,
    project: config.cluster.gcp.project,
    region: config.cluster.gcp.region,
  },
  training: config.training.enabled ? { prebuilt: config.training.prebuiltImage } : undefined,
});

function onKubernetes(cluster: ClusterConnection) {
  // 3. The namespace everything else lives in.
  const appNamespace = new k8s.core.v1.Namespace(
    'namespace',
    { metadata: { name: config.classifier.namespace, labels: appLabels(stack) } },
    { provider: cluster.provider },
  );
  const inNamespace = { stack, namespace: appNamespace.metadata.name, provider: cluster.provider };

  // 4. The labels store: PostgreSQL in the cluster, Cloud SQL beside a GKE cluster, or an existing server;
  //    the classifier reads DATABASE_URL from the Secret it fills.
  const database = new LabelDatabase('label-database', {
    ...inNamespace,
    config: config.database,
    cloudSql: cluster.gke && {
      provider: cluster.gke.gcp,
      project: config.cluster.gcp.project,
      region: config.cluster.gcp.region,
      network: cluster.gke.cluster.network,
    },
  });

  // 5. Optional training in the cluster: a volume for photos and models, and a Job that trains into it.
  const store = config.training.volumeNeeded
    ? new ModelStore('model-store', { ...inNamespace, config: config.training })
    : undefined;
  const training =
    store && config.training.enabled
      ? new TrainingJob('training', {
          ...inNamespace,
          config: config.training,
          image: classifierImage.trainingRef ?? classifierImage.ref,
          claimName: store.claim.metadata.name,
        })
      : undefined;

  // 6a. Strategy kserve: an InferenceService, with KServe installed first when the stack is asked to.
  if (config.kserve) {
    const platform = config.kserve.install
      ? new KServeInstall('kserve-platform', { kserve: config.kserve, provider: cluster.provider })
      : undefined;
    const served = new KServeClassifier('classifier', {
      ...inNamespace,
      config: config.classifier,
      kserve: config.kserve,
      image: classifierImage.ref,
      modelClaim: store?.claim.metadata.name,
      databaseUrl: database.urlSecret,
      dependsOn: [...(platform ? [platform.controller] : []), ...(training ? [training] : [])],
    });
    return { url: served.url, namespace: appNamespace.metadata.name, databaseHost: database.host };
  }

  // 6b. Strategies k8s, lb and hpa: the classifier as a Deployment, its Service, and the strategy's HPA and
  //     PodDisruptionBudget.
  const deployed = new ClassifierDeployment('classifier', {
    ...inNamespace,
    config: config.classifier,
    image: classifierImage.ref,
    modelClaim: store?.claim.metadata.name,
    databaseUrl: database.urlSecret,
    nodeAddress: cluster.nodeAddress,
    dependsOn: training ? [training] : undefined,
  });

  // 7. On GKE, a node port is closed until a firewall rule opens it.
  if (cluster.gke && deployed.exposedOnNodePort) {
    cluster.gke.allowNodePort(
      'classifier-node-port',
      deployed.nodePort,
      config.classifier.nodePortSourceRanges,
    );
  }
  return { url: deployed.url, namespace: appNamespace.metadata.name, databaseHost: database.host };
}

function onDockerHost(docker: DockerConfig | undefined) {
  if (!docker) throw new Error('strategy docker without its Docker host configuration');
  const served = new DockerHostClassifier('classifier', {
    config: config.classifier,
    docker,
    stack,
    image: classifierImage.ref,
    database: config.database,
  });
  return { url: served.url, namespace: undefined, databaseHost: pulumi.output(served.databaseHost) };
}

// 3-7 on a cluster; or strategy docker: one container on a Docker host, its port published, and its
// database's container beside it.
const served = cluster ? onKubernetes(cluster) : onDockerHost(config.docker);

export const url = served.url;
/** Kubernetes strategies only. */
export const namespace = served.namespace;
export const strategy = config.classifier.strategyName;
export const image = classifierImage.ref;
/** Where the labels are stored: the database server's host (its URL, with the password, stays in a Secret). */
export const databaseHost = served.databaseHost;
/** Only when this stack created the cluster: `pulumi stack output kubeconfig --show-secrets > kubeconfig`. */
export const kubeconfig = cluster?.gke ? pulumi.secret(cluster.gke.kubeconfig) : undefined;
