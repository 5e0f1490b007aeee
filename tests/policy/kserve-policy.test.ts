// The policy pack against the kserve stack under mocks: the InferenceService's predictor is held to the
// same rules as a Deployment's pods.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { PolicyResource } from '@pulumi/policy';
import { digestPinned, nonRoot, probes, requestsAndLimits } from '../../policy/rules';
import { runStack } from '../stacks/harness';
import { violationsOf, asPolicyResource } from './run-policies';

describe('policy pack on a KServe predictor', () => {
  let isvc: PolicyResource;
  const mutated = (
    mutate: (predictorContainer: Record<string, unknown> & PolicyResource['props']) => void,
  ) => {
    const copy = structuredClone(isvc);
    mutate(copy.props.spec.predictor.containers[0]);
    return copy;
  };

  before(async () => {
    const run = await runStack('kserve', { gcpProject: 'test-project' });
    isvc = run.resources
      .map(asPolicyResource)
      .find((r) => r.type === 'kubernetes:serving.kserve.io/v1beta1:InferenceService')!;
  });

  it('flags a predictor without a readiness probe, or probing /test', async () => {
    const broken = mutated((predictorContainer) => {
      delete predictorContainer.readinessProbe;
      predictorContainer.livenessProbe.httpGet.path = '/test';
    });
    assert.deepEqual(await violationsOf(probes, broken), [
      'container "kserve-container" has no readiness probe',
      'container "kserve-container" liveness probe calls /test, which runs an inference',
    ]);
  });

  it('flags a predictor without limits, one that may run as root, and one given by tag', async () => {
    const broken = mutated((predictorContainer) => {
      delete predictorContainer.resources.limits;
      delete predictorContainer.securityContext.runAsNonRoot;
      predictorContainer.image = 'node-0:5000/gourmetgram:latest';
    });
    assert.equal((await violationsOf(requestsAndLimits, broken)).length, 2);
    assert.deepEqual(await violationsOf(nonRoot, broken), [
      'container "kserve-container" may run as root: set runAsNonRoot: true',
    ]);
    assert.equal((await violationsOf(digestPinned, broken)).length, 1);
  });
});
