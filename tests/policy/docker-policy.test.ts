// The policy pack against the docker stack under mocks: its container passes, and each hardening the pods
// have fails when the container loses it.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { PolicyResource } from '@pulumi/policy';
import { digestPinned, dockerContainerHardened } from '../../policy/rules';
import { runStack } from '../stacks/harness';
import { allViolations, asPolicyResource, violationsOf } from './run-policies';

const CONTAINER = 'docker:index/container:Container';
const REMOTE_IMAGE = 'docker:index/remoteImage:RemoteImage';

describe('policy pack on a Docker host', () => {
  let resources: PolicyResource[];
  const mutated = (type: string, mutate: (props: PolicyResource['props']) => void): PolicyResource => {
    const copy = structuredClone(resources.find((r) => r.type === type && r.name === 'classifier')!);
    mutate(copy.props);
    return copy;
  };

  before(async () => {
    resources = (await runStack('docker')).resources.map(asPolicyResource);
  });

  it('passes everything the docker stack declares', async () => {
    assert.deepEqual(await allViolations(resources), []);
  });

  it('flags a container without limits or health check', async () => {
    const broken = mutated(CONTAINER, (p) => {
      delete p.cpus;
      delete p.memory;
      delete p.healthcheck;
    });
    assert.deepEqual(await violationsOf(dockerContainerHardened, broken), [
      'container "gourmetgram-docker" has no CPU limit (cpus)',
      'container "gourmetgram-docker" has no memory limit (memory)',
      'container "gourmetgram-docker" has no health check',
    ]);
  });

  it('flags a health check on /test, a root user and a container that may gain privileges', async () => {
    const broken = mutated(CONTAINER, (p) => {
      p.healthcheck.tests = ['CMD', 'node', '-e', "fetch('http://127.0.0.1:3000/test')"];
      p.user = '0:0';
      p.securityOpts = [];
    });
    assert.deepEqual(await violationsOf(dockerContainerHardened, broken), [
      'container "gourmetgram-docker" health check calls /test, which runs an inference',
      'container "gourmetgram-docker" may run as root: set user to a non-root uid:gid',
      'container "gourmetgram-docker" allows privilege escalation: add no-new-privileges:true to securityOpts',
    ]);
    const unset = mutated(CONTAINER, (p) => delete p.user);
    assert.equal(
      (await violationsOf(dockerContainerHardened, unset)).length,
      1,
      "the image's user may be root",
    );
  });

  it('flags an image pulled onto the host by tag', async () => {
    const tagged = mutated(REMOTE_IMAGE, (p) => (p.name = 'node-0:5000/gourmetgram:latest'));
    assert.deepEqual(await violationsOf(digestPinned, tagged), [
      'image "node-0:5000/gourmetgram:latest" pulled onto the Docker host is not pinned by digest',
    ]);
  });
});
