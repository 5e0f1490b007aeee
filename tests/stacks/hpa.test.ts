// Stack hpa (Pulumi.hpa.yaml) on the GKE cluster it creates: the user sets only gcpProject.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertDatabaseUrlFromSecret, assertInClusterDatabase } from './database-expectations';
import {
  T,
  assertAppObjects,
  assertClassifierContainer,
  assertExports,
  container,
  servicePort,
} from './expectations';
import { FAKE_LB_IP, stackUnderTest } from './harness';

describe('stack hpa (GKE)', () => {
  const run = stackUnderTest('hpa', { gcpProject: 'test-project' });

  it('declares only schema-valid Kubernetes objects, labelled, in the namespace, through the GKE provider', () => {
    assertAppObjects(run, 'gourmetgram');
    const provider = run.one(T.k8sProvider);
    assert.match(String(run.one(T.namespace).provider), new RegExp(`::${provider.name}::`));
  });

  it('leaves spec.replicas to the HPA', () => {
    const { deployment } = container(run);
    assert.equal('replicas' in deployment.inputs.spec, false);
  });

  it('autoscales on CPU between the stack file bounds, with explicit behaviour', () => {
    const hpa = run.one(T.hpa).inputs.spec;
    assert.equal(hpa.minReplicas, 1);
    assert.equal(hpa.maxReplicas, 5);
    assert.deepEqual(hpa.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'gourmetgram' });
    assert.deepEqual(hpa.metrics, [
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
      },
    ]);
    assert.equal(hpa.behavior.scaleUp.stabilizationWindowSeconds, 0);
    assert.equal(hpa.behavior.scaleDown.stabilizationWindowSeconds, 300);
    assert.deepEqual(hpa.behavior.scaleUp.policies, [{ type: 'Pods', value: 2, periodSeconds: 15 }]);
    assert.deepEqual(hpa.behavior.scaleDown.policies, [{ type: 'Pods', value: 1, periodSeconds: 60 }]);
  });

  it('has a CPU request for the HPA to measure against, and the container contract', () => {
    assertClassifierContainer(run);
  });

  it('serves through a LoadBalancer and exports its address', () => {
    const { service, port } = servicePort(run);
    assert.equal(service.inputs.spec.type, 'LoadBalancer');
    assert.equal(port.port, 80);
    assert.equal(port.targetPort, 'http');
    assert.equal(service.inputs.metadata.annotations?.['pulumi.com/skipAwait'], undefined);
    assert.equal(run.outputs.url, `http://${FAKE_LB_IP}`);
    assert.equal(run.ofType(T.firewall).length, 0, 'no node port to open');
  });

  it('keeps a disruption budget that never blocks a drain', () => {
    assert.deepEqual(run.one(T.pdb).inputs.spec.maxUnavailable, 1);
  });

  it('creates the GKE cluster: destroyable, autoscaled pool, workload identity, Artifact Registry', () => {
    const cluster = run.one(T.gkeCluster).inputs;
    assert.equal(cluster.deletionProtection, false);
    assert.equal(cluster.location, 'us-central1-a');
    assert.equal(cluster.releaseChannel.channel, 'REGULAR');
    assert.equal(cluster.workloadIdentityConfig.workloadPool, 'test-project.svc.id.goog');
    assert.equal(cluster.removeDefaultNodePool, true);
    const pool = run.one(T.nodePool).inputs;
    assert.deepEqual(pool.autoscaling, { minNodeCount: 1, maxNodeCount: 3 });
    assert.equal(pool.nodeConfig.workloadMetadataConfig.mode, 'GKE_METADATA');
    assert.equal(pool.nodeConfig.diskSizeGb, 30);
    assert.equal(run.one(T.registry).inputs.format, 'DOCKER');
    assert.equal(run.one(T.registry).inputs.repositoryId, 'gourmetgram-hpa', 'one repository per stack');
    const image = run.one(T.image).inputs;
    assert.match(
      image.imageName,
      /^us-central1-docker\.pkg\.dev\/test-project\/gourmetgram-hpa\/gourmetgram:latest$/,
    );
    assert.equal(image.build.platform, 'linux/amd64');
    assert.match(image.build.dockerfile, /service[/\\]Dockerfile$/);
  });

  it('exports url, namespace, strategy, image and the secret kubeconfig', () => {
    assertExports(run, 'hpa', 'gourmetgram', true);
  });

  it('stores labels in PostgreSQL in the cluster, protected, its URL given to the classifier from a Secret', () => {
    assertInClusterDatabase(run, { protect: true, namespace: 'gourmetgram' });
    assertDatabaseUrlFromSecret(run, container(run).container);
  });
});
