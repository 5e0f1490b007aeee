// An existing PostgreSQL server (databaseUrl, a secret) on the dev stack's cluster: no database is created, and
// the classifier reads the given URL from the Secret like any other.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assertDatabaseOutputs,
  assertDatabaseUrlFromSecret,
  assertNoDatabaseCreated,
  databaseSecret,
} from './database-expectations';
import { T, assertAppObjects, container, databaseObjects } from './expectations';
import { stackUnderTest } from './harness';
import { allViolations, asPolicyResource } from '../policy/run-policies';

const EXISTING = 'postgres://labels:pa%40ss@db.example.internal:5432/labels';

describe('stack dev with an existing database (databaseUrl)', () => {
  const run = stackUnderTest('dev', { databaseUrl: EXISTING });

  it('creates no database: no StatefulSet, Service, password or volume of its own', () => {
    assertNoDatabaseCreated(run);
    assertAppObjects(run, 'gourmetgram');
  });

  it('puts the given URL, as a secret, in the Secret the classifier reads DATABASE_URL from', () => {
    assert.deepEqual(databaseSecret(run), { url: EXISTING });
    assertDatabaseUrlFromSecret(run, container(run).container);
    assert.ok(!JSON.stringify(container(run).deployment.inputs).includes('pa%40ss'));
  });

  it('exports the host, never the URL; nothing is protected, since nothing holds data here', () => {
    assertDatabaseOutputs(run, 'db.example.internal');
    assert.ok(!JSON.stringify(run.outputs).includes('pa%40ss'));
    assert.equal(databaseObjects(run, T.secret)[0]!.protect, false);
  });

  it('passes the policy pack', async () => {
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
  });
});
