// Strategy docker: the course's first exercise (`docker run -d -p 32000:5000` on node-0, before Kubernetes),
// declared. The image ClassifierImage built and pushed is pulled by digest onto the Docker host and run as
// one container with the pods' environment, health check, limits and hardening (stacks/workload.ts), beside its
// PostgreSQL container (stacks/docker-database.ts) unless databaseUrl names another server; `pulumi destroy` stops
// it (after the same drain deadline) and removes it and the pulled image.

import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import type { ClassifierConfig, DatabaseConfig, DockerConfig } from './config';
import { DockerLabelDatabase, dockerName } from './docker-database';
import { APP_NAME, appLabels } from './kubernetes-labels';
import { databaseUrlHost } from './postgres';
import { CONTAINER_PORT, dockerRuntime } from './workload';

export interface DockerHostClassifierArgs {
  config: ClassifierConfig;
  docker: DockerConfig;
  stack: string;
  /** `repository@sha256:…`, pushed where the host can pull it. */
  image: pulumi.Input<string>;
  database: DatabaseConfig;
}

export class DockerHostClassifier extends pulumi.ComponentResource {
  readonly provider: docker.Provider;
  readonly container: docker.Container;
  /** Set unless databaseUrl names a server elsewhere. */
  readonly database?: DockerLabelDatabase;
  readonly databaseHost: string;
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: DockerHostClassifierArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:DockerHostClassifier', name, {}, opts);
    const { config, docker: host, stack } = args;
    // Its own provider, so the host can differ from the engine that builds the image (an ssh:// host
    // runs the container; the image is built and pushed from this machine).
    this.provider = new docker.Provider(`${name}-host`, { host: host.host || undefined }, { parent: this });
    const onHost = { parent: this, provider: this.provider };

    const pulled = new docker.RemoteImage(
      name,
      // keepLocally false: destroying the stack removes the pulled image from the host too.
      { name: args.image, keepLocally: false },
      onHost,
    );

    if (args.database.server !== 'external') {
      this.database = new DockerLabelDatabase(
        `${name}-database`,
        { config: args.database, docker: host, stack, provider: this.provider },
        { parent: this },
      );
    }
    const databaseUrl = this.database?.url ?? pulumi.secret(args.database.externalUrl);
    this.databaseHost = this.database?.host ?? databaseUrlHost(args.database.externalUrl);

    const run = dockerRuntime(config, databaseUrl);
    this.container = new docker.Container(
      name,
      {
        name: dockerName(`${APP_NAME}-${stack}`),
        image: pulled.imageId,
        // The same labels the pods carry: the monitor finds the container by them.
        labels: Object.entries(appLabels(stack)).map(([label, value]) => ({ label, value })),
        ports: [{ internal: CONTAINER_PORT, external: host.port, protocol: 'tcp' }],
        // The database's network, where its container's name resolves.
        networksAdvanced: this.database ? [{ name: this.database.network.name }] : undefined,
        restart: host.restart,
        envs: run.envs,
        healthcheck: run.healthcheck,
        user: run.user,
        readOnly: run.readOnly,
        tmpfs: run.tmpfs,
        capabilities: run.capabilities,
        securityOpts: run.securityOpts,
        cpus: run.cpus,
        cpuShares: run.cpuShares,
        memory: run.memory,
        memoryReservation: run.memoryReservation,
        // No swap beyond the memory limit, as in a pod: a leak ends in an OOM kill, not a crawling host.
        memorySwap: run.memory,
        stopSignal: 'SIGTERM',
        stopTimeout: run.stopTimeout,
        destroyGraceSeconds: run.stopTimeout,
        // `pulumi up` ends once the health check passes, as it waits for a Deployment's readiness; the
        // start period is as long as the pods' startup probe allows.
        wait: true,
        waitTimeout: run.startSeconds + 30,
        mustRun: true,
      },
      onHost,
    );

    const published = this.container.ports.apply(
      (ports) => ports?.find((p) => p.internal === CONTAINER_PORT)?.external ?? host.port,
    );
    this.url = pulumi.interpolate`http://${host.address}:${published}`;
    this.registerOutputs({ url: this.url });
  }
}
