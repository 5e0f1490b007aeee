// Stack lb moved to an existing bare cluster (no load-balancer controller), as a user would:
//   pulumi config set cluster existing; pulumi config set registry ...; pulumi config set awaitLoadBalancer false
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { T, assertAppObjects, assertExports, servicePort } from './expectations';
import { FAKE_ASSIGNED_NODE_PORT, stackUnderTest } from './harness';

describe('stack lb on a bare existing cluster', () => {
  const run = stackUnderTest('lb', {
    cluster: 'existing',
    kubeconfig: '~/.kube/course.yaml',
    kubeContext: 'course',
    registry: 'registry.example.com:5000/team/',
    nodeAddress: '192.0.2.4',
    awaitLoadBalancer: false,
    namespace: 'gg-lb',
  });

  it('talks to the given kubeconfig (~ expanded) and context', () => {
    const provider = run.one(T.k8sProvider).inputs;
    assert.equal(provider.kubeconfig, path.join(os.homedir(), '.kube', 'course.yaml'));
    assert.equal(provider.context, 'course');
    assert.equal(run.one(T.image).inputs.imageName, 'registry.example.com:5000/team/gourmetgram:latest');
  });

  it('still asks for a LoadBalancer but does not wait for an address that never comes', () => {
    const { service } = servicePort(run);
    assert.equal(service.inputs.spec.type, 'LoadBalancer');
    assert.equal(service.inputs.metadata.annotations['pulumi.com/skipAwait'], 'true');
  });

  it('exports the node-port url instead', () => {
    assert.equal(run.outputs.url, `http://192.0.2.4:${FAKE_ASSIGNED_NODE_PORT}`);
    assertExports(run, 'lb', 'gg-lb', false);
  });

  it('puts every object in the configured namespace', () => {
    assertAppObjects(run, 'gg-lb');
  });
});
