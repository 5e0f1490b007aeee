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
    const { gcp: g } = args;
    this.gcpProvider = new gcp.Provider(
      `${name}-gcp`,
      { project: g.project, region: g.region, zone: g.zone || undefined },
      { parent: this },
    );
    const inGcp = { parent: this, provider: this.gcpProvider };
    this.nodeTag = `${APP_NAME}-${args.stack}-nodes`.toLowerCase().replace(/[^a-z0-9-]/g, '-');

    // A dedicated node identity instead of the default compute account (which holds Editor on the project):
    // nodes need to write logs and metrics and to pull the image, nothing else.
    const nodeAccount = new gcp.serviceaccount.Account(
      `${name}-nodes`,
      {
        accountId: `gg-nodes-${args.stack}`
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '-')
          .slice(0, 30),
        displayName: `GourmetGram GKE nodes (${args.stack})`,
      },
      inGcp,
    );
    const nodeRoles = ['roles/container.defaultNodeServiceAccount', 'roles/artifactregistry.reader'];
    const grants = nodeRoles.map(
      (role) =>
        new gcp.projects.IAMMember(
          `${name}-nodes-${role.split('/')[1]}`,
          { project: g.project, role, member: pulumi.interpolate`serviceAccount:${nodeAccount.email}` },
          inGcp,
        ),
    );

    const autopilot = g.mode === 'autopilot';
    const oauthScopes = ['https://www.googleapis.com/auth/cloud-platform'];
    // A zonal cluster when a zone is given: its control plane is covered by GKE's free tier, and a regional
    // cluster would run every node pool once per zone (three times the idle cost). Autopilot clusters are
    // regional only, and then cost no more: what is billed is the pods, wherever they run.
    const location = autopilot ? g.region : g.zone || g.region;
    const standardCluster: gcp.container.ClusterArgs = {
      // The default pool cannot autoscale to our bounds or use our node account; replace it at once.
      removeDefaultNodePool: true,
      initialNodeCount: 1,
      workloadIdentityConfig: { workloadPool: `${g.project}.svc.id.goog` },
    };
    const autopilotCluster: gcp.container.ClusterArgs = {
      enableAutopilot: true,
      // Autopilot's nodes run as our node account too, and carry the tag a node-port firewall rule targets.
      clusterAutoscaling: {
        autoProvisioningDefaults: { serviceAccount: nodeAccount.email, oauthScopes },
      },
      nodePoolAutoConfig: { networkTags: { tags: [this.nodeTag] } },
    };
    this.cluster = new gcp.container.Cluster(
      name,
      {
        ...(autopilot ? autopilotCluster : standardCluster),
        location,
        // Without this, `pulumi destroy` fails: the provider refuses to delete a protected cluster.
        deletionProtection: false,
        releaseChannel: { channel: g.releaseChannel },
      },
      // Autopilot's nodes need the account's roles before the first pod is scheduled.
      { ...inGcp, dependsOn: autopilot ? grants : [] },
    );

    this.nodePool = autopilot
      ? undefined
      : new gcp.container.NodePool(
          `${name}-pool`,
          {
            cluster: this.cluster.name,
            location,
            initialNodeCount: g.nodeCount,
            // The cluster autoscaler removes idle nodes down to minNodes: the strategies differ in how many
            // nodes they keep busy, and so in what they cost when nobody is using them.
            autoscaling: { minNodeCount: g.minNodes, maxNodeCount: g.maxNodes },
            management: { autoRepair: true, autoUpgrade: true },
            nodeConfig: {
              machineType: g.machineType,
              spot: g.spot,
              // GKE's default boot disk is 100 GB per node, paid for around the clock; the image needs a few.
              diskSizeGb: g.diskSizeGb,
              serviceAccount: nodeAccount.email,
              oauthScopes,
              workloadMetadataConfig: { mode: 'GKE_METADATA' },
              tags: [this.nodeTag],
              labels: { app: APP_NAME, stack: args.stack },
            },
          },
          // The autoscaler changes the live count; a changed initial count must not replace the pool.
          { ...inGcp, dependsOn: grants, ignoreChanges: ['initialNodeCount'] },
        );

    const context = pulumi.interpolate`gke_${g.project}_${location}_${this.cluster.name}`;
    this.kubeconfig = pulumi.secret(
      pulumi.interpolate`apiVersion: v1
kind: Config
clusters:
- name: ${context}
  cluster:
    server: https://${this.cluster.endpoint}
    certificate-authority-data: ${this.cluster.masterAuth.clusterCaCertificate}
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
`,
    );
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
function existingClusterProvider(cfg: ClusterConfig): k8s.Provider {
  const kubeconfig = cfg.kubeconfig.startsWith('~/')
    ? path.join(os.homedir(), cfg.kubeconfig.slice(2))
    : cfg.kubeconfig;
  return new k8s.Provider('existing-cluster', {
    kubeconfig: kubeconfig || undefined,
    context: cfg.kubeContext || undefined,
  });
}

export function connectCluster(cfg: ClusterConfig, stack: string): ClusterConnection {
  if (cfg.kind === 'gke') {
    const gke = new GkeCluster(`${APP_NAME}-${stack}`, { gcp: cfg.gcp, stack });
    const nodeAddress = () => (cfg.nodeAddress ? pulumi.output(cfg.nodeAddress) : gke.nodeAddress());
    return { provider: gke.provider, gke, nodeAddress };
  }
  return {
    provider: existingClusterProvider(cfg),
    nodeAddress: () => pulumi.output(cfg.nodeAddress || 'localhost'),
  };
}
