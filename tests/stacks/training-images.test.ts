// Training in the cluster with both images built by the stack (the dev stack's registry):
//   pulumi config set trainingEnabled true; pulumi config set modelSource volume; pulumi config set trainingEpochs 3
// (one stack run per file: the program is imported once per process)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T } from './expectations';
import { stackUnderTest } from './harness';

describe('training Job with images built by the stack (dev stack, a registry)', () => {
  const run = stackUnderTest('dev', {
    trainingEnabled: true,
    modelSource: 'volume',
    registry: 'node-0:5000',
    trainingEpochs: 3,
  });

  it('builds the training image from model/Dockerfile beside the service image, into the same registry', () => {
    const images = run.ofType(T.image).map((r) => r.inputs);
    assert.equal(images.length, 2);
    const service = images.find((i) => /service[/\\]Dockerfile$/.test(i.build.dockerfile));
    const training = images.find((i) => /model[/\\]Dockerfile$/.test(i.build.dockerfile));
    assert.equal(service?.imageName, 'node-0:5000/gourmetgram:latest');
    assert.equal(training?.imageName, 'node-0:5000/gourmetgram-train:latest');
    const train = run.one(T.job).inputs.spec.template.spec.containers[0];
    assert.notEqual(train.image, run.outputs.image, 'the Job runs the training image');
    assert.equal(train.command[train.command.indexOf('--epochs') + 1], '3');
  });
});
