import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { initBackend } from '../../model/src/index';
import {
  confusionMatrix,
  reportFromConfusion,
  reportToMarkdown,
} from '../../model/train/classification-metrics';
import { dishesTable, type GroupComparison, type Verdict } from '../../model/train/paired-comparison';
import { hashSplit, loadDataset, setOf } from '../../model/train/dataset';
import { argmax, dishComparisons } from '../../model/train/scoring';
import { writeFolderDataset } from '../fixtures/model/shape-photos';
import { writeColourModel } from '../fixtures/model/tiny-network';
import { modelCli } from '../helpers/model-cli';

const labels = ['A', 'B', 'C'].map((id, index) => ({ index, id, name: `${id} name` }));

describe('evaluation arithmetic', () => {
  // truth A: 8 → A, 2 → B;  truth B: 1 → A, 4 → B;  truth C: none.
  const truth = [...Array(10).fill(0), ...Array(5).fill(1)];
  const predicted = [...Array(8).fill(0), 1, 1, 0, 1, 1, 1, 1];

  it('builds the confusion matrix rows = truth, columns = prediction', () => {
    assert.deepEqual(confusionMatrix(truth, predicted, 3), [
      [8, 2, 0],
      [1, 4, 0],
      [0, 0, 0],
    ]);
  });

  it('computes accuracy, macro accuracy over present classes, and per-class precision/recall', () => {
    const r = reportFromConfusion(confusionMatrix(truth, predicted, 3), labels);
    assert.equal(r.total, 15);
    assert.equal(r.accuracy, 12 / 15);
    // Mean recall of A (0.8) and B (0.8); C has no photos and does not count.
    assert.equal(r.macroAccuracy, (8 / 10 + 4 / 5) / 2);
    assert.equal(r.classes[0]!.precision, 8 / 9);
    assert.equal(r.classes[1]!.precision, 4 / 6);
    assert.equal(r.classes[0]!.recall, 0.8);
    assert.equal(r.classes[2]!.recall, null);
    assert.equal(r.classes[2]!.precision, null);
  });

  it('macro accuracy differs from accuracy when classes are unbalanced', () => {
    const r = reportFromConfusion(
      [
        [90, 0],
        [5, 5],
      ],
      labels.slice(0, 2),
    );
    assert.equal(r.accuracy, 0.95);
    assert.equal(r.macroAccuracy, 0.75);
  });

  it('renders markdown with the numbers and the matrix', () => {
    const md = reportToMarkdown(reportFromConfusion(confusionMatrix(truth, predicted, 3), labels), 'test');
    assert.match(md, /accuracy \*\*80\.0 %\*\*/);
    assert.match(md, /\| A name \| 10 \| 88\.9 % \| 80\.0 % \|/);
    assert.match(md, /\| A \| 8 \| 2 \| 0 \|/);
    assert.doesNotMatch(md, /\| C \| 0 \| 0 \| 0 \|/);
  });

  it('counts each dish left out for both models, by class and then by photos, and tables it', () => {
    const sample = (file: string, label: number, unseenDish: boolean) => ({
      path: `/data/full/${labels[label]!.id}/${file}`,
      label,
      split: 'validation' as const,
      root: '/data/full',
      ...(unseenDish ? { unseenDish } : {}),
    });
    const samples = [
      sample('Src__pozole__1.jpg', 1, true),
      sample('Src__pozole__2.jpg', 1, true),
      sample('Src__bun__1.jpg', 0, false), // trained on: not a dish left out
      sample('Src__naan__1.jpg', 0, true),
      sample('Src__pozole__3.jpg', 1, true),
      // The same name in another class is another dish.
      sample('Src__pozole__4.jpg', 0, true),
    ];
    const baseline = Int32Array.from([1, 0, 0, 2, 0, 0]);
    const candidate = Int32Array.from([1, 1, 0, 0, 1, 2]);
    const dishes = dishComparisons(samples, baseline, candidate, labels);
    assert.deepEqual(dishes, [
      { label: 'A name', dish: 'Src__naan', photos: 1, baselineRight: 0, candidateRight: 1 },
      { label: 'A name', dish: 'Src__pozole', photos: 1, baselineRight: 1, candidateRight: 0 },
      { label: 'B name', dish: 'Src__pozole', photos: 3, baselineRight: 1, candidateRight: 3 },
    ]);
    const md = dishesTable(dishes, { baseline: 'v4', candidate: 'v5' });
    assert.match(md, /\| class \| dish \| photos \| right by v4 → v5 \| Δ points \|/);
    assert.match(md, /\| B name \| Src__pozole \| 3 \| 1 → 3 \| \+66\.7 \|/);
    assert.match(md, /\| A name \| Src__pozole \| 1 \| 1 → 0 \| -100\.0 \|/);
  });

  it('picks the largest probability per row', () => {
    const rows = [Float32Array.from([0.1, 0.7, 0.2]), Float32Array.from([0.5, 0.2, 0.3])];
    assert.deepEqual(rows.map(argmax), [1, 0]);
  });
});

/**
 * `npm run evaluate` on generated shape photos (tests/fixtures/model/shape-photos.ts) from two sources, `kitchen`
 * and `phone`, the second left out whole (--validation-sources), with two hand-set colour models whose answers are
 * known: v5 tells all three classes apart; v4 knows Bread, answers Egg for the rest, so misses every Rice photo.
 */
describe('npm run evaluate --baseline: the promotion gate', () => {
  let root: string;
  let v5: string;
  let v4: string;
  let split: string[];
  before(async () => {
    await initBackend('cpu');
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'evaluate-gate-'));
    await writeFolderDataset(path.join(root, 'kitchen'), 10);
    await writeFolderDataset(path.join(root, 'phone'), 10, undefined, 1);
    // Each model has its own view size: scoring either through the other's view would not run at all.
    v5 = await writeColourModel(path.join(root, 'v5'), {
      viewSize: 24,
      version: 'v5',
      recognises: ['Bread', 'Egg', 'Rice'],
      fallback: 'Egg',
    });
    v4 = await writeColourModel(path.join(root, 'v4'), {
      viewSize: 16,
      version: 'v4',
      recognises: ['Bread'],
      fallback: 'Egg',
    });
    split = [
      ...['--data', path.join(root, 'kitchen'), path.join(root, 'phone')],
      ...['--split', 'validation', '--validation-percent', '40', '--validation-sources', 'phone'],
      ...['--resamples', '500'],
    ];
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  interface Written {
    view: { size: number };
    timings: Record<string, { crops: number; msPerPhotoIncludingDecode: number; modelMsPerPhoto: number }>;
    baseline?: { model: { version: string }; view: { size: number } };
    comparison?: Record<string, { groups: Record<string, GroupComparison>; verdict: Verdict }>;
    promoted?: boolean;
  }
  const written = async (dir: string) =>
    JSON.parse(await fs.readFile(path.join(dir, 'evaluation.json'), 'utf8')) as Written;
  const predictions = async (dir: string) =>
    parse(await fs.readFile(path.join(dir, 'predictions.csv'), 'utf8'), { columns: true }) as Record<
      string,
      string
    >[];

  it('compares both models on the same photos per group and class, and promotes the better one', async () => {
    const reportDir = path.join(root, 'report-promote');
    const result = await modelCli('evaluate', [
      ...[
        '--model',
        v5,
        '--baseline',
        v4,
        '--margin',
        '30',
        '--require-promotion',
        '--report-dir',
        reportDir,
      ],
      ...split,
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    // Every phone photo is an unseen source's: 10 a class, v4 right on Bread and Egg, v5 on all of them, so the
    // only discordant photos are the 10 Rice ones, all v5's (McNemar: 2 × ½¹⁰), and every resample within
    // classes keeps all 10: the interval is the difference itself.
    assert.match(
      result.stdout,
      /\| unseen sources \| 30 \| 66\.7 % → 100\.0 % \| \+33\.3 \| 0 \/ 10 \| 0\.002 \| 66\.7 % → 100\.0 % \| \+33\.3 \| \+33\.3 to \+33\.3 \|/,
    );
    assert.match(result.stdout, /\| group \| photos \| accuracy v4 → v5 \|/);
    assert.match(
      result.stdout,
      /Per class, unseen sources:\n\n\| class \|[^\n]*\n[^\n]*\n\| Bread \| 10 \| 100\.0 % → 100\.0 % \| \+0\.0 \| 0 \/ 0 \| 1\.000 \|/,
    );
    assert.match(
      result.stdout,
      /\| Rice \| 10 \| 0\.0 % → 100\.0 % \| \+100\.0 \| 0 \/ 10 \| 0\.002 \| \+100\.0 to \+100\.0 \|/,
    );
    assert.match(result.stdout, /\*\*Verdict: promote v5\*\* over v4\./);
    assert.match(
      result.stdout,
      /- pass: unseen sources must be better \(Δ > 0, interval's lower end > \+30\.0\)/,
    );
    assert.match(result.stdout, /- pass: not significantly worse on kitchen, phone, all\./);
    assert.match(
      result.stdout,
      /36 of the 36 scored photos are compared, those both models stand alike on\./,
    );
    assert.match(
      result.stdout,
      /\*\*The baseline's metadata records no training split\*\*: it may have trained/,
    );

    const md = await fs.readFile(path.join(reportDir, 'evaluation.md'), 'utf8');
    assert.match(md, /\*\*Verdict: promote v5\*\*/);
    const json = await written(reportDir);
    assert.equal(json.promoted, true);
    assert.equal(json.view.size, 24);
    assert.equal(json.baseline!.view.size, 16);
    assert.equal(json.baseline!.model.version, 'v4');
    const groups = json.comparison!['as-is']!.groups;
    assert.deepEqual(Object.keys(groups), ['kitchen', 'phone', 'unseen sources', 'all']);
    assert.equal(groups['unseen sources']!.accuracy.onlyCandidate, 10);
    assert.equal(groups['kitchen']!.photos + groups['phone']!.photos, groups['all']!.photos);

    // Photo by photo: v4 takes every Rice photo for Egg, v5 gets it; each row says where the photo came from.
    const rows = await predictions(reportDir);
    assert.equal(rows.length, 36);
    assert.deepEqual(Object.keys(rows[0]!), [
      ...['file', 'set', 'source', 'dish', 'left_out', 'truth'],
      ...['candidate as-is', 'baseline as-is', 'compared'],
    ]);
    const rice = rows.filter((r) => r['truth'] === 'Rice');
    assert.ok(rice.length > 0);
    assert.ok(rice.every((r) => r['candidate as-is'] === 'Rice' && r['baseline as-is'] === 'Egg'));
    assert.ok(rows.every((r) => r['compared'] === 'yes'));
    const phoneRows = rows.filter((r) => r['set'] === 'phone');
    assert.equal(phoneRows.length, 30);
    assert.ok(phoneRows.every((r) => r['left_out'] === 'source' && r['source'] === 'phone'));
    // The file as read, and its dish as the name says it (<class>__<n>.jpg: the class is the dish).
    assert.ok(rice.every((r) => path.basename(r['file']!).startsWith('rice__') && r['dish'] === 'rice'));
    assert.ok(rows.every((r) => path.dirname(r['file']!) === path.join(root, r['set']!, r['truth']!)));
  });

  it('--resample dishes: draws dishes, then their photos, says so, and records it', async () => {
    const reportDir = path.join(root, 'report-dishes');
    const result = await modelCli('evaluate', [
      ...['--model', v5, '--baseline', v4, '--resample', 'dishes', '--report-dir', reportDir],
      ...split,
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(
      result.stdout,
      /500 paired resamples of dishes, then photos within each dish, within classes \(--resample dishes\)/,
    );
    // Each class of the shape photos is one dish (rice__<n>.jpg) whose photos all come out alike: every resample
    // draws that dish and then photos of the same outcome, so the intervals are the differences themselves.
    assert.match(
      result.stdout,
      /\| Rice \| 10 \| 0\.0 % → 100\.0 % \| \+100\.0 \| 0 \/ 10 \| 0\.002 \| \+100\.0 to \+100\.0 \|/,
    );
    const json = (await written(reportDir)) as Written & { compared?: { resample?: string } };
    assert.equal(json.compared?.resample, 'dishes');
    const photoByPhoto = await modelCli('evaluate', ['--model', v5, '--baseline', v4, ...split]);
    assert.match(photoByPhoto.stdout, /500 paired resamples of photos within classes \(seed 1\)/);
  });

  it('tables the dishes left out, each with both models’ right answers', async () => {
    // 12 photos a class as four dishes of 3 (src__<class>-<k>__<n>.jpg), every dish held out; v4 misses every Rice.
    const dishRoot = path.join(root, 'dishes');
    await writeFolderDataset(dishRoot, 12);
    for (const cls of await fs.readdir(dishRoot))
      for (const file of await fs.readdir(path.join(dishRoot, cls))) {
        const n = Number(/__(\d+)\.jpg$/.exec(file)![1]);
        await fs.rename(
          path.join(dishRoot, cls, file),
          path.join(dishRoot, cls, `src__${cls.toLowerCase()}-${n % 4}__${n}.jpg`),
        );
      }
    const flags = [
      '--data',
      dishRoot,
      '--split',
      'validation',
      '--validation-dishes',
      '100',
      '--resamples',
      '200',
    ];
    const result = await modelCli('evaluate', ['--model', v5, '--baseline', v4, ...flags]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /Per dish, the dishes left out \(12\):/);
    assert.match(result.stdout, /\| Bread \| src__bread-0 \| 3 \| 3 → 3 \| \+0\.0 \|/);
    for (let k = 0; k < 4; k++)
      assert.match(
        result.stdout,
        new RegExp(`\\| Rice \\| src__rice-${k} \\| 3 \\| 0 → 3 \\| \\+100\\.0 \\|`),
      );
    // Without dishes left out there is no such table.
    const none = await modelCli('evaluate', ['--model', v5, '--baseline', v4, ...split]);
    assert.doesNotMatch(none.stdout, /Per dish, the dishes left out/);
  });

  it('does not promote a candidate whose gain does not clear --margin, and still exits 0', async () => {
    const result = await modelCli('evaluate', ['--model', v5, '--baseline', v4, '--margin', '40', ...split]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /\*\*Verdict: do not promote v5\*\*; keep v4\./);
    assert.match(
      result.stdout,
      /- FAIL: unseen sources must be better \(Δ > 0, interval's lower end > \+40\.0\)/,
    );
  });

  it('with --require-promotion, exits 1 when the candidate is worse', async () => {
    const result = await modelCli('evaluate', [
      '--model',
      v4,
      '--baseline',
      v5,
      '--require-promotion',
      ...split,
    ]);
    assert.equal(result.code, 1, result.stderr + result.stdout);
    assert.match(result.stdout, /\*\*Verdict: do not promote v4\*\*; keep v5\./);
    assert.match(
      result.stdout,
      /- FAIL: all must not be significantly worse .*-33\.3 points \(-33\.3 to -33\.3\), McNemar p < 0\.001\./,
    );
    assert.match(
      result.stdout,
      /Classes significantly worse \(they do not decide\): unseen sources: Rice; all: Rice\./,
    );
  });

  it('--crops: scores each crop set with its time per photo, and compares a view with the model’s own', async () => {
    const reportDir = path.join(root, 'report-crops');
    const crops = await modelCli('evaluate', [
      ...['--model', v5, '--crops', 'cover', 'fill', 'cover+corners', '--report-dir', reportDir],
      ...split,
    ]);
    assert.equal(crops.code, 0, crops.stderr + crops.stdout);
    assert.match(crops.stdout, /\| photos \| as-is · cover \| as-is · fill \| as-is · cover\+corners \|/);
    assert.match(
      crops.stdout,
      /\| ms per photo, decoding included \(model alone\)( \| \d+\.\d \(\d+\.\d\)){3} \|/,
    );
    assert.match(
      crops.stdout,
      /unseen sources \(validation split, look as-is, crops cover\+corners\) — model v5/,
    );
    const json = await written(reportDir);
    assert.deepEqual(
      Object.entries(json.timings).map(([label, t]) => [label, t.crops]),
      [
        ['as-is · cover', 1],
        ['as-is · fill', 1],
        ['as-is · cover+corners', 5],
      ],
    );
    // Without a baseline, one column per way of scoring and no comparison.
    assert.deepEqual(Object.keys((await predictions(reportDir))[0]!).slice(6), [
      'candidate as-is · cover',
      'candidate as-is · fill',
      'candidate as-is · cover+corners',
    ]);

    // The view check as a paired test: the same model, its whole photo against its own centre crop. The shape
    // photos are square, so both crops show the same pixels: no disagreement, no promotion.
    const viewCheck = await modelCli('evaluate', [
      '--model',
      v5,
      '--baseline',
      v5,
      '--crops',
      'fill',
      ...split,
    ]);
    assert.equal(viewCheck.code, 0, viewCheck.stderr + viewCheck.stdout);
    assert.match(
      viewCheck.stdout,
      /### Candidate v5 fill against baseline v5 \(validation split, look as-is\)/,
    );
    assert.match(viewCheck.stdout, /\| all \| 36 \| [\d.]+ % → [\d.]+ % \| \+0\.0 \| 0 \/ 0 \| 1\.000 \|/);
    assert.match(viewCheck.stdout, /\*\*Verdict: do not promote v5 fill\*\*/);
  });

  it("leaves out the photos, dishes and sources a model's recorded split trained on", async () => {
    // v4 as an older model would have been trained: split by photo alone (40 %), the phone source trained on.
    const older = path.join(root, 'v4-recorded');
    await fs.cp(v4, older, { recursive: true });
    const file = path.join(older, 'metadata.json');
    const metadata = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    const recorded = { validationPercent: 40, sources: ['kitchen', 'phone'] };
    await fs.writeFile(file, JSON.stringify({ ...metadata, training: { split: recorded } }));
    const roots = [path.join(root, 'kitchen'), path.join(root, 'phone')];
    const scored = loadDataset(roots, { validationPercent: 40, validationSources: ['phone'] }).samples.filter(
      (s) => s.split === 'validation',
    );
    // The older model trained on the phone photos its 40 % left in training; the rest of the phone photos are of a
    // source it trained on and v5 did not. Only the kitchen's validation photos are left to compare.
    const phone = scored.filter((s) => setOf(s) === 'phone');
    const phoneTrained = phone.filter((s) => hashSplit(s.path, 40) === 'train').length;
    const kitchen = scored.length - phone.length;
    assert.ok(phoneTrained > 0 && phoneTrained < phone.length && kitchen > 0);

    const reportDir = path.join(root, 'report-recorded');
    const result = await modelCli('evaluate', [
      ...['--model', v5, '--baseline', older, '--report-dir', reportDir],
      ...split,
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(
      result.stdout,
      new RegExp(
        `${kitchen} of the ${scored.length} scored photos are compared, those both models stand alike on: left ` +
          `out are ${phoneTrained} photos a model trained on, and 0 of dishes and ` +
          `${phone.length - phoneTrained} of sources that one model trained on and the other did not\\.`,
      ),
    );
    assert.match(
      result.stdout,
      /The candidate's metadata records no training split: what it trained on is taken/,
    );
    assert.doesNotMatch(result.stdout, /The baseline's metadata records no training split/);
    const json = await written(reportDir);
    const groups = json.comparison!['as-is']!.groups;
    // Nothing new to both is left: the kitchen must improve instead.
    assert.deepEqual(Object.keys(groups), ['kitchen']);
    assert.equal(groups['kitchen']!.photos, kitchen);
    assert.match(result.stdout, /- (pass|FAIL): kitchen must be better/);

    // Not matched on sources, the phone photos neither model trained on stay: the older model's edge is its data.
    const onDishes = await modelCli('evaluate', [
      ...['--model', v5, '--baseline', older, '--alike', 'dish', '--report-dir', reportDir],
      ...split,
    ]);
    assert.equal(onDishes.code, 0, onDishes.stderr + onDishes.stdout);
    assert.match(
      onDishes.stdout,
      new RegExp(
        `${scored.length - phoneTrained} of the ${scored.length} scored photos are compared, those both models ` +
          `stand alike on but for their sources \\(--alike dish\\): left out are ${phoneTrained} photos a model ` +
          'trained on, and 0 of dishes',
      ),
    );
    assert.match(onDishes.stdout, /\*\*A dish left out may be of a source only one model trained on\*\*/);
    const onDishesJson = (await written(reportDir)) as typeof json & { compared?: { alike?: string } };
    assert.equal(onDishesJson.compared?.alike, 'dish');
    const phoneGroup = onDishesJson.comparison!['as-is']!.groups['phone'];
    assert.equal(phoneGroup?.photos, phone.length - phoneTrained);
    // The photos a model trained on are in the file, marked out of the comparison.
    const rows = await predictions(reportDir);
    assert.equal(rows.length, scored.length);
    assert.equal(rows.filter((r) => r['compared'] === 'no').length, phoneTrained);
  });

  it('refuses options that do not go together, before any work', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--require-promotion'], /--require-promotion needs --baseline/],
      [['--alike', 'dish'], /--alike says how --baseline is compared: give --baseline too/],
      [['--resample', 'dishes'], /--resample says how --baseline is compared: give --baseline too/],
      [
        ['--baseline', v4, '--resample', 'sources'],
        /option '--resample <unit>' argument 'sources' is invalid/,
      ],
      [['--baseline', v4, '--alike', 'source'], /option '--alike <what>' argument 'source' is invalid/],
      [
        ['--baseline', v4, '--crops', 'cover', 'fill'],
        /--baseline compares one way of scoring --model: give at most one --crops/,
      ],
      [['--crops', 'centre'], /--crops centre: crops are cover, fill, corners, joined by '\+'/],
      [['--margin', '-1'], /--margin must be a number ≥ 0/],
    ];
    for (const [args, message] of cases) {
      const result = await modelCli('evaluate', ['--data', 'nowhere', ...args]);
      assert.notEqual(result.code, 0, args.join(' '));
      assert.match(result.stderr, message);
    }
  });
});
