/**
 * The training pipeline end to end on a tiny generated data set and a narrow random MobileNetV2 (no ../shared):
 * photos → preprocessPhoto → tensor cache → model/train/finetune.py (PyTorch) → TF.js model → loadClassifier.
 * Needs Python with PyTorch (.ci/run installs Debian's python3-torch); without it the suite says so and skips,
 * unless REQUIRE_TORCH=1 (CI), where a missing PyTorch fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { FOOD11_LABELS, initBackend, loadClassifier, readMetadata } from '../../model/src/index';
import { loadDataset, recordedSplitOf } from '../../model/train/dataset';
import { buildTensorCache } from '../../model/train/tensor-cache';
import { preprocessPhoto } from '../../model/src/preprocess';
import { findPython } from '../../model/train/finetune';
import { writeFolderDataset } from '../fixtures/model/shape-photos';
import { modelCli } from '../helpers/model-cli';
import { networkWeights } from '../helpers/network-weights';

const repo = path.resolve(__dirname, '..', '..');

function pythonWithTorch(): string | undefined {
  try {
    return findPython();
  } catch {
    return undefined;
  }
}
const python = pythonWithTorch();
const skip =
  python === undefined && process.env.REQUIRE_TORCH !== '1'
    ? 'PyTorch is not installed here (apt-get install python3-torch); set REQUIRE_TORCH=1 to fail instead'
    : false;

let root: string;
let base: string;
let data: string;
let out: string;
const view = { size: 16, crop: 'cover' as const, jpegQuality: 75 };

describe('npm run train (PyTorch fine-tuning, exported to TF.js)', { skip }, () => {
  before(async () => {
    assert.ok(python, 'REQUIRE_TORCH=1 but no Python with PyTorch and numpy was found');
    await initBackend('cpu');
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'train-test-'));
    base = path.join(root, 'base');
    data = path.join(root, 'shapes');
    out = path.join(root, 'model');
    const made = spawnSync(python, [path.join(repo, 'model/train/finetune.py'), '--make-test-base', base]);
    assert.equal(made.status, 0, made.stderr.toString());
    await writeFolderDataset(data, 12);
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('writes a model folder the classifier loads, with PyTorch and TF.js agreeing on its probabilities', async () => {
    const result = await modelCli('train', [
      '--data',
      data,
      '--base',
      base,
      '--out',
      out,
      '--cache-dir',
      path.join(root, 'cache'),
      '--input-size',
      '32',
      '--view-size',
      String(view.size),
      '--view-jpeg',
      String(view.jpegQuality),
      '--freeze-blocks',
      '0',
      '--feature-copies',
      '0',
      '--epochs',
      '2',
      '--batch',
      '8',
      '--validation-percent',
      '30',
      '--test-time-flip',
      '--weights-dtype',
      'float16',
      '--threads',
      '1',
      '--latency-runs',
      '3',
      '--model-version',
      'test-1',
      '--report-dir',
      path.join(root, 'report'),
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /finetune: .*"msg": "epoch", "epoch": 2/);

    const meta = await readMetadata(out);
    assert.equal(meta.version, 'test-1');
    assert.deepEqual(meta.view, view);
    assert.equal(meta.network.inputSize, 32);
    assert.equal(meta.network.testTimeFlip, true);
    assert.equal(meta.network.weightsDtype, 'float16');
    assert.deepEqual(
      meta.labels.map((l) => l.id),
      FOOD11_LABELS.map((l) => l.id),
    );
    assert.ok(meta.accuracy['validation:shapes'] !== undefined, JSON.stringify(meta.accuracy));
    assert.ok((meta.msPerPhoto ?? 0) > 0);
    const report = await fs.readFile(path.join(root, 'report', 'training.md'), 'utf8');
    assert.match(report, /### The split\n\n\d+ photos train; \d+ validate/);
    assert.match(report, /### Dishes trained on, per class/);

    // The same inputs through TF.js (the fused engine and TF.js layers) and through PyTorch, as finetune.py
    // recorded them after reloading its own export (float16 weights as stored).
    const reference = JSON.parse(await fs.readFile(path.join(out, 'network', 'reference.json'), 'utf8')) as {
      viewSize: number;
      inputs: string[];
      probabilities: number[][];
    };
    assert.equal(reference.viewSize, view.size);
    const maxDiff = await referenceDiff(out, reference);
    assert.ok(maxDiff <= 1e-4, `TF.js and PyTorch differ by ${maxDiff}`);
  });

  it('built its tensor cache from preprocessPhoto, byte for byte', async () => {
    const dataset = loadDataset([data], { validationPercent: 30 });
    const cache = await buildTensorCache({
      samples: dataset.samples,
      view,
      classes: dataset.labels.length,
      root: path.join(root, 'cache'),
    });
    assert.equal(cache.reused, true, 'the training run wrote this cache; the same photos and view reuse it');
    const pixels = await fs.readFile(path.join(cache.dir, 'pixels.u8'));
    const bytes = view.size * view.size * 3;
    assert.equal(pixels.length, dataset.samples.length * bytes);
    for (const i of [0, 7, dataset.samples.length - 1]) {
      const photo = await fs.readFile(dataset.samples[i]!.path);
      const served = await preprocessPhoto(photo, { view, maxPixels: 1e7, decoder: 'sharp' });
      assert.deepEqual(new Uint8Array(pixels.subarray(i * bytes, (i + 1) * bytes)), served.rgb, `photo ${i}`);
    }
  });

  it('shares the pixels of a cache of the same photos split another way instead of decoding them again', async () => {
    const first = loadDataset([data], { validationPercent: 30 });
    const resplit = loadDataset([data], { validationPercent: 60 });
    assert.notDeepEqual(
      resplit.samples.map((s) => s.split),
      first.samples.map((s) => s.split),
      'the test needs a split that differs',
    );
    const cacheRoot = path.join(root, 'cache');
    const donor = await buildTensorCache({
      samples: first.samples,
      view,
      classes: first.labels.length,
      root: cacheRoot,
    });
    const cache = await buildTensorCache({
      samples: resplit.samples,
      view,
      classes: resplit.labels.length,
      root: cacheRoot,
    });
    assert.equal(cache.reused, false);
    assert.notEqual(cache.dir, donor.dir, 'another split is another cache');
    assert.equal(cache.pixelsFrom, donor.dir);
    assert.deepEqual(
      cache.index.samples.map((s) => s.split),
      resplit.samples.map((s) => s.split),
    );
    assert.deepEqual(
      await fs.readFile(path.join(cache.dir, 'pixels.u8')),
      await fs.readFile(path.join(donor.dir, 'pixels.u8')),
    );

    // Other photos (one fewer) are other pixels: decoded, not shared.
    const fewer = await buildTensorCache({
      samples: resplit.samples.slice(1),
      view,
      classes: resplit.labels.length,
      root: cacheRoot,
    });
    assert.equal(fewer.pixelsFrom, undefined);
    const bytes = view.size * view.size * 3;
    assert.equal(
      (await fs.stat(path.join(fewer.dir, 'pixels.u8'))).size,
      (resplit.samples.length - 1) * bytes,
    );
  });

  it('scores the model with evaluate, through the same path', async () => {
    const result = await modelCli('evaluate', [
      '--model',
      out,
      '--data',
      data,
      '--split',
      'validation',
      '--look',
      'as-is',
      'lowres',
      'phone',
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /look as-is, lowres, phone/);
    assert.match(result.stdout, /\| class \| photos \| recall, as-is \| recall, lowres \| recall, phone \|/);
    // One report per look, and the table of every look side by side.
    assert.match(result.stdout, /shapes \(validation split, look phone\) — model test-1/);
    assert.match(
      result.stdout,
      /\| photos \| as-is \| lowres \| phone \|\n\|---\|---:\|---:\|---:\|\n\| shapes \(\d+\) \| \d+\.\d % /,
    );
  });

  it('trains only the layers above --freeze-blocks, from their stored output for --feature-copies views', async () => {
    const frozenOut = path.join(root, 'frozen');
    const result = await modelCli('train', [
      ...['--data', data, '--base', base, '--out', frozenOut, '--cache-dir', path.join(root, 'cache')],
      ...['--input-size', '32', '--view-size', String(view.size), '--epochs', '2', '--batch', '8'],
      ...['--validation-percent', '30', '--threads', '1', '--latency-runs', '3'],
      ...['--freeze-blocks', '4', '--feature-copies', '2', '--faults', '1'],
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /"msg": "features", "copy": 2, "of": 2/);
    // The frozen layers leave training exactly as the base had them; the first trained one does not.
    const baseWeights = await networkWeights(base);
    const trained = await networkWeights(path.join(frozenOut, 'network'));
    const baseKernels = [...baseWeights.keys()].filter((k) => k.endsWith('kernel'));
    const trainedKernels = [...trained.keys()].filter((k) => k.endsWith('kernel'));
    // The stem and four blocks of the test base: 1 + 2 (the t=1 block) + 3 × 3 convolutions.
    const frozenCount = 1 + 2 + 3 * 3;
    for (let i = 0; i < trainedKernels.length - 1; i++) {
      const same = baseWeights
        .get(baseKernels[i]!)!
        .every((v, j) => v === trained.get(trainedKernels[i]!)![j]);
      assert.equal(
        same,
        i < frozenCount,
        `${trainedKernels[i]} (convolution ${i}) is ${same ? '' : 'not '}the base's`,
      );
    }
  });

  it('fits the head on frozen features first, trains the first epochs at --small-input-size, and exports at --input-size', async () => {
    const smallOut = path.join(root, 'small');
    const result = await modelCli('train', [
      ...['--data', data, '--base', base, '--out', smallOut, '--cache-dir', path.join(root, 'cache')],
      ...['--input-size', '32', '--view-size', String(view.size), '--epochs', '3', '--batch', '8'],
      ...['--validation-percent', '30', '--threads', '1', '--latency-runs', '3'],
      ...['--freeze-blocks', '0', '--feature-copies', '0', '--faults', '0.5'],
      ...['--small-input-size', '24', '--small-epochs', '2', '--epoch-photos', '40', '--probe-head', '20'],
      ...['--eval-photos', '5'],
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /"msg": "probe head", "photos": 20, "input_size": 24/);
    const epochs = [
      ...result.stdout.matchAll(/"msg": "epoch", "epoch": (\d), "seconds": [\d.]+, "input_size": (\d+)/g),
    ];
    assert.deepEqual(
      epochs.map((m) => [Number(m[1]), Number(m[2])]),
      [
        [1, 24],
        [2, 24],
        [3, 32],
      ],
    );
    const record = JSON.parse(await fs.readFile(path.join(smallOut, 'training.json'), 'utf8')) as {
      inputSize: number;
      history: { validation: { all: { photos: number } } }[];
    };
    assert.equal(record.inputSize, 32);
    // The epochs are scored on the 5 photos of --eval-photos; the exported network on all of them.
    assert.equal(record.history[0]!.validation.all.photos, 5);
    const metadata = await readMetadata(smallOut);
    assert.equal(metadata.network.inputSize, 32);
    // The split is recorded, so a later model's gate can leave out what this one trained on.
    assert.deepEqual(recordedSplitOf(metadata.training), {
      validationPercent: 30,
      validationDishPercent: 15,
      sources: ['shapes'],
    });
  });

  it('--source-weight draws a source more often within its classes, and refuses a name no training photo has', async () => {
    const more = path.join(root, 'more');
    await writeFolderDataset(more, 5, undefined, 1);
    const weightedOut = path.join(root, 'weighted');
    const common = [
      ...['--data', data, more, '--base', base, '--cache-dir', path.join(root, 'cache')],
      ...[
        '--input-size',
        '32',
        '--view-size',
        String(view.size),
        '--batch',
        '8',
        '--validation-percent',
        '30',
      ],
      ...['--threads', '1', '--latency-runs', '3', '--freeze-blocks', '0', '--feature-copies', '0'],
      ...['--epochs', '1', '--epoch-photos', '16'],
    ];
    const result = await modelCli('train', [...common, '--out', weightedOut, '--source-weight', 'more=3']);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    // Each class: 'more' weighs 3 × √(its training photos) against 'shapes' √(its own).
    const train = loadDataset([data, more], { validationPercent: 30 }).samples.filter(
      (s) => s.split === 'train',
    );
    const count = (label: number, set: string) =>
      train.filter((s) => s.label === label && path.basename(s.root) === set).length;
    const line = /"msg": "source weights", "weights": \{"more": 3\.0\}, "shares": (\{.*\})\}/.exec(
      result.stdout,
    );
    assert.ok(line, result.stdout);
    const shares = JSON.parse(line[1]!) as Record<string, { more: number }>;
    const labels = [...new Set(train.map((s) => s.label))];
    assert.deepEqual(Object.keys(shares).map(Number).sort(), labels.sort());
    for (const label of labels) {
      const weighted = 3 * Math.sqrt(count(label, 'more'));
      const expected = weighted / (weighted + Math.sqrt(count(label, 'shapes')));
      assert.ok(
        Math.abs(shares[String(label)]!.more - expected) < 1e-4,
        `class ${label}: ${shares[String(label)]!.more}`,
      );
    }
    const metadata = await readMetadata(weightedOut);
    assert.deepEqual(metadata.training?.['source_weight'], { more: 3 });

    for (const [args, message] of [
      [
        ['--source-weight', 'nowhere=2'],
        /--source-weight nowhere: no training photo comes from it \(sources with training photos: more, shapes\)/,
      ],
      [
        ['--source-weight', 'more=2', '--balance', 'none'],
        /--source-weight weighs the class-source sampler: not with --balance none/,
      ],
    ] as const) {
      const refused = await modelCli('train', [...common, '--out', path.join(root, 'refused'), ...args]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, message);
    }
  });

  it("--init-from continues an earlier run's weights with a new schedule, and refuses another split's run", async () => {
    const smallOut = path.join(root, 'small');
    const continued = path.join(root, 'continued');
    const common = [
      ...['--data', data, '--base', base, '--cache-dir', path.join(root, 'cache')],
      ...['--input-size', '32', '--view-size', String(view.size), '--batch', '8'],
      ...['--threads', '1', '--latency-runs', '3', '--freeze-blocks', '0', '--feature-copies', '0'],
    ];
    const result = await modelCli('train', [
      ...common,
      ...['--out', continued, '--validation-percent', '30', '--epochs', '1', '--epoch-photos', '16'],
      ...['--init-from', smallOut],
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /"msg": "init from", "path": "[^"]*small[/\\]checkpoint\.pt", "epochs": 3/);
    // The head starts trained: no linear probe is fitted over it.
    assert.doesNotMatch(result.stdout, /"msg": "probe head"/);
    // Another validation split is another tensor cache: its training photos could be this run's validation.
    const other = await modelCli('train', [
      ...common,
      ...['--out', path.join(root, 'other-split'), '--validation-percent', '50', '--epochs', '1'],
      ...['--init-from', smallOut],
    ]);
    assert.notEqual(other.code, 0);
    assert.match(
      other.stderr + other.stdout,
      /--init-from .* was trained on another tensor cache \(another split\) and on \d+ of this run's validation photos/,
    );
    // A split that leaves less out (20 % against 30 %) validates only on photos the earlier run never trained on.
    const lessLeftOut = await modelCli('train', [
      ...common,
      ...['--out', path.join(root, 'less-left-out'), '--validation-percent', '20', '--epochs', '1'],
      ...['--epoch-photos', '16', '--init-from', smallOut],
    ]);
    assert.equal(lessLeftOut.code, 0, lessLeftOut.stderr + lessLeftOut.stdout);
    assert.match(
      lessLeftOut.stdout,
      /"msg": "init from", "path": "[^"]*small[/\\]checkpoint\.pt", "epochs": 3, "cache": /,
    );
  });

  it('says what is missing when the base is not there', async () => {
    const result = await modelCli('train', ['--data', data, '--base', path.join(root, 'nope'), '--out', out]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--base .*no such file or folder/);
  });
});

/** Largest |Δp| between TF.js (the network without test-time flip, both engines) and PyTorch's probabilities. */
async function referenceDiff(
  modelDir: string,
  reference: { viewSize: number; inputs: string[]; probabilities: number[][] },
): Promise<number> {
  let worst = 0;
  for (const engine of ['fused', 'layers'] as const) {
    const classifier = await loadClassifier({ modelDir, engine, testTimeFlip: false });
    const before = tf.memory().numTensors;
    const probs = await classifier.classify(
      reference.inputs.map((b) => new Uint8Array(Buffer.from(b, 'base64'))),
    );
    assert.equal(tf.memory().numTensors, before, 'classify leaves no tensors behind');
    probs.forEach((p, i) =>
      reference.probabilities[i]!.forEach((q, c) => (worst = Math.max(worst, Math.abs(q - p[c]!)))),
    );
    classifier.dispose();
  }
  return worst;
}

describe('the training and evaluation CLIs refuse a wrong number before any work', () => {
  const cases: Array<['train' | 'evaluate', string, string, RegExp]> = [
    ['train', '--seed', 'abc', /--seed must be a whole number ≥ 0/],
    ['train', '--seed', '-1', /--seed must be a whole number ≥ 0/],
    ['train', '--validation-percent', 'ten', /--validation-percent must be a number ≥ 0/],
    ['evaluate', '--validation-percent', '-5', /--validation-percent must be a number ≥ 0/],
    ['train', '--faults', '1.5', /--faults must be a number from 0 to 1/],
    ['train', '--freeze-blocks', '18', /--freeze-blocks must be a whole number from 0 to 17/],
    [
      'train',
      '--freeze-blocks',
      '0',
      /--feature-copies stores the frozen layers' output: give --freeze-blocks too/,
    ],
    ['train', '--small-epochs', '-1', /--small-epochs must be a whole number ≥ 0/],
    ['train', '--probe-head', 'all', /--probe-head must be a whole number ≥ 0/],
    [
      'train',
      '--source-weight',
      'photos=0',
      /--source-weight photos=0: give <name>=<factor>, the factor a number > 0/,
    ],
    ['train', '--source-weight', 'photos', /--source-weight photos: give <name>=<factor>/],
    [
      'train',
      '--small-input-size',
      '160',
      /--small-input-size, --probe-head and --init-from train the whole network on fresh views: give --feature-copies 0/,
    ],
  ];
  for (const [script, option, value, message] of cases) {
    it(`${script} ${option} ${value}`, async () => {
      const required =
        script === 'train' ? ['--data', 'nowhere', '--base', 'nowhere'] : ['--data', 'nowhere'];
      const result = await modelCli(script, [...required, `${option}=${value}`]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, message);
    });
  }
});
