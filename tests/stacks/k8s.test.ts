// Stack k8s (Pulumi.k8s.yaml) on the GKE cluster it creates: one pod on node port 32000, like the course.
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
import { FAKE_NODE_IP, stackUnderTest } from './harness';

describe('stack k8s (GKE)', () => {
  const run = stackUnderTest('k8s', { gcpProject: 'test-project' });

  it('declares only schema-valid, labelled, namespaced Kubernetes objects', () => {
    assertAppObjects(run, 'gourmetgram');
  });

  it('runs one replica and no HPA or disruption budget', () => {
    assert.equal(container(run).deployment.inputs.spec.replicas, 1);
    assert.equal(run.ofType(T.hpa).length, 0);
    assert.equal(run.ofType(T.pdb).length, 0, 'a budget on one fixed pod would only block node drains');
    assertClassifierContainer(run);
  });

  it('exposes node port 32000 and opens it in the GKE firewall for the nodes only', () => {
    const { service, port } = servicePort(run);
    assert.equal(service.inputs.spec.type, 'NodePort');
    assert.equal(port.nodePort, 32000);
    const firewall = run.one(T.firewall).inputs;
    assert.deepEqual(firewall.allows, [{ protocol: 'tcp', ports: ['32000'] }]);
    assert.deepEqual(firewall.sourceRanges, ['0.0.0.0/0']);
    const nodeTags = run.one(T.nodePool).inputs.nodeConfig.tags;
    assert.deepEqual(firewall.targetTags, nodeTags);
  });

  it("exports a node's external address with the node port", () => {
    assert.equal(run.outputs.url, `http://${FAKE_NODE_IP}:32000`);
    assert.ok(run.invokes.includes('gcp:compute/getInstance:getInstance'));
    assertExports(run, 'k8s', 'gourmetgram', true);
  });

  it('stores labels in PostgreSQL in the cluster, protected, its URL given to the classifier from a Secret', () => {
    assertInClusterDatabase(run, { protect: true, namespace: 'gourmetgram' });
    assertDatabaseUrlFromSecret(run, container(run).container);
  });
});
