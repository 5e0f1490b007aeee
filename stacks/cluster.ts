// Where the classifier runs: a GKE cluster this stack creates, or a cluster that already exists. Either way
// the rest of the program receives one `k8s.Provider` and never asks which it was (the shape of Pulumi's
// kubernetes-ts-multicloud example).

import * as os from 'node:os';
import * as path from 'node:path';
import * as gcp from '@pulumi/gcp';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClusterConfig } from './config';
import { APP_NAME } from './kubernetes-labels';

export interface GkeClusterArgs {
  gcp: ClusterConfig['gcp'];
  stack: string;
}

type GkeSettings = ClusterConfig['gcp'];

/** A name Google accepts: lower-case letters, digits and dashes. */
export const gcpName = (text: string) => text.toLowerCase().replace(/[^a-z0-9-]/g, '-');

const OAUTH_SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

/**
 * A zonal cluster when a zone is given: its control plane is covered by GKE's free tier, and a regional
 * cluster would run every node pool once per zone (three times the idle cost). Autopilot clusters are
 * regional only, and then cost no more: what is billed is the pods, wherever they run.
 */
function clusterLocation(settings: GkeSettings): string {
  return settings.mode === 'autopilot' ? settings.region : settings.zone || settings.region;
}

/**
 * A dedicated node identity instead of the default compute account (which holds Editor on the project):
 * nodes need to write logs and metrics and to pull the image, nothing else.
 */
function nodeServiceAccount(
  name: string,
  args: GkeClusterArgs,
  opts: pulumi.CustomResourceOptions,
): { account: gcp.serviceaccount.Account; grants: gcp.projects.IAMMember[] } {
  const account = new gcp.serviceaccount.Account(
    `${name}-nodes`,
    {
      accountId: gcpName(`gg-nodes-${args.stack}`).slice(0, 30),
      displayName: `GourmetGram GKE nodes (${args.stack})`,
    },
    opts,
  );
  const nodeRoles = ['roles/container.defaultNodeServiceAccount', 'roles/artifactregistry.reader'];
  const grants = nodeRoles.map(
    (role) =>
      new gcp.projects.IAMMember(
        `${name}-nodes-${role.split('/')[1]}`,
        { project: args.gcp.project, role, member: pulumi.interpolate`serviceAccount:${account.email}` },
        opts,
      ),
  );
  return { account, grants };
}

function clusterArgs(
  settings: GkeSettings,
  nodeAccountEmail: pulumi.Output<string>,
  nodeTag: string,
): gcp.container.ClusterArgs {
  const common = {
    location: clusterLocation(settings),
    // Without this, `pulumi destroy` fails: the provider refuses to delete a protected cluster.
    deletionProtection: false,
    releaseChannel: { channel: settings.releaseChannel },
  };
  if (settings.mode === 'autopilot') {
    return {
      ...common,
      enableAutopilot: true,
      // Autopilot's nodes run as our node account too, and carry the tag a node-port firewall rule targets.
      clusterAutoscaling: {
        autoProvisioningDefaults: { serviceAccount: nodeAccountEmail, oauthScopes: OAUTH_SCOPES },
      },
      nodePoolAutoConfig: { networkTags: { tags: [nodeTag] } },
    };
  }
  return {
    // The default pool cannot autoscale to our bounds or use our node account; replace it at once.
    removeDefaultNodePool: true,
    initialNodeCount: 1,
    workloadIdentityConfig: { workloadPool: `${settings.project}.svc.id.goog` },
    ...common,
  };
}

function nodePoolArgs(
  settings: GkeSettings,
  args: {
    cluster: pulumi.Input<string>;
    nodeAccountEmail: pulumi.Output<string>;
    nodeTag: string;
    stack: string;
  },
): gcp.container.NodePoolArgs {
  return {
    cluster: args.cluster,
    location: clusterLocation(settings),
    initialNodeCount: settings.nodeCount,
    // The cluster autoscaler removes idle nodes down to minNodes: the strategies differ in how many nodes
    // they keep busy, and so in what they cost when nobody is using them.
    autoscaling: { minNodeCount: settings.minNodes, maxNodeCount: settings.maxNodes },
    management: { autoRepair: true, autoUpgrade: true },
    nodeConfig: {
      machineType: settings.machineType,
      spot: settings.spot,
      // GKE's default boot disk is 100 GB per node, paid for around the clock; the image needs a few.
      diskSizeGb: settings.diskSizeGb,
      serviceAccount: args.nodeAccountEmail,
      oauthScopes: OAUTH_SCOPES,
      workloadMetadataConfig: { mode: 'GKE_METADATA' },
      tags: [args.nodeTag],
      labels: { app: APP_NAME, stack: args.stack },
    },
  };
}

/**
 * A kubeconfig for the cluster that names its endpoint and CA only: credentials come from gcloud's auth
 * plugin when kubectl or Pulumi use it, never from the stack's state.
 */
function gkeKubeconfig(settings: GkeSettings, cluster: gcp.container.Cluster): pulumi.Output<string> {
  const context = pulumi.interpolate`gke_${settings.project}_${clusterLocation(settings)}_${cluster.name}`;
  return pulumi.interpolate`apiVersion: v1
kind: Config
clusters:
- name: ${context}
  cluster:
    server: https://${cluster.endpoint}
    certificate-authority-data: ${cluster.masterAuth.clusterCaCertificate}
contexts:
- name: ${context}
  context:
    cluster: ${context}
    user: ${context}
current-context: ${context}
users:
- name: ${context}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin).
      provideClusterInfo: true
`;
}

/**
 * A GKE cluster and a Kubernetes provider that talks to it: Standard, with one autoscaled node pool this stack
 * sizes (and pays for while idle), or Autopilot, where Google runs the nodes and bills the pods' requests.
 */
export class GkeCluster extends pulumi.ComponentResource {
  readonly cluster: gcp.container.Cluster;
  /** Standard only: Autopilot creates and removes its node pools itself. */
  readonly nodePool?: gcp.container.NodePool;
  /** Secret: it names the cluster's endpoint and CA. Credentials come from gcloud at use, never from here. */
  readonly kubeconfig: pulumi.Output<string>;
  readonly provider: k8s.Provider;
  /** Network tag on every node, so a firewall rule can open a node port on these nodes only. */
  readonly nodeTag: string;
  private readonly gcpProvider: gcp.Provider;

  constructor(name: string, args: GkeClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:infra:GkeCluster', name, {}, opts);
    const settings = args.gcp;
    this.gcpProvider = new gcp.Provider(
      `${name}-gcp`,
      { project: settings.project, region: settings.region, zone: settings.zone || undefined },
      { parent: this },
    );
    const inGcp = { parent: this, provider: this.gcpProvider };
    this.nodeTag = gcpName(`${APP_NAME}-${args.stack}-nodes`);

    const nodes = nodeServiceAccount(name, args, inGcp);
    const autopilot = settings.mode === 'autopilot';
    this.cluster = new gcp.container.Cluster(
      name,
      clusterArgs(settings, nodes.account.email, this.nodeTag),
      // Autopilot's nodes need the account's roles before the first pod is scheduled.
      { ...inGcp, dependsOn: autopilot ? nodes.grants : [] },
    );
    this.nodePool = autopilot
      ? undefined
      : new gcp.container.NodePool(
          `${name}-pool`,
          nodePoolArgs(settings, {
            cluster: this.cluster.name,
            nodeAccountEmail: nodes.account.email,
            nodeTag: this.nodeTag,
            stack: args.stack,
          }),
          // The autoscaler changes the live count; a changed initial count must not replace the pool.
          { ...inGcp, dependsOn: nodes.grants, ignoreChanges: ['initialNodeCount'] },
        );

    this.kubeconfig = pulumi.secret(gkeKubeconfig(settings, this.cluster));
    // Created after the node pool: deploying pods before any node exists only produces Pending pods.
    this.provider = new k8s.Provider(
      `${name}-k8s`,
      { kubeconfig: this.kubeconfig },
      { parent: this, dependsOn: [this.nodePool ?? this.cluster] },
    );
    this.registerOutputs({ kubeconfig: this.kubeconfig, clusterName: this.cluster.name });
  }

  /** The Google Cloud provider this cluster was created with, for resources that belong next to it. */
  get gcp(): gcp.Provider {
    return this.gcpProvider;
  }

  /** Opens a node port to the given source ranges, on this cluster's nodes only. */
  allowNodePort(name: string, port: pulumi.Input<number>, sourceRanges: string[]): gcp.compute.Firewall {
    return new gcp.compute.Firewall(
      name,
      {
        network: this.cluster.network.apply((network) => network ?? 'default'),
        description: 'GourmetGram classifier node port',
        allows: [{ protocol: 'tcp', ports: [pulumi.output(port).apply(String)] }],
        sourceRanges,
        targetTags: [this.nodeTag],
      },
      { parent: this, provider: this.gcpProvider },
    );
  }

  /**
   * The external IP of one node, for a node-port URL. Nodes come and go with the autoscaler, so this is
   * the address at deploy time; `kubectl get nodes -o wide` lists the current ones.
   */
  nodeAddress(): pulumi.Output<string> {
    const opts = { provider: this.gcpProvider, parent: this };
    const groups = this.nodePool
      ? this.nodePool.instanceGroupUrls
      : // Autopilot: whichever pool it has created by now (it creates one for the first pods).
        this.cluster.nodePools.apply((pools) => pools?.flatMap((p) => p.instanceGroupUrls ?? []) ?? []);
    return groups.apply(async (urls) => {
      // GKE reports instance group managers; the instance group of the same name lists the VMs.
      const groupUrl = urls[0]?.replace('/instanceGroupManagers/', '/instanceGroups/');
      if (!groupUrl) return 'localhost';
      const group = await gcp.compute.getInstanceGroup({ selfLink: groupUrl }, opts);
      const first = group.instances[0];
      if (!first) return 'localhost';
      const instance = await gcp.compute.getInstance({ selfLink: first }, opts);
      return instance.networkInterfaces[0]?.accessConfigs[0]?.natIp ?? 'localhost';
    });
  }
}

export interface ClusterConnection {
  provider: k8s.Provider;
  /** Set when this stack created the cluster. */
  gke?: GkeCluster;
  /** Where users reach a node port; a function, so nodes are looked up only when a URL needs one. */
  nodeAddress: () => pulumi.Output<string>;
}

/** A provider for a cluster that already exists: the given kubeconfig and context, or the ambient ones. */
function existingClusterProvider(clusterConfig: ClusterConfig): k8s.Provider {
  const kubeconfig = clusterConfig.kubeconfig.startsWith('~/')
    ? path.join(os.homedir(), clusterConfig.kubeconfig.slice(2))
    : clusterConfig.kubeconfig;
  return new k8s.Provider('existing-cluster', {
    kubeconfig: kubeconfig || undefined,
    context: clusterConfig.kubeContext || undefined,
  });
}

export function connectCluster(clusterConfig: ClusterConfig, stack: string): ClusterConnection {
  if (clusterConfig.kind === 'gke') {
    const gke = new GkeCluster(`${APP_NAME}-${stack}`, { gcp: clusterConfig.gcp, stack });
    const nodeAddress = () =>
      clusterConfig.nodeAddress ? pulumi.output(clusterConfig.nodeAddress) : gke.nodeAddress();
    return { provider: gke.provider, gke, nodeAddress };
  }
  return {
    provider: existingClusterProvider(clusterConfig),
    nodeAddress: () => pulumi.output(clusterConfig.nodeAddress || 'localhost'),
  };
}
