import assert from 'node:assert/strict';
import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { defaultModelDir, initBackend, loadClassifier, readMetadata } from '../../model/src/index';

const shipped = path.resolve(__dirname, '..', '..', 'model', 'shipped');

before(async () => {
  await initBackend('wasm');
});

describe('the shipped model', { timeout: 120_000 }, () => {
  it('is the default model folder and describes a clean and an npm head with their backbone digests', async () => {
    assert.equal(path.resolve(defaultModelDir()), shipped);
    const meta = await readMetadata(shipped);
    assert.deepEqual(
      meta.labels.map((l) => l.id),
      [
        'Bread',
        'Dairy-product',
        'Dessert',
        'Egg',
        'Fried-food',
        'Meat',
        'Noodles-Pasta',
        'Rice',
        'Seafood',
        'Soup',
        'Vegetable-Fruit',
      ],
    );
    assert.deepEqual(meta.heads.map((h) => h.backbone.kind).sort(), ['layers', 'nsfwjs']);
    for (const head of meta.heads) {
      const dir = path.join(shipped, head.path);
      const bytes = readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
      assert.ok(
        bytes < 8 * 1024 * 1024,
        `head ${head.id} is small enough to bake into the image (${bytes} bytes)`,
      );
    }
  });

  it('loads offline on the npm backbone and gives 11 probabilities summing to 1', async () => {
    const classifier = await loadClassifier({ modelDir: shipped, backboneUrl: 'none' });
    assert.equal(classifier.info.backbone.fallback, true);
    const size = classifier.input.size;
    const photos = [0, 1].map((k) =>
      Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 7 + k * 50) % 256),
    );
    const probs = await classifier.classify(photos);
    classifier.dispose();
    assert.equal(probs.length, 2);
    for (const p of probs) {
      assert.equal(p.length, 11);
      assert.ok(p.every((v) => v >= 0 && v <= 1));
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    }
  });
});
