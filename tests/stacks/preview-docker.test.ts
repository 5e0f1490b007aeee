// `pulumi preview` of the committed docker stack before anything exists: no digest, no image ID, no ports.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { T } from './expectations';
import { runPreview } from './harness';

it('docker previews the build, the pull and the container while all outputs are unknown', async () => {
  const failures: unknown[] = [];
  process.on('unhandledRejection', (error) => failures.push(error));
  const types = await runPreview('docker');
  assert.deepEqual(failures, []);
  for (const type of [T.image, T.dockerProvider, T.remoteImage, T.dockerContainer]) {
    assert.ok(types.includes(type), `${type} declared in preview`);
  }
});
