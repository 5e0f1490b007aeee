import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadClassifier, loadNetwork, readMetadata } from '../../model/src/index';
import { writeTinyModel } from '../fixtures/model/tiny-network';

let root: string;

function image(size: number, seed: number): Uint8Array {
  const img = new Uint8Array(size * size * 3);
  for (let i = 0; i < img.length; i++) img[i] = (i * 37 + seed * 101 + (i >> 4) * 13) % 256;
  return img;
}

function mirror(rgb: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < 3; c++) out[(y * size + size - 1 - x) * 3 + c] = rgb[(y * size + x) * 3 + c]!;
  return out;
}

const maxDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

before(async () => {
  await initBackend('cpu');
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'classifier-test-'));
});
after(() => fs.rm(root, { recursive: true, force: true }));

describe('loadClassifier', () => {
  it('runs the whole network from the model folder: view bytes in, one probability vector out', async () => {
    const dir = await writeTinyModel(path.join(root, 'plain'), 1, { viewSize: 16, inputSize: 16 });
    const classifier = await loadClassifier({ modelDir: dir });
    assert.deepEqual(classifier.view, { size: 16, crop: 'cover' });
    assert.equal(classifier.info.engine, 'fused');
    assert.equal(classifier.info.inputSize, 16);
    assert.equal(classifier.labels.length, 11);
    const probs = await classifier.classify([image(16, 1), image(16, 2)]);
    assert.equal(probs.length, 2);
    for (const p of probs) {
      assert.equal(p.length, 11);
      assert.ok(Math.abs(p.reduce((s, v) => s + v, 0) - 1) < 1e-5);
    }
    assert.ok(maxDiff(probs[0]!, probs[1]!) > 1e-4, 'different photos, different answers');
    classifier.dispose();
  });

  /** Both engines on the same model folder: each must run as asked, and give the same probabilities. */
  async function assertEnginesAgree(dir: string, images: Uint8Array[]): Promise<void> {
    const fused = await loadClassifier({ modelDir: dir });
    const layers = await loadClassifier({ modelDir: dir, engine: 'layers' });
    assert.equal(fused.info.engine, 'fused');
    assert.equal(layers.info.engine, 'layers');
    const a = await fused.classify(images);
    const b = await layers.classify(images);
    a.forEach((p, i) => assert.ok(maxDiff(p, b[i]!) < 1e-5, `image ${i}: ${maxDiff(p, b[i]!)}`));
    fused.dispose();
    layers.dispose();
  }

  it('the fused engine computes what TF.js layers compute', async () => {
    const dir = await writeTinyModel(path.join(root, 'engines'), 2, { viewSize: 12, inputSize: 24 });
    await assertEnginesAgree(dir, [image(12, 3), image(12, 4), image(12, 5)]);
  });

  it('folds a batch norm into the convolution before it and still computes what TF.js layers compute', async () => {
    const dir = await writeTinyModel(path.join(root, 'batchnorm'), 9, {
      viewSize: 12,
      inputSize: 12,
      batchNorm: true,
    });
    await assertEnginesAgree(dir, [image(12, 8), image(12, 9)]);
  });

  it('runs a squeeze-excite gate (AveragePooling2D, Multiply) and two branches (Concatenate) fused, as TF.js layers do', async () => {
    const dir = await writeTinyModel(path.join(root, 'gate'), 10, {
      viewSize: 12,
      inputSize: 12,
      squeezeExcite: true,
      twoBranch: true,
    });
    await assertEnginesAgree(dir, [image(12, 10), image(12, 11)]);
  });

  it('resizes the view to the network input with half-pixel bilinear sampling, as finetune.py does', async () => {
    const dir = await writeTinyModel(path.join(root, 'resize'), 3, { viewSize: 8, inputSize: 16 });
    const classifier = await loadClassifier({ modelDir: dir });
    const img = image(8, 6);
    const [p] = await classifier.classify([img]);
    const network = await loadNetwork(path.join(dir, 'network'), { engine: 'layers' });
    const sampled = (halfPixelCenters: boolean) =>
      tf.tidy(() => {
        const x = tf.tensor4d(Float32Array.from(img), [1, 8, 8, 3]);
        const r = tf.image.resizeBilinear(x, [16, 16], false, halfPixelCenters);
        return network.probabilities(r.div(127.5).sub(1) as tf.Tensor4D).dataSync() as Float32Array;
      });
    assert.ok(maxDiff(p!, sampled(true)) < 1e-5);
    // TF.js's default (corner-aligned) sampling is another function; the test can tell them apart.
    assert.ok(maxDiff(p!, sampled(false)) > 1e-5);
    network.dispose();
    classifier.dispose();
  });

  it('with test-time flip, answers the mean of the photo and its mirror', async () => {
    const flipDir = await writeTinyModel(path.join(root, 'flip'), 4, {
      viewSize: 10,
      inputSize: 20,
      testTimeFlip: true,
    });
    const plainDir = await writeTinyModel(path.join(root, 'noflip'), 4, { viewSize: 10, inputSize: 20 });
    const flip = await loadClassifier({ modelDir: flipDir });
    const plain = await loadClassifier({ modelDir: plainDir });
    const img = image(10, 7);
    const [f] = await flip.classify([img]);
    const [a, b] = await plain.classify([img, mirror(img, 10)]);
    const mean = a!.map((v, i) => (v + b![i]!) / 2);
    assert.ok(maxDiff(f!, mean) < 1e-6);
    flip.dispose();
    plain.dispose();
  });

  it('holds no tensors across calls and frees everything on dispose', async () => {
    const dir = await writeTinyModel(path.join(root, 'leak'), 5, {
      viewSize: 8,
      inputSize: 16,
      testTimeFlip: true,
    });
    const start = tf.memory().numTensors;
    const classifier = await loadClassifier({ modelDir: dir });
    const loaded = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await classifier.classify(Array.from({ length: 40 }, (_, k) => image(8, k)));
    assert.equal(tf.memory().numTensors, loaded);
    classifier.dispose();
    assert.equal(tf.memory().numTensors, start);
  });

  it('refuses an image of the wrong size with the size it wants', async () => {
    const dir = await writeTinyModel(path.join(root, 'size'), 6, { viewSize: 8, inputSize: 8 });
    const classifier = await loadClassifier({ modelDir: dir });
    await assert.rejects(classifier.classify([new Uint8Array(10)]), /RGB 8×8 \(192\)/);
    classifier.dispose();
  });

  it('falls back to TF.js layers when the graph has a layer the fused engine does not know', async () => {
    const dir = await writeTinyModel(path.join(root, 'odd'), 7, {
      viewSize: 8,
      inputSize: 8,
      extraLayer: true,
    });
    const classifier = await loadClassifier({ modelDir: dir });
    assert.equal(classifier.info.engine, 'layers');
    const [p] = await classifier.classify([image(8, 1)]);
    assert.equal(p!.length, 11);
    classifier.dispose();
  });

  it('says what does not fit: classes, input size, or a network without the pooled softmax tail', async () => {
    const classes = await writeTinyModel(path.join(root, 'classes'), 8, {
      viewSize: 8,
      inputSize: 8,
      classes: 5,
    });
    await assert.rejects(loadClassifier({ modelDir: classes }), /gives 5 outputs for 11 labels/);
    const size = await writeTinyModel(path.join(root, 'insize'), 8, { viewSize: 8, inputSize: 8 });
    const meta = await readMetadata(size);
    await fs.writeFile(
      path.join(size, 'metadata.json'),
      JSON.stringify({ ...meta, network: { ...meta.network, inputSize: 32 } }),
    );
    await assert.rejects(loadClassifier({ modelDir: size }), /input is 8 px but the metadata says 32/);
    const tail = await writeTinyModel(path.join(root, 'tail'), 8, {
      viewSize: 8,
      inputSize: 8,
      noPooling: true,
    });
    await assert.rejects(
      loadClassifier({ modelDir: tail }),
      /GlobalAveragePooling2D followed by a softmax Dense/,
    );
    await assert.rejects(
      loadClassifier({ modelDir: path.join(root, 'nothing') }),
      /No model metadata at .*MODEL_DIR/,
    );
  });
});
