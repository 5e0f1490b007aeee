// Stack dev (Pulumi.dev.yaml) as committed: the current kubeconfig's cluster and the course's node-0:5000
// registry. Nothing in Google Cloud.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  T,
  assertAppObjects,
  assertClassifierContainer,
  assertExports,
  container,
  envOf,
  servicePort,
} from './expectations';
import { stackUnderTest } from './harness';

describe('stack dev (existing cluster)', () => {
  const run = stackUnderTest('dev');

  it('creates nothing in Google Cloud and uses the ambient kubeconfig', () => {
    assert.deepEqual(
      run.resources.filter((r) => r.type.startsWith('gcp:') || r.type === 'pulumi:providers:gcp'),
      [],
    );
    const provider = run.one(T.k8sProvider).inputs;
    assert.equal(provider.kubeconfig, undefined);
    assert.equal(provider.context, undefined);
  });

  it('builds service/Dockerfile from the repository root and pushes it to node-0:5000', () => {
    const image = run.one(T.image).inputs;
    assert.equal(image.imageName, 'node-0:5000/gourmetgram:latest');
    assert.equal(image.build.platform, 'linux/amd64');
    assert.match(image.build.dockerfile, /service[/\\]Dockerfile$/);
    assert.match(String(run.outputs.image), /^node-0:5000\/gourmetgram@sha256:[0-9a-f]{64}$/);
  });

  it('declares only schema-valid, labelled, namespaced Kubernetes objects', () => {
    assertAppObjects(run, 'gourmetgram');
  });

  it('runs one pod on node port 32000, with the stack file log level', () => {
    assert.equal(container(run).deployment.inputs.spec.replicas, 1);
    assert.equal(servicePort(run).service.inputs.spec.type, 'NodePort');
    assert.equal(servicePort(run).port.nodePort, 32000);
    assert.equal(run.ofType(T.hpa).length, 0);
    assertClassifierContainer(run);
    assert.equal(envOf(container(run).container).LOG_LEVEL, 'debug');
  });

  it('exports a localhost node-port url and no kubeconfig', () => {
    assert.equal(run.outputs.url, 'http://localhost:32000');
    assertExports(run, 'k8s', 'gourmetgram', false);
  });
});
