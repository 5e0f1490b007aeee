// Training in the cluster, as a Kubernetes Job from the training image (model/Dockerfile: the service's code plus
// PyTorch, which the service image never holds): the photos and the trained model live on one
// PersistentVolumeClaim, and the classifier can then load its model from there (modelSource: volume) instead of
// the one baked into the image.
//
// Volume layout: data/<trainingDataDir>/ holds the Food-11 folders (copied in by the user, see README),
// models/current/ receives the trained model (and its checkpoint, so a retried Job resumes), models/.tensor-cache/
// keeps the preprocessed photos.

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { TrainingConfig } from './config';
import { APP_NAME, appLabels } from './kubernetes-labels';
import { parseCpu } from './quantity';
import { containerSecurityContext, podSecurityContext, tmpMount, tmpVolume, writableDirsEnv } from './pod';

export const TRAINING_CONTAINER = 'train';
export const WAIT_CONTAINER = 'wait-for-data';
/** Where the wait-for-data container (and `kubectl cp`) sees the whole volume. */
export const STORE_MOUNT = '/store';
/** Waiting for the photos plus training them on one CPU. */
export const TRAINING_TIMEOUT_HOURS = 3;

export interface ModelStoreArgs {
  config: TrainingConfig;
  stack: string;
  namespace: pulumi.Input<string>;
  provider: k8s.Provider;
}

/** The claim that holds training data and trained models; it outlives the Job. */
export class ModelStore extends pulumi.ComponentResource {
  readonly claim: k8s.core.v1.PersistentVolumeClaim;

  constructor(name: string, args: ModelStoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:ModelStore', name, {}, opts);
    this.claim = new k8s.core.v1.PersistentVolumeClaim(
      name,
      {
        metadata: {
          name: `${APP_NAME}-models`,
          namespace: args.namespace,
          labels: appLabels(args.stack, 'training'),
          // Storage classes that bind on first use (GKE's default) leave the claim Pending until the Job or
          // the Deployment mounts it; waiting for "Bound" here would never end.
          annotations: { 'pulumi.com/skipAwait': 'true' },
        },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: args.config.storageClass || undefined,
          resources: { requests: { storage: args.config.volumeSize } },
        },
      },
      { parent: this, provider: args.provider },
    );
    this.registerOutputs({ claimName: this.claim.metadata.name });
  }
}

export interface TrainingJobArgs {
  config: TrainingConfig;
  stack: string;
  namespace: pulumi.Input<string>;
  image: pulumi.Input<string>;
  claimName: pulumi.Input<string>;
  provider: k8s.Provider;
}

/**
 * The training command the training image provides (docs/interfaces.md), on data in the volume. The tensor cache
 * goes to the volume too: the root filesystem is read-only, and a retried or repeated training then skips the
 * preprocessing (and resumes from the checkpoint in /models/current).
 */
export function trainingCommand(config: TrainingConfig): string[] {
  const threads = Math.max(1, Math.floor(parseCpu(config.resources.cpu) ?? 1));
  return [
    'node',
    'dist/model/cli/train.js',
    '--data',
    `/data/${config.dataDir}`,
    '--out',
    '/models/current',
    '--base',
    config.base,
    '--epochs',
    String(config.epochs),
    '--test-time-flip',
    '--cache-dir',
    '/models/.tensor-cache',
    // One PyTorch thread per CPU the Job may use; the node's CPU count would overcommit the limit.
    '--threads',
    String(threads),
  ];
}

/**
 * The claim starts empty. Rather than fail at once, the Job waits for the photos to be copied in (the README
 * shows the `kubectl cp` into this very container), then trains. This container mounts the whole volume and
 * creates data/ and models/ itself: folders the kubelet would create for a subPath belong to root, and
 * neither the copy nor the trainer (uid 1000) could write into them.
 */
function waitForDataContainer(config: TrainingConfig, image: pulumi.Input<string>) {
  const dataDir = `${STORE_MOUNT}/data/${config.dataDir}`;
  const script = [
    'const fs = require("node:fs");',
    `for (const d of ["data", "models"]) fs.mkdirSync(${JSON.stringify(STORE_MOUNT)} + "/" + d, { recursive: true });`,
    `const dir = ${JSON.stringify(dataDir)};`,
    'const ready = () => fs.existsSync(dir + "/.complete");',
    'const tick = () => { if (ready()) process.exit(0); console.log("waiting for " + dir + "/.complete"); };',
    'tick(); setInterval(tick, 10000);',
  ].join(' ');
  return {
    name: WAIT_CONTAINER,
    image,
    command: ['node', '-e', script],
    securityContext: containerSecurityContext,
    resources: {
      requests: { cpu: '10m', memory: '64Mi' },
      limits: { cpu: '100m', memory: '128Mi' },
    },
    volumeMounts: [tmpMount, { name: 'store', mountPath: STORE_MOUNT }],
  } satisfies k8s.types.input.core.v1.Container;
}

function trainingContainer(config: TrainingConfig, image: pulumi.Input<string>) {
  return {
    name: TRAINING_CONTAINER,
    image,
    workingDir: '/app',
    command: trainingCommand(config),
    env: writableDirsEnv,
    securityContext: containerSecurityContext,
    // Requests equal limits: training is a batch job that should neither be starved nor starve the
    // classifier pods sharing its node.
    resources: { requests: config.resources, limits: config.resources },
    // The trainer sees the volume's data/ and models/ folders as /data and /models.
    volumeMounts: [
      tmpMount,
      { name: 'store', mountPath: '/data', subPath: 'data' },
      { name: 'store', mountPath: '/models', subPath: 'models' },
    ],
  } satisfies k8s.types.input.core.v1.Container;
}

function jobSpec(args: TrainingJobArgs, labels: Record<string, string>) {
  return {
    // A failed training is worth one more try (a node can go away), not an endless loop.
    backoffLimit: 1,
    // The cluster gives up when Pulumi does, instead of keeping a pod waiting for data forever.
    activeDeadlineSeconds: TRAINING_TIMEOUT_HOURS * 3600,
    template: {
      metadata: { labels },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        securityContext: podSecurityContext,
        initContainers: [waitForDataContainer(args.config, args.image)],
        containers: [trainingContainer(args.config, args.image)],
        volumes: [tmpVolume, { name: 'store', persistentVolumeClaim: { claimName: args.claimName } }],
      },
    },
  } satisfies k8s.types.input.batch.v1.JobSpec;
}

export class TrainingJob extends pulumi.ComponentResource {
  readonly job: k8s.batch.v1.Job;

  constructor(name: string, args: TrainingJobArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:TrainingJob', name, {}, opts);
    const labels = appLabels(args.stack, 'training');
    this.job = new k8s.batch.v1.Job(
      name,
      {
        metadata: { name: `${APP_NAME}-train`, namespace: args.namespace, labels },
        spec: jobSpec(args, labels),
      },
      // Pulumi waits for the Job to complete (so a Deployment that reads the model starts after it);
      // training takes longer than the default ten minutes.
      {
        parent: this,
        provider: args.provider,
        customTimeouts: { create: `${TRAINING_TIMEOUT_HOURS}h`, update: `${TRAINING_TIMEOUT_HOURS}h` },
      },
    );
    this.registerOutputs({ jobName: this.job.metadata.name });
  }
}
