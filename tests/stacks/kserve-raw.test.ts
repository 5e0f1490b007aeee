// Stack kserve moved to a cluster that already runs KServe, in RawDeployment mode (no Knative), with the
// model trained into the volume:
//   pulumi config set cluster existing; pulumi config set registry ...; pulumi config set kserveInstall false
//   pulumi config set kserveMode RawDeployment; pulumi config set kserveMinReplicas 1
//   pulumi config set trainingEnabled true; pulumi config set modelSource volume
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { T, assertAppObjects, assertProbes, envOf, platformObjects } from './expectations';
import { allViolations, asPolicyResource } from '../policy/run-policies';
import { fakeInferenceServiceUrl, stackUnderTest } from './harness';

describe('stack kserve, RawDeployment on an existing cluster with KServe', () => {
  const run = stackUnderTest('kserve', {
    cluster: 'existing',
    registry: 'registry.example.com:5000',
    kserveInstall: false,
    kserveMode: 'RawDeployment',
    kserveMinReplicas: 1,
    kserveScaleMetric: '',
    namespace: 'gg-kserve',
    trainingEnabled: true,
    modelSource: 'volume',
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let predictor: any;
  before(() => {
    predictor = run.one(T.inferenceService).inputs.spec.predictor;
  });

  it('installs nothing: the cluster has KServe', () => {
    assert.deepEqual(platformObjects(run), []);
    assert.equal(run.ofType(T.helmRelease).length, 0);
  });

  it('asks KServe for a Deployment with an HPA on CPU, like the hpa strategy', () => {
    const isvc = run.one(T.inferenceService).inputs;
    assert.equal(isvc.metadata.annotations['serving.kserve.io/deploymentMode'], 'RawDeployment');
    assert.equal(predictor.minReplicas, 1);
    assert.equal(predictor.scaleMetric, 'cpu');
    assert.equal(predictor.scaleTarget, 70);
  });

  it('keeps the whole pod hardening, startup probe, pre-stop pause and grace period', () => {
    const predictorContainer = predictor.containers[0];
    // A RawDeployment pod is a plain Deployment's: probed on the internal port, by number.
    assertProbes(predictorContainer, 9464, true);
    assert.ok(predictorContainer.lifecycle.preStop);
    assert.equal(predictorContainer.securityContext.privileged, false);
    assert.equal(predictor.securityContext.runAsNonRoot, true);
    assert.ok(predictor.terminationGracePeriodSeconds > 20);
  });

  it('reads the trained model from the volume, after the training Job', () => {
    const predictorContainer = predictor.containers[0];
    assert.equal(envOf(predictorContainer).MODEL_DIR, '/models/current');
    const mount = predictorContainer.volumeMounts.find(
      (m: { mountPath: string }) => m.mountPath === '/models',
    );
    const volume = predictor.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.equal(volume.persistentVolumeClaim.claimName, 'gourmetgram-models');
    assert.equal(run.ofType(T.job).length, 1);
  });

  it('is valid, labelled, namespaced, passes the policy pack, and exports the status url', async () => {
    assertAppObjects(run, 'gg-kserve');
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
    assert.equal(run.outputs.url, fakeInferenceServiceUrl('gourmetgram', 'gg-kserve'));
    assert.equal(run.outputs.kubeconfig, undefined);
  });
});
