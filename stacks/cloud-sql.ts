// The labels store as a Cloud SQL for PostgreSQL instance, for a stack that creates its GKE cluster
// (databaseServer: cloudsql): Google runs the server, its backups and its disk. The instance has a private IP only,
// in the cluster's VPC through private services access (a reserved range and a peering with Google's service
// network), so the pods reach it as they would the in-cluster server: the same DATABASE_URL, no sidecar, no
// key file and no public address. The Cloud SQL Auth Proxy would add a container to every pod (and Knative
// admits a second container only behind a feature flag) for what the VPC already gives.
// A private IP is reachable from pod addresses only on a VPC-native cluster, which is what GKE creates unless
// told otherwise (stacks/cluster.ts leaves networkingMode at that default; Autopilot is always VPC-native).

import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { gcpName } from './cluster';
import type { DatabaseConfig } from './config';
import { APP_NAME } from './kubernetes-labels';
import { DATABASE_NAME, DATABASE_USER } from './postgres';

/** Where the instance goes: next to the GKE cluster, on its network. */
export interface CloudSqlPlacement {
  provider: gcp.Provider;
  project: string;
  region: string;
  /** The cluster's network as GKE reports it (a name or a self link); undefined means `default`. */
  network: pulumi.Output<string | undefined>;
}

export interface CloudSqlDatabaseArgs {
  config: DatabaseConfig;
  stack: string;
  placement: CloudSqlPlacement;
  password: pulumi.Input<string>;
}

/** `default` or `…/global/networks/default` → `projects/<project>/global/networks/default`, as peering wants it. */
export function networkId(project: string, network: string | undefined): string {
  const name = (network ?? 'default').split('/').pop() || 'default';
  return `projects/${project}/global/networks/${name}`;
}

export class CloudSqlDatabase extends pulumi.ComponentResource {
  readonly instance: gcp.sql.DatabaseInstance;
  /** The instance's private IP. */
  readonly host: pulumi.Output<string>;

  constructor(name: string, args: CloudSqlDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:infra:CloudSqlDatabase', name, {}, opts);
    const { config, placement } = args;
    const inGcp = { parent: this, provider: placement.provider };
    const network = placement.network.apply((n) => networkId(placement.project, n));
    // What holds the data follows databaseProtect; the rest can always be made again.
    const keeps = { ...inGcp, protect: config.protect };

    const peeringRange = new gcp.compute.GlobalAddress(
      `${name}-range`,
      {
        name: gcpName(`${APP_NAME}-${args.stack}-sql-range`),
        purpose: 'VPC_PEERING',
        addressType: 'INTERNAL',
        prefixLength: 20,
        network,
      },
      inGcp,
    );
    // A network has one peering with Google's service network, shared by everything that uses private
    // services access in it: destroying this stack leaves it (ABANDON), so no other instance loses its route.
    const peering = new gcp.servicenetworking.Connection(
      `${name}-peering`,
      {
        network,
        service: 'servicenetworking.googleapis.com',
        reservedPeeringRanges: [peeringRange.name],
        deletionPolicy: 'ABANDON',
      },
      inGcp,
    );

    this.instance = new gcp.sql.DatabaseInstance(
      name,
      {
        name: gcpName(`${APP_NAME}-${args.stack}-labels`),
        region: placement.region,
        databaseVersion: config.cloudSql.version,
        // The provider's own guard, which refuses a destroy until an update lifts it, follows the key too.
        deletionProtection: config.protect,
        settings: {
          // Enterprise Plus, the default for PostgreSQL 16 and later, has no shared-core tiers such as
          // db-f1-micro; Enterprise has, at a fraction of the price.
          edition: 'ENTERPRISE',
          tier: config.cloudSql.tier,
          availabilityType: 'ZONAL',
          deletionProtectionEnabled: config.protect,
          ipConfiguration: {
            ipv4Enabled: false,
            privateNetwork: network,
            sslMode: 'ALLOW_UNENCRYPTED_AND_ENCRYPTED',
          },
          backupConfiguration: { enabled: true, pointInTimeRecoveryEnabled: true },
          userLabels: { app: APP_NAME, stack: gcpName(args.stack) },
        },
      },
      // An instance takes several minutes to create; it needs the peering before it can take a private IP.
      { ...keeps, dependsOn: [peering], customTimeouts: { create: '30m', update: '30m', delete: '30m' } },
    );
    new gcp.sql.Database(`${name}-db`, { name: DATABASE_NAME, instance: this.instance.name }, keeps);
    new gcp.sql.User(
      `${name}-user`,
      { name: DATABASE_USER, instance: this.instance.name, password: args.password },
      keeps,
    );
    this.host = this.instance.privateIpAddress;
    this.registerOutputs({ host: this.host, instance: this.instance.connectionName });
  }
}
