import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import {
  cacheEntryDir,
  initBackend,
  loadBackbone,
  saveLayersModel,
  writeMetadata,
  FOOD11_LABELS,
  type BackboneSpec,
} from '../../model/src/index';
import { closeServer, serveDir, TINY_SIZE, tinyFunctionalBackbone } from '../fixtures/model/tiny-backbone';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'model', 'cli', 'fetch-backbone.ts');

async function fetchBackbone(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], {
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const TINY_SPEC: BackboneSpec = {
  id: 'tiny',
  source: 'http://127.0.0.1/recorded-url/model.json',
  kind: 'layers',
  layers: ['out_relu'],
  inputSize: TINY_SIZE,
  scaling: '[-1,1]',
};

let root: string;
let digest: string;

before(async () => {
  await initBackend('cpu');
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'fetch-cli-test-'));
  const net = tinyFunctionalBackbone(3);
  await saveLayersModel(net, path.join(root, 'backbone'));
  net.dispose();
  const b = await loadBackbone({
    ...TINY_SPEC,
    source: pathToFileURL(path.join(root, 'backbone', 'model.json')).href,
  });
  digest = b.digest;
  b.dispose();
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('fetch-backbone CLI', () => {
  it('fetches over http into the cache when the digest matches the model metadata', async () => {
    // Metadata naming the digest, as the shipped model does; the head files are not needed to check a backbone.
    const modelDir = path.join(root, 'model');
    await writeMetadata(modelDir, {
      schemaVersion: 1,
      name: 'test',
      version: '0',
      labels: [...FOOD11_LABELS],
      input: { resize: 'cover' },
      heads: [
        {
          id: 'clean',
          path: 'heads/clean',
          backbone: { ...TINY_SPEC, digest, featureDim: 16 },
        },
      ],
    });
    const { url, server } = await serveDir(path.join(root, 'backbone'));
    const cacheDir = path.join(root, 'cache');
    try {
      const ok = await fetchBackbone([
        '--url',
        `${url}/model.json`,
        '--cache-dir',
        cacheDir,
        '--model-dir',
        modelDir,
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, new RegExp(`digest ${digest} \\(matches the head\\)`));
      assert.ok(existsSync(path.join(cacheEntryDir(cacheDir, `${url}/model.json`), 'weights.bin')));

      const wrong = await fetchBackbone([
        '--url',
        `${url}/model.json`,
        '--cache-dir',
        path.join(root, 'cache-wrong'),
        '--digest',
        '0'.repeat(64),
      ]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /not the backbone the shipped head was trained on/);
      assert.ok(
        !existsSync(path.join(root, 'cache-wrong')) ||
          (await fs.readdir(path.join(root, 'cache-wrong'))).length === 0,
      );
    } finally {
      await closeServer(server);
    }
  });

  it('exits non-zero with the reason when the URL cannot be fetched or the arguments are wrong', async () => {
    const { url, server } = await serveDir(root);
    await closeServer(server);
    const down = await fetchBackbone([
      '--url',
      `${url}/model.json`,
      '--cache-dir',
      path.join(root, 'c2'),
      '--digest',
      digest,
    ]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`fetch-backbone: Fetching ${url}/model.json failed`));
    const badDigest = await fetchBackbone(['--url', `${url}/model.json`, '--digest', 'xyz']);
    assert.notEqual(badDigest.code, 0);
    assert.match(badDigest.stderr, /64 lowercase hex/);
  });
});
