// databaseProtect false on the dev stack: `pulumi destroy` may take the database, its volume and its password.
// The service's labelling settings are set too, and reach the container as its environment.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertDatabaseUrlFromSecret, assertInClusterDatabase } from './database-expectations';
import { container, envOf } from './expectations';
import { stackUnderTest } from './harness';

describe('stack dev with databaseProtect false', () => {
  const run = stackUnderTest('dev', {
    databaseProtect: false,
    labelSampleRate: '0.25',
    labelRetentionDays: '30',
  });

  it('protects nothing, and the StatefulSet deletes its volume claim with it', () => {
    assertInClusterDatabase(run, { protect: false, namespace: 'gourmetgram' });
    assert.deepEqual(
      run.resources.filter((r) => r.protect).map((r) => `${r.type}::${r.name}`),
      [],
    );
    assertDatabaseUrlFromSecret(run, container(run).container);
  });

  it('passes LABEL_SAMPLE_RATE and LABEL_RETENTION_DAYS when set (the service keeps its defaults otherwise)', () => {
    const env = envOf(container(run).container);
    assert.equal(env.LABEL_SAMPLE_RATE, '0.25');
    assert.equal(env.LABEL_RETENTION_DAYS, '30');
  });
});
