// The dev stack with an in-cluster Service and images already pinned by digest:
//   pulumi config set serviceType ClusterIP; pulumi config set image <repo>@sha256:<digest>
//   pulumi config set databaseImage postgres:<tag>@sha256:<digest>
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T, assertValidKubernetesObjects, container, servicePort } from './expectations';
import { stackUnderTest } from './harness';

const PINNED = `registry.example.com/gourmetgram@sha256:${'ab'.repeat(32)}`;
const PINNED_POSTGRES = `postgres:17.6@sha256:${'cd'.repeat(32)}`;

describe('dev stack, ClusterIP and a digest-pinned prebuilt image', () => {
  const run = stackUnderTest('dev', {
    serviceType: 'ClusterIP',
    image: PINNED,
    databaseImage: PINNED_POSTGRES,
    servicePort: 8080,
  });

  it('deploys the given digest as is: no build, no registry lookup', () => {
    assert.equal(run.ofType(T.image).length, 0);
    assert.deepEqual(run.invokes, []);
    assert.equal(container(run).container.image, PINNED);
    assert.equal(run.outputs.image, PINNED);
    assert.equal(run.one(T.statefulSet).inputs.spec.template.spec.containers[0].image, PINNED_POSTGRES);
  });

  it('declares an in-cluster Service with no node port, and its cluster DNS name as url', () => {
    const { service, port } = servicePort(run);
    assert.equal(service.inputs.spec.type, 'ClusterIP');
    assert.equal(port.port, 8080);
    assert.equal(
      port.nodePort,
      undefined,
      'the stack file sets nodePort 32000, which a ClusterIP must not carry',
    );
    assert.equal(run.outputs.url, 'http://gourmetgram.gourmetgram.svc.cluster.local:8080');
    assertValidKubernetesObjects(run);
  });
});
