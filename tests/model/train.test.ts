import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { initBackend, loadClassifier, readMetadata, saveLayersModel } from '../../model/src/index';
import { decodeForModel } from '../../model/train/decode';
import { trainHead, predictHead, learningRateAt, DEFAULT_HEAD } from '../../model/train/head';
import { argmaxRows } from '../../model/train/predictions';
import { seededRandom } from '../../model/train/prng';
import { tinyFunctionalBackbone, TINY_SIZE } from '../fixtures/model/tiny-backbone';
import { writeFolderDataset } from './train-fixture';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '..', '..');

async function train(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'model/cli/train.ts', ...args],
      {
        cwd: repo,
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let root: string;
let base: string;
let data: string;
const common = () => [
  '--base',
  base,
  '--backbone-id',
  'tiny',
  '--layers',
  'block_1_project_BN,out_relu',
  '--input-size',
  String(TINY_SIZE),
  '--hidden',
  '16',
  '--epochs',
  '80',
  '--validation-percent',
  '30',
  '--augment',
  'flip',
];

before(async () => {
  await initBackend('cpu');
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'train-test-'));
  base = path.join(root, 'backbone');
  data = path.join(root, 'shapes');
  const net = tinyFunctionalBackbone(1);
  await saveLayersModel(net, base);
  net.dispose();
  await writeFolderDataset(data, 20);
});
after(() => fs.rm(root, { recursive: true, force: true }));

describe('trainHead', () => {
  // Three Gaussian blobs in 6 dimensions: learnable, but not on the first step.
  const random = seededRandom(7);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const rows = 300;
  const x = new Float32Array(rows * 6);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    y[r] = r % 3;
    for (let c = 0; c < 6; c++) x[r * 6 + c] = gauss() + (c % 3 === y[r] ? 2 : 0) + 5;
  }
  const matrix = { data: x, rows, cols: 6 };
  const config = { ...DEFAULT_HEAD, hidden: 8, epochs: 15, batchSize: 32, learningRate: 0.01 };

  it('learns: training accuracy rises well above chance', async () => {
    const history: number[] = [];
    const head = await trainHead(matrix, y, 3, config, (r) => history.push(r.trainAccuracy));
    const accuracy =
      argmaxRows(predictHead(head.model, matrix), 3).filter((p, i) => p === y[i]).length / rows;
    head.model.dispose();
    assert.ok(history.at(-1)! > history[0]!, `accuracy rises: ${history.map((a) => a.toFixed(2)).join(' ')}`);
    assert.ok(accuracy > 0.8, `accuracy ${accuracy} on separable blobs`);
  });

  it('gives the same weights for the same seed and different ones for another', async () => {
    const weights = async (seed: number) => {
      const head = await trainHead(matrix, y, 3, { ...config, epochs: 3, seed });
      const w = head.model.getWeights().map((t) => Array.from(t.dataSync()));
      head.model.dispose();
      return w;
    };
    const a = await weights(1);
    assert.deepEqual(await weights(1), a);
    assert.notDeepEqual(await weights(2), a);
  });

  it('cosine schedule: full rate on the first step, half at mid-run, near zero on the last', () => {
    const cosine = { learningRate: 0.01, schedule: 'cosine' as const };
    assert.equal(learningRateAt(cosine, 1, 100), 0.01);
    assert.ok(Math.abs(learningRateAt(cosine, 51, 100) - 0.005) < 1e-12);
    assert.ok(learningRateAt(cosine, 100, 100) < 0.0001);
    assert.equal(learningRateAt({ learningRate: 0.01, schedule: 'constant' }, 100, 100), 0.01);
  });

  it('learns with the cosine schedule too, and it changes the weights', async () => {
    const run = async (schedule: 'constant' | 'cosine') => {
      const head = await trainHead(matrix, y, 3, { ...config, schedule });
      const accuracy =
        argmaxRows(predictHead(head.model, matrix), 3).filter((p, i) => p === y[i]).length / rows;
      const w = Array.from(head.model.getWeights()[0]!.dataSync());
      head.model.dispose();
      return { accuracy, w };
    };
    const cosine = await run('cosine');
    assert.ok(cosine.accuracy > 0.8, `accuracy ${cosine.accuracy} with the cosine schedule`);
    assert.notDeepEqual(cosine.w, (await run('constant')).w);
  });
});

describe('train CLI', { timeout: 180_000 }, () => {
  it('learns the generated shapes, writes a loadable model, and repeats itself for a seed', async () => {
    const out1 = path.join(root, 'out1');
    const out2 = path.join(root, 'out2');
    const first = await train([
      '--data',
      data,
      ...common(),
      '--out',
      out1,
      '--cache-dir',
      path.join(root, 'c1'),
      '--workers',
      '2',
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Summary: head 'clean'/);
    const second = await train([
      '--data',
      data,
      ...common(),
      '--out',
      out2,
      '--cache-dir',
      path.join(root, 'c2'),
      '--workers',
      '1',
    ]);
    assert.equal(second.code, 0, second.stderr);
    // Extraction in two worker processes and in-process give the same features, hence the same head.
    assert.deepEqual(
      await fs.readFile(path.join(out1, 'heads', 'clean', 'weights.bin')),
      await fs.readFile(path.join(out2, 'heads', 'clean', 'weights.bin')),
    );

    const meta = await readMetadata(out1);
    assert.equal(meta.labels.length, 11);
    const head = meta.heads.find((h) => h.id === 'clean')!;
    assert.equal(head.backbone.id, 'tiny');
    assert.match(head.backbone.digest, /^[0-9a-f]{64}$/);
    const accuracy = head.accuracy['validation:shapes']!;
    assert.ok(accuracy > 0.6, `validation accuracy ${accuracy} is well above chance (1/3)`);

    const classifier = await loadClassifier({
      modelDir: out1,
      backboneUrl: `file://${path.join(base, 'model.json')}`,
      backboneFallback: false,
    });
    const photo = await decodeForModel(path.join(data, 'Egg', 'egg__0.jpg'), classifier.input.size, 'cover');
    const [probs] = await classifier.classify([photo]);
    classifier.dispose();
    assert.equal(probs!.length, 11);
    assert.ok(Math.abs(probs!.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  });

  it('with --test-time-flip, reports the accuracy that evaluate measures end to end', async () => {
    const out = path.join(root, 'out-flip');
    const reports = path.join(root, 'reports-flip');
    // More photos and few epochs, so the head still makes mistakes and the flip changes some of them: with this
    // seed, scoring the plain view alone (what train did before) gives a different confusion matrix.
    const shapes = path.join(root, 'more-shapes');
    await writeFolderDataset(shapes, 60);
    const trained = await train([
      '--data',
      shapes,
      ...common(),
      '--epochs',
      '20',
      '--test-time-flip',
      '--out',
      out,
      '--report-dir',
      reports,
      '--cache-dir',
      path.join(root, 'c-flip'),
    ]);
    assert.equal(trained.code, 0, trained.stderr);
    await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'model/cli/evaluate.ts',
        '--data',
        shapes,
        '--model',
        out,
        '--split',
        'validation',
        '--validation-percent',
        '30',
        '--backbone-url',
        `file://${path.join(base, 'model.json')}`,
        '--report-dir',
        reports,
      ],
      { cwd: repo },
    );
    type Reports = { reports: Record<string, { confusion: number[][] }> };
    const read = async (file: string) =>
      JSON.parse(await fs.readFile(path.join(reports, file), 'utf8')) as Reports;
    const atTraining = (await read('validation.json')).reports['more-shapes']!.confusion;
    const endToEnd = (await read('evaluation.json')).reports['more-shapes']!.confusion;
    assert.deepEqual(atTraining, endToEnd);
  });

  it('re-training reads the feature cache instead of extracting again', async () => {
    const cache = path.join(root, 'c1');
    const again = await train([
      '--data',
      data,
      ...common(),
      '--out',
      path.join(root, 'out3'),
      '--cache-dir',
      cache,
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Features: \d+ cached, 0 to extract/);
  });

  it('refuses a missing --data folder with a clear message', async () => {
    const r = await train([
      '--data',
      path.join(root, 'missing'),
      '--base',
      base,
      '--out',
      path.join(root, 'x'),
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing: no such directory/);
  });

  it('refuses an empty class folder, naming it', async () => {
    const dir = path.join(root, 'with-empty');
    await writeFolderDataset(dir, 3, ['Bread']);
    await fs.mkdir(path.join(dir, 'Rice'));
    const r = await train(['--data', dir, '--base', base, '--out', path.join(root, 'y')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Rice has no images/);
  });
});
