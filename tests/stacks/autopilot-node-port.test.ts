// Stack k8s on GKE Autopilot: the node port is opened on Autopilot's tagged nodes, and the url names a node
// of the pool Autopilot created for the pod.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T } from './expectations';
import { FAKE_NODE_IP, stackUnderTest } from './harness';

describe('stack k8s on GKE Autopilot', () => {
  const run = stackUnderTest('k8s', { gcpProject: 'test-project', gkeMode: 'autopilot' });

  it('opens node port 32000 to the tag Autopilot puts on its nodes', () => {
    const firewall = run.one(T.firewall).inputs;
    assert.deepEqual(firewall.allows, [{ protocol: 'tcp', ports: ['32000'] }]);
    assert.deepEqual(firewall.targetTags, run.one(T.gkeCluster).inputs.nodePoolAutoConfig.networkTags.tags);
  });

  it("exports a node's address from Autopilot's pool", () => {
    assert.ok(run.invokes.includes('gcp:compute/getInstanceGroup:getInstanceGroup'));
    assert.equal(run.outputs.url, `http://${FAKE_NODE_IP}:32000`);
  });
});
