import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {
  defaultModelDir,
  FOOD11_LABELS,
  initBackend,
  loadBackbone,
  loadClassifier,
  METADATA_FILE,
  NPM_BACKBONE,
  readMetadata,
  saveLayersModel,
  writeMetadata,
  type BackboneSpec,
  type HeadEntry,
  type LoadOptions,
  type ModelMetadataInput,
} from '../../model/src/index';
import { closeServer, serveDir, TINY_SIZE, tinyFunctionalBackbone } from '../fixtures/model/tiny-backbone';
import { mirrorRows } from '../../model/train/decode';

// The npm head is built at a small input so the test stays quick; the spec records the size, as a real one does.
const NPM_SPEC: BackboneSpec = { ...NPM_BACKBONE, inputSize: 64 };
const cleanSpec = (source: string): BackboneSpec => ({
  id: 'tiny-clean',
  source,
  kind: 'layers',
  layers: ['block_1_project_BN', 'out_relu'],
  inputSize: TINY_SIZE,
  scaling: '[-1,1]',
});

let root: string;
let backboneUrl: string; // file:// URL of the clean backbone
let otherBackboneUrl: string;
let modelDir: string;
let cleanEntry: HeadEntry;
let npmEntry: HeadEntry;
let meta: ModelMetadataInput;

async function makeHead(dir: string, featureDim: number, classes: number, seed: number): Promise<void> {
  const head = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [featureDim],
        units: classes,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotNormal({ seed }),
      }),
    ],
  });
  await saveLayersModel(head, dir);
  head.dispose();
}

async function modelWith(name: string, heads: HeadEntry[], extra: Partial<ModelMetadataInput> = {}) {
  const dir = path.join(root, name);
  await fs.cp(modelDir, dir, { recursive: true });
  await writeMetadata(dir, { ...meta, ...extra, heads });
  return dir;
}

function grey(size: number, value: number): Uint8Array {
  return new Uint8Array(size * size * 3).fill(value);
}

function gradient(size: number): Uint8Array {
  return Uint8Array.from({ length: size * size * 3 }, (_, i) => (Math.floor(i / 3) % size) * 7);
}

const quiet: LoadOptions['log'] = () => {};

before(async () => {
  await initBackend('cpu');
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'classifier-test-'));
  const net = tinyFunctionalBackbone(1);
  await saveLayersModel(net, path.join(root, 'backbone'));
  net.dispose();
  const other = tinyFunctionalBackbone(7);
  await saveLayersModel(other, path.join(root, 'other-backbone'));
  other.dispose();
  backboneUrl = pathToFileURL(path.join(root, 'backbone', 'model.json')).href;
  otherBackboneUrl = pathToFileURL(path.join(root, 'other-backbone', 'model.json')).href;

  modelDir = path.join(root, 'model');
  const clean = await loadBackbone(cleanSpec(backboneUrl));
  const npm = await loadBackbone(NPM_SPEC);
  await makeHead(path.join(modelDir, 'heads', 'clean'), clean.featureDim, 11, 1);
  await makeHead(path.join(modelDir, 'heads', 'npm'), npm.featureDim, 11, 2);
  cleanEntry = {
    id: 'clean',
    path: 'heads/clean',
    backbone: { ...cleanSpec(backboneUrl), digest: clean.digest, featureDim: clean.featureDim },
    testTimeFlip: false,
    accuracy: {},
  };
  npmEntry = {
    id: 'npm',
    path: 'heads/npm',
    backbone: { ...NPM_SPEC, digest: npm.digest, featureDim: npm.featureDim },
    testTimeFlip: false,
    accuracy: {},
  };
  clean.dispose();
  npm.dispose();
  meta = {
    schemaVersion: 1,
    name: 'test-food11',
    version: '0.0.1',
    labels: [...FOOD11_LABELS],
    input: { resize: 'cover' },
    heads: [cleanEntry, npmEntry],
  };
  await writeMetadata(modelDir, meta);
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('loadClassifier', () => {
  it('runs the clean head on its backbone: 11 probabilities summing to 1 per image, no tensor leaks', async () => {
    const c = await loadClassifier({ modelDir, backboneUrl, log: quiet });
    assert.equal(c.info.head, 'clean');
    assert.equal(c.info.backbone.fallback, false);
    assert.equal(c.info.backbone.digest, cleanEntry.backbone.digest);
    assert.deepEqual(c.input, { size: TINY_SIZE, resize: 'cover' });
    assert.deepEqual(
      c.labels.map((l) => l.id),
      FOOD11_LABELS.map((l) => l.id),
    );
    const images = [grey(TINY_SIZE, 30), grey(TINY_SIZE, 220), gradient(TINY_SIZE)];
    const first = await c.classify(images);
    const tensors = tf.memory().numTensors;
    const second = await c.classify(images);
    assert.equal(tf.memory().numTensors, tensors);
    assert.deepEqual(second, first);
    assert.equal(first.length, 3);
    for (const p of first) {
      assert.equal(p.length, 11);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
      assert.ok(p.every((v) => v >= 0));
    }
    assert.notDeepEqual(first[0], first[1]);
    // Batched and one-by-one give the same answer.
    const single = await c.classify([images[2] as Uint8Array]);
    assert.ok(
      (single[0] as Float32Array).every((v, i) => Math.abs(v - (first[2] as Float32Array)[i]!) < 1e-5),
    );
    await assert.rejects(c.classify([grey(TINY_SIZE + 2, 0)]), /takes RGB 32×32/);
    c.dispose();
    assert.equal(tf.memory().numTensors, 0);
  });

  it("uses the npm head directly for backboneUrl 'none' and says it is the fallback", async () => {
    const logs: string[] = [];
    const c = await loadClassifier({ modelDir, backboneUrl: 'none', log: (m) => logs.push(m) });
    assert.equal(c.info.head, 'npm');
    assert.equal(c.info.backbone.fallback, true);
    assert.equal(c.info.backbone.id, NPM_BACKBONE.id);
    assert.equal(c.input.size, NPM_SPEC.inputSize);
    const [p] = await c.classify([grey(c.input.size, 128)]);
    assert.equal(p?.length, 11);
    assert.ok(Math.abs((p as Float32Array).reduce((a, b) => a + b, 0) - 1) < 1e-4);
    assert.ok(logs.some((m) => /npm-shipped backbone/.test(m)));
    c.dispose();
  });

  it('falls back from an unreachable URL only where allowed', async () => {
    const { url, server } = await serveDir(root);
    await closeServer(server);
    const unreachable = `${url}/model.json`;
    const logs: string[] = [];
    const c = await loadClassifier({
      modelDir,
      backboneUrl: unreachable,
      backboneFallback: true,
      log: (m) => logs.push(m),
    });
    assert.equal(c.info.head, 'npm');
    assert.ok(logs.some((m) => /falling back/.test(m)));
    c.dispose();
    await assert.rejects(
      loadClassifier({ modelDir, backboneUrl: unreachable, backboneFallback: false, log: quiet }),
      (err: Error) => err.message.includes(unreachable) && /BACKBONE_FALLBACK/.test(err.message),
    );
  });

  it('never runs a head on another backbone: refused, or the fallback when allowed', async () => {
    await assert.rejects(
      loadClassifier({ modelDir, backboneUrl: otherBackboneUrl, backboneFallback: false, log: quiet }),
      /different model/,
    );
    const c = await loadClassifier({
      modelDir,
      backboneUrl: otherBackboneUrl,
      backboneFallback: true,
      log: quiet,
    });
    assert.equal(c.info.head, 'npm');
    c.dispose();
  });

  it('refuses a head whose recorded digest is not its backbone’s, even for the npm backbone', async () => {
    const dir = await modelWith('wrong-npm-digest', [
      { ...npmEntry, backbone: { ...npmEntry.backbone, digest: cleanEntry.backbone.digest } },
    ]);
    await assert.rejects(
      loadClassifier({ modelDir: dir, backboneUrl: 'none', log: quiet }),
      /different model/,
    );
  });

  it('loads the clean backbone over http and caches it', async () => {
    const { url, server } = await serveDir(path.join(root, 'backbone'));
    const cacheDir = path.join(root, 'cache');
    try {
      const c = await loadClassifier({
        modelDir,
        backboneUrl: `${url}/model.json`,
        backboneCacheDir: cacheDir,
      });
      assert.equal(c.info.head, 'clean');
      c.dispose();
    } finally {
      await closeServer(server);
    }
    const again = await loadClassifier({
      modelDir,
      backboneUrl: `${url}/model.json`,
      backboneCacheDir: cacheDir,
    });
    assert.equal(again.info.head, 'clean');
    again.dispose();
  });

  it('averages with the mirrored photo when the head asks for test-time flips', async () => {
    const dir = await modelWith('flip', [{ ...cleanEntry, testTimeFlip: true }]);
    const plain = await loadClassifier({ modelDir, backboneUrl, log: quiet });
    const flip = await loadClassifier({ modelDir: dir, backboneUrl, log: quiet });
    const img = gradient(TINY_SIZE);
    const mirrored = mirrorRows(img, TINY_SIZE);
    const [a, b] = await plain.classify([img, mirrored]);
    const [avg] = await flip.classify([img]);
    (avg as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (a![i]! + b![i]!) / 2) < 1e-5));
    plain.dispose();
    flip.dispose();
  });

  it('refuses a head that does not fit its features or labels', async () => {
    await makeHead(path.join(root, 'wrong-heads', 'narrow'), 5, 11, 3);
    const dir = await modelWith('narrow', [{ ...cleanEntry, path: '../wrong-heads/narrow' }]);
    await assert.rejects(loadClassifier({ modelDir: dir, backboneUrl, log: quiet }), /takes 5 features/);
  });

  it('explains missing and invalid metadata', async () => {
    await assert.rejects(
      loadClassifier({ modelDir: path.join(root, 'nowhere') }),
      /No model metadata .*MODEL_DIR/,
    );
    const dir = path.join(root, 'bad-meta');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, METADATA_FILE), JSON.stringify({ ...meta, heads: [] }));
    await assert.rejects(readMetadata(dir), /heads/);
    await assert.rejects(
      writeMetadata(dir, {
        ...meta,
        heads: [{ ...cleanEntry, backbone: { ...cleanEntry.backbone, digest: 'abc' } }],
      }),
      /digest/,
    );
  });

  it('refuses a URL when the model has no head for URL backbones, unless it may fall back', async () => {
    const dir = await modelWith('npm-only', [npmEntry]);
    await assert.rejects(
      loadClassifier({ modelDir: dir, backboneUrl, log: quiet }),
      /no head trained on a URL/,
    );
    const c = await loadClassifier({ modelDir: dir, log: quiet });
    assert.equal(c.info.head, 'npm');
    c.dispose();
  });
});

// The shipped model (made by the training CLI) must load offline and keep matching the npm package's weights.
const shipped = defaultModelDir();
describe(
  'shipped model',
  { skip: !existsSync(path.join(shipped, METADATA_FILE)) && 'model/shipped not built yet' },
  () => {
    it('loads offline on the npm backbone and gives 11 probabilities summing to 1', async () => {
      const c = await loadClassifier({ modelDir: shipped, backboneUrl: 'none', log: quiet });
      assert.deepEqual(
        c.labels.map((l) => l.id),
        FOOD11_LABELS.map((l) => l.id),
      );
      const [p] = await c.classify([grey(c.input.size, 128)]);
      assert.equal(p?.length, 11);
      assert.ok(Math.abs((p as Float32Array).reduce((a, b) => a + b, 0) - 1) < 1e-4);
      c.dispose();
    });
  },
);
