// databaseServer cloudsql on the k8s stack's GKE cluster: a Cloud SQL instance on a private IP in the cluster's
// network, instead of PostgreSQL in the cluster; the classifier reads the same Secret.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  assertDatabaseOutputs,
  assertDatabaseUrlFromSecret,
  assertGeneratedPassword,
  databaseSecret,
} from './database-expectations';
import { T, assertAppObjects, container, databaseObjects } from './expectations';
import { FAKE_CLOUD_SQL_IP, FAKE_DATABASE_PASSWORD, stackUnderTest, type RecordedResource } from './harness';
import { allViolations, asPolicyResource } from '../policy/run-policies';

describe('stack k8s with databaseServer cloudsql', () => {
  const run = stackUnderTest('k8s', { gcpProject: 'test-project', databaseServer: 'cloudsql' });
  let instance: RecordedResource;
  before(() => {
    instance = run.one(T.sqlInstance);
  });

  it('runs no PostgreSQL in the cluster', () => {
    assert.deepEqual(run.ofType(T.statefulSet), []);
    assert.deepEqual(databaseObjects(run, T.service), []);
    assertAppObjects(run, 'gourmetgram');
  });

  it('creates a PostgreSQL instance with a private IP only, peered with the cluster network, backed up', () => {
    const settings = instance.inputs.settings;
    assert.equal(instance.inputs.databaseVersion, 'POSTGRES_17');
    assert.equal(settings.tier, 'db-f1-micro');
    assert.equal(settings.edition, 'ENTERPRISE', 'shared-core tiers exist in Enterprise only');
    assert.equal(settings.ipConfiguration.ipv4Enabled, false, 'no public address');
    assert.equal(settings.ipConfiguration.privateNetwork, 'projects/test-project/global/networks/default');
    assert.equal(settings.backupConfiguration.enabled, true);
    const range = run.one('gcp:compute/globalAddress:GlobalAddress').inputs;
    assert.equal(range.purpose, 'VPC_PEERING');
    const peering = run.one('gcp:servicenetworking/connection:Connection').inputs;
    assert.equal(peering.network, settings.ipConfiguration.privateNetwork);
    assert.equal(peering.deletionPolicy, 'ABANDON', 'the network keeps its peering for other instances');
    assert.equal(run.one(T.sqlDatabase).inputs.name, 'gourmetgram');
    assert.equal(run.one(T.sqlUser).inputs.name, 'gourmetgram');
  });

  it('protects the instance, its database, its user and the password, in Pulumi and in the provider', () => {
    for (const type of [T.sqlInstance, T.sqlDatabase, T.sqlUser])
      assert.equal(run.one(type).protect, true, type);
    assert.equal(instance.inputs.deletionProtection, true);
    assert.equal(instance.inputs.settings.deletionProtectionEnabled, true);
    assertGeneratedPassword(run, true);
  });

  it("gives the classifier the instance's private IP in DATABASE_URL, from the Secret", () => {
    assert.equal(
      databaseSecret(run).url,
      `postgres://gourmetgram:${FAKE_DATABASE_PASSWORD}@${FAKE_CLOUD_SQL_IP}:5432/gourmetgram`,
    );
    assertDatabaseUrlFromSecret(run, container(run).container);
    assertDatabaseOutputs(run, FAKE_CLOUD_SQL_IP);
  });

  it('passes the policy pack', async () => {
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
  });
});
