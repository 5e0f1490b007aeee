// Training in the cluster on the dev stack, with a prebuilt image given by tag:
//   pulumi config set trainingEnabled true; pulumi config set modelSource volume; pulumi config set image ...
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIGEST_REF, T, assertAppObjects, classifierService, container, envOf } from './expectations';
import { allViolations, asPolicyResource } from '../policy/run-policies';
import { stackUnderTest } from './harness';

describe('training Job and model volume (dev stack)', () => {
  const run = stackUnderTest('dev', {
    trainingEnabled: true,
    modelSource: 'volume',
    image: 'ghcr.io/example/gourmetgram:v1',
    trainingImage: 'ghcr.io/example/gourmetgram-train:v1',
    volumeSize: '20Gi',
    trainingDataDir: 'food11',
  });

  it('builds nothing: the prebuilt tags are resolved to their digests', () => {
    assert.equal(run.ofType(T.image).length, 0);
    assert.ok(run.invokes.includes('docker:index/getRegistryImage:getRegistryImage'));
    assert.match(String(run.outputs.image), /^ghcr\.io\/example\/gourmetgram@sha256:[0-9a-f]{64}$/);
  });

  it('creates the claim and a Job that trains into it from the same image', () => {
    const pvc = run.one(T.pvc).inputs;
    assert.deepEqual(pvc.spec.resources.requests, { storage: '20Gi' });
    const job = run.one(T.job).inputs.spec.template.spec;
    assert.equal(job.restartPolicy, 'Never');
    const train = job.containers[0];
    // The training image (PyTorch), never the service image.
    assert.match(train.image, /^ghcr\.io\/example\/gourmetgram-train@sha256:[0-9a-f]{64}$/);
    assert.notEqual(train.image, run.outputs.image);
    assert.match(train.image, DIGEST_REF);
    assert.deepEqual(train.command.slice(0, 6), [
      'node',
      'dist/model/cli/train.js',
      '--data',
      '/data/food11',
      '--out',
      '/models/current',
    ]);
    // Writable places only: the tensor cache on the volume, one PyTorch thread per CPU of the Job.
    assert.equal(train.command[train.command.indexOf('--cache-dir') + 1], '/models/.tensor-cache');
    assert.equal(train.command[train.command.indexOf('--threads') + 1], '1');
    assert.match(
      train.command[train.command.indexOf('--base') + 1],
      /^https:\/\/.*mobilenet_v2.*model\.json$/,
    );
    assert.equal(train.command[train.command.indexOf('--epochs') + 1], '6');
    assert.equal(
      job.volumes.find((v: { name: string }) => v.name === 'store').persistentVolumeClaim.claimName,
      'gourmetgram-models',
    );
    assert.equal(train.securityContext.readOnlyRootFilesystem, true);
    // The Job waits for the user's copy to finish (docs/deploy.md's `.complete` file) instead of failing.
    const wait = job.initContainers[0].command.join(' ');
    assert.ok(wait.includes('"/store/data/food11"') && wait.includes('/.complete'), wait);
    // It mounts the whole volume and makes data/ and models/ as the app user, before any subPath mount.
    assert.deepEqual(
      job.initContainers[0].volumeMounts.find((m: { name: string }) => m.name === 'store'),
      { name: 'store', mountPath: '/store' },
    );
    assert.ok(wait.includes('mkdirSync'), wait);
    assert.deepEqual(
      train.volumeMounts
        .filter((m: { name: string }) => m.name === 'store')
        .map((m: { subPath: string }) => m.subPath),
      ['data', 'models'],
    );
  });

  it('has the classifier read its model from the volume', () => {
    const { pod, container: classifier } = container(run);
    assert.equal(envOf(classifier).MODEL_DIR, '/models/current');
    const mount = classifier.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/models');
    assert.equal(mount.readOnly, true);
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.equal(volume.persistentVolumeClaim.claimName, 'gourmetgram-models');
  });

  it('labels the training objects apart, so the Service never routes to them', () => {
    assertAppObjects(run, 'gourmetgram');
    const serviceSelector = classifierService(run).inputs.spec.selector;
    const jobPodLabels = run.one(T.job).inputs.spec.template.metadata.labels;
    const routed = Object.entries(serviceSelector).every(([k, v]) => jobPodLabels[k] === v);
    assert.equal(routed, false);
  });

  it('passes the policy pack, the Job and its init container included', async () => {
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
  });
});
