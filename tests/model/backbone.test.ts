import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {
  BackboneMismatchError,
  cacheEntryDir,
  fetchBackboneIntoCache,
  initBackend,
  loadBackbone,
  NPM_BACKBONE,
  saveLayersModel,
  type BackboneSpec,
} from '../../model/src/index';
import {
  closeServer,
  reshard,
  saveTeachableMachineStyle,
  serveDir,
  TINY_DIMS,
  TINY_SIZE,
  tinyFunctionalBackbone,
  withChangedWeight,
} from '../fixtures/model/tiny-backbone';

const tinySpec = (source: string, layers: string[] = ['out_relu']): BackboneSpec => ({
  id: 'tiny',
  source,
  kind: 'layers',
  layers,
  inputSize: TINY_SIZE,
  scaling: '[-1,1]',
});

function image(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 31 + seed * 57) % 256);
}

let root: string;
let dirs: { plain: string; tm: string; sharded: string; changed: string; other: string };
const fileUrl = (dir: string) => pathToFileURL(path.join(dir, 'model.json')).href;

before(async () => {
  await initBackend('cpu');
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'backbone-test-'));
  dirs = {
    plain: path.join(root, 'plain'),
    tm: path.join(root, 'tm'),
    sharded: path.join(root, 'sharded'),
    changed: path.join(root, 'changed'),
    other: path.join(root, 'other'),
  };
  const net = tinyFunctionalBackbone(1);
  await saveLayersModel(net, dirs.plain);
  await saveTeachableMachineStyle(net, dirs.tm);
  await reshard(dirs.tm, dirs.sharded, 3);
  await withChangedWeight(dirs.plain, dirs.changed, 'Conv_1/kernel');
  const other = tinyFunctionalBackbone(2);
  await saveLayersModel(other, dirs.other);
  net.dispose();
  other.dispose();
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('layers backbone from a file:// URL', () => {
  it('loads, extracts pooled features of the right dimension, and leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const b = await loadBackbone(tinySpec(fileUrl(dirs.plain), ['block_1_project_BN', 'out_relu']));
    assert.equal(b.featureDim, TINY_DIMS.block_1_project_BN + TINY_DIMS.out_relu);
    assert.match(b.digest, /^[0-9a-f]{64}$/);
    const images = [image(TINY_SIZE, 1), image(TINY_SIZE, 2), image(TINY_SIZE, 3)];
    const first = await b.extract(images);
    const tensors = tf.memory().numTensors;
    const again = await b.extract(images);
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(first.length, 3);
    for (const f of first) assert.equal(f.length, b.featureDim);
    assert.deepEqual(again, first);
    assert.notDeepEqual(first[0], first[1], 'different photos give different features');
    b.dispose();
    assert.equal(tf.memory().numTensors, before, 'dispose frees everything the load made');
  });

  it('refuses images of the wrong size with the size it wants', async () => {
    const b = await loadBackbone(tinySpec(fileUrl(dirs.plain)));
    await assert.rejects(b.extract([image(TINY_SIZE + 1, 1)]), /takes RGB 32×32/);
    b.dispose();
  });

  it('builds at another input size (the nets are convolutional)', async () => {
    const b = await loadBackbone({ ...tinySpec(fileUrl(dirs.plain)), inputSize: 64 });
    const [f] = await b.extract([image(64, 1)]);
    assert.equal(f?.length, TINY_DIMS.out_relu);
    b.dispose();
  });

  it('gives one digest for the same weights however they are exported, and features to match', async () => {
    const plain = await loadBackbone(tinySpec(fileUrl(dirs.plain)));
    const tm = await loadBackbone(tinySpec(fileUrl(dirs.tm)));
    const sharded = await loadBackbone(tinySpec(fileUrl(dirs.sharded)));
    assert.equal(tm.digest, plain.digest);
    assert.equal(sharded.digest, plain.digest);
    const img = [image(TINY_SIZE, 4)];
    assert.deepEqual(await tm.extract(img), await plain.extract(img));
    for (const b of [plain, tm, sharded]) b.dispose();
  });

  it('gives another digest when one weight changes, and refuses it where a digest is expected', async () => {
    const plain = await loadBackbone(tinySpec(fileUrl(dirs.plain)));
    const changed = await loadBackbone(tinySpec(fileUrl(dirs.changed)));
    assert.notEqual(changed.digest, plain.digest);
    changed.dispose();
    await assert.rejects(
      loadBackbone(tinySpec(fileUrl(dirs.changed)), { expectedDigest: plain.digest }),
      (err: unknown) => err instanceof BackboneMismatchError && /different model/.test(err.message),
    );
    plain.dispose();
  });

  it('names a missing layer and a missing file', async () => {
    await assert.rejects(
      loadBackbone(tinySpec(fileUrl(dirs.plain), ['block_99_add'])),
      /no layer 'block_99_add'/,
    );
    await assert.rejects(
      loadBackbone(tinySpec(fileUrl(path.join(root, 'nowhere')))),
      /Cannot read .*model\.json/,
    );
  });
});

describe('fused engine (batch norms folded into convolutions)', () => {
  const close = (a: Float32Array[], b: Float32Array[]) => {
    let worst = 0;
    a.forEach((row, i) =>
      row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - (b[i] as Float32Array)[j]!)))),
    );
    return worst;
  };

  it('gives the features TF.js layers give, for cuts at a batch norm, an add and a ReLU6', async () => {
    const layers = ['expanded_conv_add', 'block_1_project_BN', 'out_relu'];
    const fused = await loadBackbone(tinySpec(fileUrl(dirs.plain), layers), { engine: 'fused' });
    const reference = await loadBackbone(tinySpec(fileUrl(dirs.plain), layers), { engine: 'layers' });
    assert.equal(fused.engine, 'fused');
    assert.equal(reference.engine, 'layers');
    assert.equal(
      fused.featureDim,
      TINY_DIMS.expanded_conv_add + TINY_DIMS.block_1_project_BN + TINY_DIMS.out_relu,
    );
    assert.equal(fused.featureDim, reference.featureDim);
    const images = [image(TINY_SIZE, 5), image(TINY_SIZE, 6)];
    const a = await fused.extract(images);
    const b = await reference.extract(images);
    assert.ok(close(a, b) < 1e-4, `largest difference ${close(a, b)}`);
    assert.ok(
      b.some((row) => row.some((v) => Math.abs(v) > 0.1)),
      'features are not all near zero',
    );
    fused.dispose();
    reference.dispose();
  });

  it('steps aside for a layer it does not know, and TF.js layers run the net', async () => {
    const dir = path.join(root, 'odd');
    const odd = tinyFunctionalBackbone(1, { extraLayer: true });
    await saveLayersModel(odd, dir);
    odd.dispose();
    const b = await loadBackbone(tinySpec(fileUrl(dir)));
    assert.equal(b.engine, 'layers');
    assert.equal((await b.extract([image(TINY_SIZE, 1)]))[0]?.length, TINY_DIMS.out_relu);
    b.dispose();
  });

  it('agrees with TF.js layers on the npm backbone too', async () => {
    const spec = { ...NPM_BACKBONE, inputSize: 64 };
    const fused = await loadBackbone(spec);
    const reference = await loadBackbone(spec, { engine: 'layers' });
    assert.equal(fused.engine, 'fused');
    const img = [image(64, 9)];
    const d = close(await fused.extract(img), await reference.extract(img));
    assert.ok(d < 1e-3, `largest difference ${d}`);
    fused.dispose();
    reference.dispose();
  });
});

describe('layers backbone over http (127.0.0.1)', () => {
  it('is fetched once into the cache, then loads from it with the digest checked', async () => {
    const cacheDir = path.join(root, 'cache-http');
    const { url, server } = await serveDir(dirs.sharded);
    const modelUrl = `${url}/model.json`;
    const fetched = await loadBackbone(tinySpec(modelUrl), { cacheDir });
    fetched.dispose();
    await closeServer(server);
    const logs: string[] = [];
    const cached = await loadBackbone(tinySpec(modelUrl), {
      cacheDir,
      expectedDigest: fetched.digest,
      log: (m) => logs.push(m),
    });
    assert.equal(cached.digest, fetched.digest);
    assert.equal(cached.loadedFrom, cacheEntryDir(cacheDir, modelUrl));
    assert.ok(logs.some((m) => /from cache/.test(m)));
    cached.dispose();

    // A damaged cache entry is not trusted: with the source gone, loading fails rather than run other weights.
    const weights = path.join(cacheEntryDir(cacheDir, modelUrl), 'weights.bin');
    const bytes = await fs.readFile(weights);
    bytes.writeFloatLE(bytes.readFloatLE(0) + 1, 0);
    await fs.writeFile(weights, bytes);
    await assert.rejects(
      loadBackbone(tinySpec(modelUrl), { cacheDir, fetchTimeoutMs: 2000 }),
      /Fetching .* failed/,
    );
  });

  it('survives parallel first loads into one cache, and a cache it cannot write', async () => {
    const { url, server } = await serveDir(dirs.plain);
    const modelUrl = `${url}/model.json`;
    try {
      const cacheDir = path.join(root, 'cache-parallel');
      const loaded = await Promise.all([1, 2, 3].map(() => loadBackbone(tinySpec(modelUrl), { cacheDir })));
      assert.equal(new Set(loaded.map((b) => b.digest)).size, 1);
      loaded.forEach((b) => b.dispose());
      const entries = await fs.readdir(cacheDir);
      assert.deepEqual(
        entries,
        [path.basename(cacheEntryDir(cacheDir, modelUrl))],
        'no temporary folders left',
      );

      // A cache path under a regular file cannot be created, whoever runs the test.
      const blocker = path.join(root, 'not-a-dir');
      await fs.writeFile(blocker, '');
      const logs: string[] = [];
      const b = await loadBackbone(tinySpec(modelUrl), {
        cacheDir: path.join(blocker, 'cache'),
        log: (m) => logs.push(m),
      });
      assert.equal(b.digest, loaded[0]?.digest);
      assert.ok(logs.some((m) => /not cached/.test(m)));
      b.dispose();
    } finally {
      await closeServer(server);
    }
  });

  it('refuses a served model whose weights differ from the expected digest, and caches nothing', async () => {
    const cacheDir = path.join(root, 'cache-changed');
    const good = await loadBackbone(tinySpec(fileUrl(dirs.plain)));
    good.dispose();
    const { url, server } = await serveDir(dirs.changed);
    try {
      await assert.rejects(
        loadBackbone(tinySpec(`${url}/model.json`), { cacheDir, expectedDigest: good.digest }),
        BackboneMismatchError,
      );
      await assert.rejects(fs.access(cacheEntryDir(cacheDir, `${url}/model.json`)));
    } finally {
      await closeServer(server);
    }
  });

  it('fails with the URL named when nothing listens, and gives up on a stalled host', async () => {
    const { url, server } = await serveDir(dirs.plain);
    await closeServer(server);
    await assert.rejects(loadBackbone(tinySpec(`${url}/model.json`)), (err: Error) =>
      err.message.includes(`${url}/model.json`),
    );
    const stalled = await serveDir(dirs.plain, { hang: true });
    try {
      await assert.rejects(
        loadBackbone(tinySpec(`${stalled.url}/model.json`), { fetchTimeoutMs: 300 }),
        /timed out after 300 ms/,
      );
    } finally {
      await closeServer(stalled.server);
    }
  });

  it('answers HTTP errors with the status', async () => {
    const { url, server } = await serveDir(dirs.plain);
    try {
      await assert.rejects(loadBackbone(tinySpec(`${url}/missing/model.json`)), /HTTP 404/);
    } finally {
      await closeServer(server);
    }
  });
});

describe('fetchBackboneIntoCache (the image build step)', () => {
  it('caches a model whose digest matches and refuses one that does not', async () => {
    const cacheDir = path.join(root, 'cache-cli');
    const { url, server } = await serveDir(dirs.tm);
    try {
      const plain = await loadBackbone(tinySpec(fileUrl(dirs.plain)));
      plain.dispose();
      const { digest, dir } = await fetchBackboneIntoCache(`${url}/model.json`, cacheDir, {
        expectedDigest: plain.digest,
      });
      assert.equal(digest, plain.digest);
      assert.equal(dir, cacheEntryDir(cacheDir, `${url}/model.json`));
      const otherDigest = 'f'.repeat(64);
      await assert.rejects(
        fetchBackboneIntoCache(`${url}/model.json`, path.join(root, 'cache-cli-2'), {
          expectedDigest: otherDigest,
        }),
        BackboneMismatchError,
      );
    } finally {
      await closeServer(server);
    }
  });
});

describe('npm-shipped backbone (nsfwjs), offline', () => {
  it('loads and extracts features of the dimension its layers give', async () => {
    const spec = { ...NPM_BACKBONE, inputSize: 64 };
    const b = await loadBackbone(spec);
    // MobileNetV2-1.0 channels: block_10_project_BN 96, block_13_expand_relu 576, out_relu 1280.
    assert.equal(b.featureDim, 96 + 576 + 1280);
    const feats = await b.extract([image(64, 1), image(64, 2)]);
    assert.equal(feats.length, 2);
    assert.ok(feats.every((f) => f.length === b.featureDim && f.every(Number.isFinite)));
    const again = await loadBackbone({ ...spec, layers: ['out_relu'] });
    assert.equal(again.digest, b.digest, 'the digest names the backbone, not the cut');
    assert.equal(again.featureDim, 1280);
    b.dispose();
    again.dispose();
  });

  it('rejects a source nsfwjs does not ship', async () => {
    await assert.rejects(loadBackbone({ ...NPM_BACKBONE, source: 'nsfwjs/resnet_9000' }), /ships no model/);
  });
});
