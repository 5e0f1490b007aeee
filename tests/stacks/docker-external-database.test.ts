// Strategy docker with an existing server (databaseUrl): no PostgreSQL container, volume or network on the host.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertNoDatabaseCreated } from './database-expectations';
import { T } from './expectations';
import { revealed, stackUnderTest } from './harness';

const EXISTING = 'postgres://labels:secret@10.0.0.5:5432/labels';

describe('stack docker with an existing database', () => {
  const run = stackUnderTest('docker', { databaseUrl: EXISTING });

  it('runs the classifier alone, with DATABASE_URL naming the existing server', () => {
    assertNoDatabaseCreated(run);
    const classifier = run.one(T.dockerContainer).inputs;
    assert.ok(revealed(classifier.envs as string[]).includes(`DATABASE_URL=${EXISTING}`));
    assert.equal(classifier.networksAdvanced, undefined);
    assert.equal(run.outputs.databaseHost, '10.0.0.5');
  });
});
