// The InferenceService check the kserve stack tests rely on: it accepts what KServe's CRD allows and refuses
// what the API server would refuse, or silently drop.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InferenceService } from './kserve-schema';

const valid = () => ({
  apiVersion: 'serving.kserve.io/v1beta1',
  kind: 'InferenceService',
  metadata: { name: 'gourmetgram', namespace: 'gourmetgram' },
  spec: {
    predictor: {
      minReplicas: 0,
      maxReplicas: 5,
      scaleMetric: 'concurrency',
      scaleTarget: 2,
      canaryTrafficPercent: 10,
      containers: [
        {
          name: 'kserve-container',
          image: `registry.example.com/gourmetgram@sha256:${'ab'.repeat(32)}`,
          ports: [{ name: 'http1', containerPort: 3000, protocol: 'TCP' }],
          resources: { requests: { cpu: '500m', memory: '384Mi' }, limits: { cpu: 1, memory: '512Mi' } },
          readinessProbe: { httpGet: { path: '/readyz', port: 3000 } },
        },
      ],
    },
  },
});

const validateWith = (mutate: (isvc: ReturnType<typeof valid>) => void) => {
  const isvc = valid();
  mutate(isvc);
  return () => new InferenceService(isvc).validate();
};

describe("InferenceService against KServe's CRD", () => {
  it('accepts a custom predictor with scale-to-zero and a canary', () => {
    assert.doesNotThrow(validateWith(() => {}));
  });

  it('refuses a value of the wrong type', () => {
    assert.throws(
      validateWith((i) => ((i.spec.predictor as Record<string, unknown>).minReplicas = 'zero')),
      /\/spec\/predictor\/minReplicas must be integer/,
    );
  });

  it('refuses a scale metric KServe does not know', () => {
    assert.throws(
      validateWith((i) => (i.spec.predictor.scaleMetric = 'latency')),
      /scaleMetric must be equal to one of the allowed values/,
    );
  });

  it('refuses a misspelt field the API server would drop without a word', () => {
    assert.throws(
      validateWith((i) => Object.assign(i.spec.predictor, { canaryTrafficPrecent: 10 })),
      /must NOT have additional properties/,
    );
  });

  it('refuses a malformed quantity and a container without a name', () => {
    assert.throws(
      validateWith((i) => (i.spec.predictor.containers[0]!.resources.limits.memory = 'half a gig')),
      /resources\/limits\/memory/,
    );
    assert.throws(
      validateWith((i) => delete (i.spec.predictor.containers[0] as { name?: string }).name),
      /must have required property 'name'/,
    );
  });

  it('refuses another kind', () => {
    assert.throws(
      validateWith((i) => (i.kind = 'Deployment')),
      /not a serving\.kserve\.io\/v1beta1/,
    );
  });
});
