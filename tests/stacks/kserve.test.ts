// Stack kserve (Pulumi.kserve.yaml) on the GKE cluster it creates, KServe installed by the stack: the
// classifier as a Serverless InferenceService that scales to zero.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { assertDatabaseUrlFromSecret, assertInClusterDatabase } from './database-expectations';
import {
  DEFAULT_RESOURCES,
  T,
  assertAppObjects,
  assertClassifierEnv,
  assertExports,
  assertProbes,
  assertValidPlatformObjects,
  classifierObjects,
  envOf,
  platformObjects,
} from './expectations';
import { allViolations, asPolicyResource } from '../policy/run-policies';
import { fakeInferenceServiceUrl, stackUnderTest } from './harness';

describe('stack kserve (GKE, Serverless, KServe installed)', () => {
  const run = stackUnderTest('kserve', { gcpProject: 'test-project' });
  // Loose: the InferenceService's inputs as the SDK serialised them.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let isvc: any;
  before(() => {
    isvc = run.one(T.inferenceService).inputs;
  });

  it("declares an InferenceService valid against KServe's CRD, labelled, in the namespace", () => {
    assertAppObjects(run, 'gourmetgram');
    assert.equal(isvc.metadata.annotations['serving.kserve.io/deploymentMode'], 'Serverless');
    assert.equal(isvc.metadata.annotations['pulumi.com/waitFor'], 'condition=Ready');
  });

  it('declares no Deployment, Service or HPA of its own: KServe makes them', () => {
    for (const type of [T.deployment, T.service, T.hpa, T.pdb]) {
      assert.equal(classifierObjects(run, type).length, 0, type);
    }
  });

  it('scales to zero when idle, and up to five pods on requests in flight', () => {
    const predictor = isvc.spec.predictor;
    assert.equal(predictor.minReplicas, 0);
    assert.equal(predictor.maxReplicas, 5);
    assert.equal(predictor.scaleMetric, 'concurrency');
    assert.equal(predictor.scaleTarget, 2);
    assert.equal(predictor.canaryTrafficPercent, undefined, 'no canary: the latest revision takes it all');
  });

  it('runs the same image as the predictor container, with the probes and environment of every pod', () => {
    const predictor = isvc.spec.predictor;
    assert.equal(predictor.containers.length, 1);
    const predictorContainer = predictor.containers[0];
    assert.equal(predictorContainer.name, 'kserve-container');
    assert.equal(predictorContainer.image, run.outputs.image);
    assert.deepEqual(predictorContainer.ports, [{ name: 'http1', containerPort: 3000, protocol: 'TCP' }]);
    assert.deepEqual(predictorContainer.resources, DEFAULT_RESOURCES);
    // Knative takes probes on the container port's number and has no startup probe.
    assertProbes(predictorContainer, 3000, false);
    assertClassifierEnv(envOf(predictorContainer), '1');
    assert.deepEqual(predictor.labels, isvc.metadata.labels, 'the pods carry the labels the monitor selects');
  });

  it("keeps the pods' hardening in the fields Knative admits", () => {
    const predictor = isvc.spec.predictor;
    const predictorContainer = predictor.containers[0];
    assert.deepEqual(predictorContainer.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(predictorContainer.lifecycle, undefined, 'Knative refuses lifecycle hooks');
    for (const field of ['securityContext', 'terminationGracePeriodSeconds']) {
      assert.equal(predictor[field], undefined, `Knative refuses a pod-level ${field}`);
    }
    assert.equal(predictor.automountServiceAccountToken, false);
    const tmp = predictorContainer.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
    assert.ok(predictor.volumes.find((v: { name: string }) => v.name === tmp.name).emptyDir);
  });

  it('installs cert-manager, Knative Serving with Kourier and KServe from their charts', () => {
    const releases = run.ofType(T.helmRelease).map((r) => r.inputs);
    assert.deepEqual(releases.map((r) => r.name).sort(), [
      'cert-manager',
      'knative-operator',
      'kserve',
      'kserve-crd',
    ]);
    const release = (name: string) => {
      const found = releases.find((r) => r.name === name);
      assert.ok(found, `release ${name}`);
      return found;
    };
    const kserve = release('kserve');
    assert.equal(kserve.chart, 'oci://ghcr.io/kserve/charts/kserve-resources');
    assert.equal(kserve.version, 'v0.20.0');
    assert.equal(kserve.values.kserve.controller.deploymentMode, 'Serverless');
    assert.equal(release('kserve-crd').version, 'v0.20.0');
    assert.equal(release('cert-manager').values.crds.enabled, true);
    const serving = run.one(T.knativeServing).inputs;
    assert.equal(serving.spec.ingress.kourier.enabled, true);
    assert.ok(platformObjects(run).length >= 6);
    assertValidPlatformObjects(run);
    // The platform goes to the stack's cluster too, through the same provider as the app.
    const providers = new Set(platformObjects(run).map((r) => r.provider));
    assert.deepEqual([...providers], [run.one(T.inferenceService).provider]);
  });

  it("exports the url from the InferenceService's status", () => {
    assert.equal(run.outputs.url, fakeInferenceServiceUrl('gourmetgram', 'gourmetgram'));
    assertExports(run, 'kserve', 'gourmetgram', true);
  });

  it('gives the predictor the same DATABASE_URL Secret, of PostgreSQL in the cluster', () => {
    assertInClusterDatabase(run, { protect: true, namespace: 'gourmetgram' });
    assertDatabaseUrlFromSecret(run, isvc.spec.predictor.containers[0]);
  });

  it('passes the policy pack, predictor included', async () => {
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
  });
});
