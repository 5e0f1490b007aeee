// Stack lb (Pulumi.lb.yaml) on the GKE cluster it creates: five fixed pods behind a load balancer.
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

describe('stack lb (GKE)', () => {
  // The project as Google's examples set it, gcp:project, instead of gcpProject.
  const run = stackUnderTest('lb', {}, { 'gcp:project': 'test-project' });

  it('declares only schema-valid, labelled, namespaced Kubernetes objects', () => {
    assertAppObjects(run, 'gourmetgram');
  });

  it('runs five fixed replicas, no HPA, and a budget of one pod down at a time', () => {
    assert.equal(container(run).deployment.inputs.spec.replicas, 5);
    assert.equal(run.ofType(T.hpa).length, 0);
    const pdb = run.one(T.pdb).inputs.spec;
    assert.equal(pdb.maxUnavailable, 1);
    assert.deepEqual(pdb.selector.matchLabels, container(run).deployment.inputs.spec.selector.matchLabels);
    assertClassifierContainer(run);
  });

  it('spreads the pods over nodes', () => {
    const spread = container(run).pod.topologySpreadConstraints;
    assert.equal(spread[0].topologyKey, 'kubernetes.io/hostname');
  });

  it('serves through a LoadBalancer on port 80 and exports its IP', () => {
    const { service, port } = servicePort(run);
    assert.equal(service.inputs.spec.type, 'LoadBalancer');
    assert.equal(port.port, 80);
    assert.equal(port.nodePort, undefined, 'Kubernetes picks the node port, so stacks can share a cluster');
    assert.equal(run.outputs.url, `http://${FAKE_LB_IP}`);
    assert.equal(run.ofType(T.firewall).length, 0);
  });

  it('starts the node pool with the two nodes five pods need', () => {
    const pool = run.one(T.nodePool).inputs;
    assert.equal(pool.initialNodeCount, 2);
    assert.deepEqual(pool.autoscaling, { minNodeCount: 1, maxNodeCount: 3 });
  });

  it('takes the project from gcp:project when gcpProject is empty', () => {
    assert.equal(
      run.one(T.gkeCluster).inputs.workloadIdentityConfig.workloadPool,
      'test-project.svc.id.goog',
    );
    assert.equal(run.one('pulumi:providers:gcp').inputs.project, 'test-project');
  });

  it('exports url, namespace, strategy, image and the secret kubeconfig', () => {
    assertExports(run, 'lb', 'gourmetgram', true);
  });

  it('stores labels in PostgreSQL in the cluster, protected, its URL given to the classifier from a Secret', () => {
    assertInClusterDatabase(run, { protect: true, namespace: 'gourmetgram' });
    assertDatabaseUrlFromSecret(run, container(run).container);
  });
});
