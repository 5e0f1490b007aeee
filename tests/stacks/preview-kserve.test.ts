// `pulumi preview` of the committed kserve stack on a fresh project: no cluster, no KServe, no status yet.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { T } from './expectations';
import { runPreview } from './harness';

it('kserve previews the cluster, the KServe install and the InferenceService while all outputs are unknown', async () => {
  const failures: unknown[] = [];
  process.on('unhandledRejection', (error) => failures.push(error));
  const types = await runPreview('kserve', { gcpProject: 'p' });
  assert.deepEqual(failures, []);
  for (const type of [
    T.gkeCluster,
    T.image,
    T.namespace,
    T.helmRelease,
    T.knativeServing,
    T.inferenceService,
  ]) {
    assert.ok(types.includes(type), `${type} declared in preview`);
  }
});
