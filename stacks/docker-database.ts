// Strategy docker's labels store: PostgreSQL in a container of the official image beside the classifier, on the
// same Docker host, its data in a named volume. Both containers join one user-defined network, where Docker's DNS
// resolves the database container's name; no port of the database is published on the host.

import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import type { DatabaseConfig, DockerConfig } from './config';
import { pinned } from './image';
import { APP_NAME, appLabels } from './kubernetes-labels';
import {
  PG_ISREADY,
  POSTGRES_DATA_MOUNT,
  POSTGRES_ENV,
  POSTGRES_SOCKET_DIR,
  POSTGRES_UID,
  databasePassword,
  postgresUrl,
} from './postgres';
import { mebibytes, parseCpu } from './quantity';

export interface DockerLabelDatabaseArgs {
  config: DatabaseConfig;
  docker: DockerConfig;
  stack: string;
  /** The classifier's host: the database runs on the same engine. */
  provider: docker.Provider;
}

/** A name Docker accepts for a container, network or volume. */
export const dockerName = (text: string) => text.toLowerCase().replace(/[^a-z0-9_.-]/g, '-');

/** Seconds PostgreSQL gets to stop: a fast shutdown ends the sessions and writes a checkpoint. */
const STOP_SECONDS = 60;
/** initdb on the first start, WAL replay after a crash. */
const START_SECONDS = 300;

export class DockerLabelDatabase extends pulumi.ComponentResource {
  /** DATABASE_URL for the classifier (secret). */
  readonly url: pulumi.Output<string>;
  /** The network the classifier must join to reach the database by name. */
  readonly network: docker.Network;
  readonly volume: docker.Volume;
  readonly container: docker.Container;
  readonly host: string;

  constructor(name: string, args: DockerLabelDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:DockerLabelDatabase', name, {}, opts);
    const { config, stack } = args;
    const onHost = { parent: this, provider: args.provider };
    const labels = Object.entries(appLabels(stack, 'database')).map(([label, value]) => ({ label, value }));
    this.host = dockerName(`${APP_NAME}-${stack}-db`);

    this.network = new docker.Network(
      name,
      { name: dockerName(`${APP_NAME}-${stack}`), driver: 'bridge', labels },
      onHost,
    );
    // The data, and the password it was initialised with, follow databaseProtect together.
    this.volume = new docker.Volume(
      name,
      { name: this.host, labels },
      { ...onHost, protect: config.protect },
    );
    const password = databasePassword(`${name}-password`, config.protect, this);
    const pulled = new docker.RemoteImage(
      name,
      { name: pinned(config.image, this), keepLocally: false },
      onHost,
    );

    const limits = config.resources;
    this.container = new docker.Container(
      name,
      {
        name: this.host,
        image: pulled.imageId,
        labels,
        envs: pulumi.secret(
          password.result.apply((secret) => [
            ...Object.entries(POSTGRES_ENV).map(([key, value]) => `${key}=${value}`),
            `POSTGRES_PASSWORD=${secret}`,
          ]),
        ),
        volumes: [{ volumeName: this.volume.name, containerPath: POSTGRES_DATA_MOUNT }],
        networksAdvanced: [{ name: this.network.name }],
        restart: args.docker.restart,
        healthcheck: {
          tests: ['CMD', ...PG_ISREADY],
          interval: '10s',
          timeout: '5s',
          retries: 6,
          startPeriod: `${START_SECONDS}s`,
        },
        // The image's postgres user: a fresh named volume takes the image's folder, owned by it.
        user: `${POSTGRES_UID}:${POSTGRES_UID}`,
        readOnly: true,
        tmpfs: {
          [POSTGRES_SOCKET_DIR]: 'rw,noexec,nosuid,size=1m',
          '/tmp': 'rw,noexec,nosuid,size=64m',
        },
        capabilities: { drops: ['ALL'] },
        securityOpts: ['no-new-privileges:true'],
        cpus: String(parseCpu(limits.cpu)),
        memory: mebibytes(limits.memory),
        memorySwap: mebibytes(limits.memory),
        memoryReservation: mebibytes(limits.memory),
        // SIGINT is PostgreSQL's fast shutdown (the image's own STOPSIGNAL); SIGTERM would wait for every
        // client to leave.
        stopSignal: 'SIGINT',
        stopTimeout: STOP_SECONDS,
        destroyGraceSeconds: STOP_SECONDS,
        wait: true,
        waitTimeout: START_SECONDS + 30,
        mustRun: true,
      },
      onHost,
    );
    this.url = postgresUrl(password.result, this.host);
    this.registerOutputs({ host: this.host });
  }
}
