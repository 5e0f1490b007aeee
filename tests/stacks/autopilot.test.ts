// Stack hpa on GKE Autopilot: Google runs the nodes and bills the pods' requests, so an hpa stack scaled
// back to one pod costs one pod.
//   pulumi config set gkeMode autopilot
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T, assertAppObjects, assertClassifierContainer, assertExports } from './expectations';
import { allViolations, asPolicyResource } from '../policy/run-policies';
import { FAKE_LB_IP, stackUnderTest } from './harness';

describe('stack hpa on GKE Autopilot', () => {
  const run = stackUnderTest('hpa', { gcpProject: 'test-project', gkeMode: 'autopilot' });

  it('creates a regional Autopilot cluster and no node pool of its own', () => {
    const cluster = run.one(T.gkeCluster).inputs;
    assert.equal(cluster.enableAutopilot, true);
    assert.equal(cluster.location, 'us-central1', 'Autopilot clusters are regional');
    assert.equal(cluster.deletionProtection, false, 'pulumi destroy can delete it');
    assert.equal(cluster.removeDefaultNodePool, undefined);
    assert.equal(run.ofType(T.nodePool).length, 0);
  });

  it("runs Autopilot's nodes as the stack's node account, tagged like Standard nodes", () => {
    const cluster = run.one(T.gkeCluster).inputs;
    const account = run.one('gcp:serviceaccount/account:Account').inputs;
    assert.equal(
      cluster.clusterAutoscaling.autoProvisioningDefaults.serviceAccount,
      `${account.accountId}@test-project.iam.gserviceaccount.com`,
    );
    assert.deepEqual(cluster.nodePoolAutoConfig.networkTags.tags, ['gourmetgram-hpa-nodes']);
  });

  it('deploys the same objects as on Standard: one to five pods behind a load balancer', () => {
    assertAppObjects(run, 'gourmetgram');
    assert.equal(run.one(T.hpa).inputs.spec.minReplicas, 1);
    assertClassifierContainer(run);
    assert.equal(run.outputs.url, `http://${FAKE_LB_IP}`);
    assertExports(run, 'hpa', 'gourmetgram', true);
  });

  it('passes the policy pack', async () => {
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
  });
});
