// `pulumi preview` on a fresh stack: no cluster, no image digest, no load-balancer address yet. The program
// must still declare everything, training and all, without tripping over an unknown value.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { T } from './expectations';
import { runPreview } from './harness';

it('k8s on GKE with training previews every resource while all outputs are unknown', async () => {
  const failures: unknown[] = [];
  process.on('unhandledRejection', (error) => failures.push(error));
  const types = await runPreview('k8s', { gcpProject: 'p', trainingEnabled: true, modelSource: 'volume' });
  assert.deepEqual(failures, []);
  for (const type of [
    T.gkeCluster,
    T.nodePool,
    T.registry,
    T.image,
    T.namespace,
    T.pvc,
    T.job,
    T.deployment,
    T.service,
    T.firewall,
  ]) {
    assert.ok(types.includes(type), `${type} declared in preview`);
  }
});
