/**
 * The model in model/shipped as the service loads it: offline (nothing fetched, nothing configured), the same
 * probabilities in TF.js as PyTorch gave when it exported the network, and the photo GET /test classifies
 * answered right.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import {
  defaultModelDir,
  initBackend,
  loadClassifier,
  preprocessPhoto,
  readMetadata,
  type ModelMetadata,
} from '../../model/src/index';

const shipped = path.resolve(__dirname, '..', '..', 'model', 'shipped');
let meta: ModelMetadata;

before(async () => {
  await initBackend('wasm');
  meta = await readMetadata(shipped);
});

describe('the shipped model', () => {
  it('is the default model folder and describes its view, its network and its base', () => {
    assert.equal(defaultModelDir(), shipped);
    assert.equal(meta.labels.length, 11);
    assert.deepEqual(meta.view, { size: 224, crop: 'cover' });
    assert.match(meta.network.architecture, /^mobilenet_v2_/);
    assert.match(meta.base.licence, /Apache-2\.0/);
  });

  it('gives, in TF.js, the probabilities PyTorch gave for the same inputs (max |Δp| ≤ 1e-4)', async () => {
    const reference = JSON.parse(
      await fs.readFile(path.join(shipped, meta.network.path, 'reference.json'), 'utf8'),
    ) as { viewSize: number; inputs: string[]; probabilities: number[][] };
    assert.equal(reference.viewSize, meta.view.size);
    assert.ok(reference.inputs.length >= 4);
    // reference.json holds the network's own output: compare without the test-time flip.
    const classifier = await loadClassifier({ modelDir: shipped, testTimeFlip: false });
    const probs = await classifier.classify(
      reference.inputs.map((b) => new Uint8Array(Buffer.from(b, 'base64'))),
    );
    classifier.dispose();
    let worst = 0;
    probs.forEach((p, i) =>
      reference.probabilities[i]!.forEach((q, c) => (worst = Math.max(worst, Math.abs(q - p[c]!)))),
    );
    assert.ok(worst <= 1e-4, `max |Δp| = ${worst}`);
  });

  it('classifies the photo GET /test serves right, with the service path', async () => {
    const classifier = await loadClassifier();
    const photo = await fs.readFile(
      path.resolve(__dirname, '..', '..', 'service', 'assets', 'test-photo.jpg'),
    );
    const { rgb } = await preprocessPhoto(photo, {
      view: classifier.view,
      maxPixels: 40e6,
      decoder: 'sharp',
    });
    const [p] = await classifier.classify([rgb]);
    classifier.dispose();
    const best = p!.indexOf(Math.max(...p!));
    assert.equal(
      meta.labels[best]!.name,
      'Vegetable/Fruit',
      `probabilities ${[...p!].map((v) => v.toFixed(3))}`,
    );
  });
});
