// The labels store of the Kubernetes strategies (k8s, lb, hpa, kserve): PostgreSQL as a StatefulSet of the
// official image with its own volume, in the stack's namespace; or a Cloud SQL instance (stacks/cloud-sql.ts);
// or a server the stack does not manage (databaseUrl). Whichever it is, the classifier reads one thing: a
// Kubernetes Secret whose key `url` holds DATABASE_URL, so the password never appears in a pod spec.

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type * as random from '@pulumi/random';
import { CloudSqlDatabase, type CloudSqlPlacement } from './cloud-sql';
import type { DatabaseConfig } from './config';
import { pinned } from './image';
import { APP_NAME, appLabels, selectorLabels } from './kubernetes-labels';
import { containerSecurityContext, podSecurityContextFor, tmpMount, tmpVolume } from './pod';
import {
  DATABASE_PORT,
  PG_ISREADY,
  PGDATA,
  POSTGRES_DATA_MOUNT,
  POSTGRES_ENV,
  POSTGRES_SOCKET_DIR,
  POSTGRES_UID,
  databasePassword,
  databaseUrlHost,
  postgresUrl,
} from './postgres';
import type { SecretKeyRef } from './workload';

/** The Secret key holding DATABASE_URL, whatever server it names. */
export const DATABASE_URL_KEY = 'url';
const PASSWORD_KEY = 'password';
export const POSTGRES_CONTAINER = 'postgres';

export interface LabelDatabaseArgs {
  config: DatabaseConfig;
  stack: string;
  namespace: pulumi.Input<string>;
  provider: k8s.Provider;
  /** Required when config.server is cloudsql: the GKE cluster's project, region, network and provider. */
  cloudSql?: CloudSqlPlacement;
}

export class LabelDatabase extends pulumi.ComponentResource {
  /** Where the classifier reads DATABASE_URL. */
  readonly urlSecret: SecretKeyRef;
  /** The server's host name or address (never the password): an output users may see. */
  readonly host: pulumi.Output<string>;
  readonly secret: k8s.core.v1.Secret;
  /** Set when the server runs in the cluster. */
  readonly statefulSet?: k8s.apps.v1.StatefulSet;
  readonly service?: k8s.core.v1.Service;

  constructor(name: string, args: LabelDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:LabelDatabase', name, {}, opts);
    const { config } = args;
    const labels = appLabels(args.stack, 'database');
    const inCluster = { parent: this, provider: args.provider };
    const metadata = { name: `${APP_NAME}-db`, namespace: args.namespace, labels };

    let url: pulumi.Output<string>;
    let password: random.RandomPassword | undefined;
    if (config.server === 'external') {
      url = pulumi.secret(config.externalUrl);
      this.host = pulumi.output(databaseUrlHost(config.externalUrl));
    } else if (config.server === 'cloudsql') {
      if (!args.cloudSql) throw new Error('databaseServer cloudsql needs the GKE cluster it peers with');
      password = databasePassword(`${name}-password`, config.protect, this);
      const cloudSql = new CloudSqlDatabase(
        `${name}-cloudsql`,
        { config, stack: args.stack, placement: args.cloudSql, password: password.result },
        { parent: this },
      );
      this.host = cloudSql.host;
      url = postgresUrl(password.result, cloudSql.host);
    } else {
      password = databasePassword(`${name}-password`, config.protect, this);
      this.service = new k8s.core.v1.Service(
        name,
        {
          metadata,
          spec: {
            // Headless: the StatefulSet's governing Service, and a DNS name for its one pod. ClusterIP only,
            // whatever the classifier's Service type: nothing outside the cluster reaches the database.
            clusterIP: 'None',
            selector: selectorLabels(args.stack, 'database'),
            ports: [{ name: 'postgres', port: DATABASE_PORT, targetPort: 'postgres', protocol: 'TCP' }],
          },
        },
        inCluster,
      );
      this.host = pulumi.interpolate`${this.service.metadata.name}.${this.service.metadata.namespace}.svc.cluster.local`;
      url = postgresUrl(password.result, this.host);
    }

    this.secret = new k8s.core.v1.Secret(
      name,
      {
        metadata,
        type: 'Opaque',
        stringData: {
          [DATABASE_URL_KEY]: url,
          ...(password ? { [PASSWORD_KEY]: password.result } : {}),
        },
      },
      // Protected with the password it holds: the classifier's only way in.
      { ...inCluster, protect: config.protect && password !== undefined },
    );
    this.urlSecret = { name: this.secret.metadata.name, key: DATABASE_URL_KEY };

    if (config.server === 'in-cluster' && this.service) {
      this.statefulSet = new k8s.apps.v1.StatefulSet(
        name,
        {
          metadata,
          spec: statefulSetSpec({
            config,
            labels,
            selector: selectorLabels(args.stack, 'database'),
            serviceName: this.service.metadata.name,
            image: pinned(config.image, this),
            passwordSecret: { name: this.secret.metadata.name, key: PASSWORD_KEY },
          }),
        },
        // The StatefulSet owns the volume claim: protected, `pulumi destroy` cannot take it (or, through
        // the namespace, the claim) away.
        { ...inCluster, protect: config.protect },
      );
    }
    this.registerOutputs({ host: this.host });
  }
}

interface StatefulSetParts {
  config: DatabaseConfig;
  labels: Record<string, string>;
  selector: Record<string, string>;
  serviceName: pulumi.Input<string>;
  image: pulumi.Input<string>;
  passwordSecret: SecretKeyRef;
}

/** pg_isready as a probe: readiness often, liveness patiently (a checkpoint may stall it for a moment). */
function pgIsReady(periodSeconds: number, failureThreshold: number) {
  return { exec: { command: PG_ISREADY }, periodSeconds, failureThreshold, timeoutSeconds: 5 };
}

function postgresContainer(parts: StatefulSetParts): k8s.types.input.core.v1.Container {
  const { config } = parts;
  const resources = { cpu: config.resources.cpu, memory: config.resources.memory };
  return {
    name: POSTGRES_CONTAINER,
    image: parts.image,
    imagePullPolicy: 'IfNotPresent',
    ports: [{ name: 'postgres', containerPort: DATABASE_PORT, protocol: 'TCP' }],
    env: [
      ...Object.entries(POSTGRES_ENV).map(([name, value]) => ({ name, value })),
      {
        name: 'POSTGRES_PASSWORD',
        valueFrom: { secretKeyRef: { name: parts.passwordSecret.name, key: parts.passwordSecret.key } },
      },
    ],
    // Requests equal limits (Guaranteed): the last pod a node under memory pressure evicts is the one
    // holding everyone's labels.
    resources: { requests: resources, limits: resources },
    securityContext: containerSecurityContext,
    // The first start runs initdb, and a restart after a crash replays the WAL: up to 5 minutes.
    startupProbe: pgIsReady(5, 60),
    readinessProbe: pgIsReady(5, 3),
    livenessProbe: pgIsReady(10, 6),
    lifecycle: {
      // Kubernetes sends SIGTERM, which PostgreSQL takes as a "smart" shutdown that waits for every client
      // (the classifier's pools never leave) until the kill; a fast shutdown ends their sessions and
      // writes a clean checkpoint instead, so the next start needs no recovery.
      preStop: { exec: { command: ['pg_ctl', 'stop', '--mode=fast', `--pgdata=${PGDATA}`, '--wait'] } },
    },
    volumeMounts: [
      { name: 'data', mountPath: POSTGRES_DATA_MOUNT },
      { name: 'run', mountPath: POSTGRES_SOCKET_DIR },
      tmpMount,
    ],
  };
}

function statefulSetSpec(parts: StatefulSetParts) {
  const { config, labels, selector } = parts;
  return {
    serviceName: parts.serviceName,
    // One server: PostgreSQL replicas are not interchangeable copies (a standby is a different setup).
    replicas: 1,
    selector: { matchLabels: selector },
    // Kubernetes keeps a StatefulSet's claims when it is deleted unless told otherwise; the key says which.
    persistentVolumeClaimRetentionPolicy: {
      whenDeleted: config.protect ? 'Retain' : 'Delete',
      whenScaled: 'Retain',
    },
    template: {
      metadata: { labels },
      spec: {
        automountServiceAccountToken: false,
        securityContext: podSecurityContextFor(POSTGRES_UID),
        // The fast shutdown above, then a margin.
        terminationGracePeriodSeconds: 60,
        containers: [postgresContainer(parts)],
        volumes: [{ name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }, tmpVolume],
      },
    },
    volumeClaimTemplates: [
      {
        metadata: { name: 'data', labels },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: config.storageClass || undefined,
          resources: { requests: { storage: config.volumeSize } },
        },
      },
    ],
  } satisfies k8s.types.input.apps.v1.StatefulSetSpec;
}
