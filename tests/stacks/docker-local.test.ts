// Stack docker on this machine's own engine, another port:
//   pulumi config set dockerHost ''; pulumi config set dockerPort 8080
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T } from './expectations';
import { stackUnderTest } from './harness';

describe('stack docker on the local engine', () => {
  const run = stackUnderTest('docker', { dockerHost: '', dockerPort: 8080 });

  it('leaves the host to DOCKER_HOST or the local socket, and exports a localhost url', () => {
    assert.equal(run.one(T.dockerProvider).inputs.host, undefined);
    const classifier = run.ofType(T.dockerContainer).find((c) => c.name === 'classifier')!;
    assert.deepEqual(classifier.inputs.ports, [{ internal: 3000, external: 8080, protocol: 'tcp' }]);
    assert.equal(run.outputs.url, 'http://localhost:8080');
  });
});
