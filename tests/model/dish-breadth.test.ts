import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FOOD11_LABELS } from '../../model/src/index';
import { type Sample } from '../../model/train/dataset';
import { dishBreadth, dishBreadthToMarkdown } from '../../model/train/dish-breadth';
import { modelCli } from '../helpers/model-cli';

const sample = (file: string, label: number, split: Sample['split'] = 'train'): Sample => ({
  path: `/d/full/${FOOD11_LABELS[label]!.id}/${file}`,
  label,
  split,
  root: '/d/full',
});

describe('dishes trained on, per class', () => {
  it('counts the training photos of each dish, and the dishes an even spread would make', () => {
    const rice = 7; // Rice's index
    const samples = [
      ...Array.from({ length: 8 }, (_, i) => sample(`paella__${i}.jpg`, rice)),
      ...Array.from({ length: 2 }, (_, i) => sample(`src__khao_man_gai__${i}.jpg`, rice)),
      sample('paella__99.jpg', rice, 'validation'),
      sample('risotto__1.jpg', rice, 'validation'),
      sample('IMG_0001.jpg', rice),
      ...Array.from({ length: 3 }, (_, i) => sample(`soup${i}__1.jpg`, 9)),
    ];
    const rows = dishBreadth(samples, FOOD11_LABELS);
    assert.equal(rows.length, FOOD11_LABELS.length);
    const { effectiveDishes, ...counts } = rows[rice]!;
    assert.deepEqual(counts, {
      label: 'Rice',
      photos: 11,
      namedPhotos: 10,
      dishes: 2,
      largest: { dish: 'paella', photos: 8 },
    });
    assert.ok(Math.abs(effectiveDishes - 1 / (0.8 ** 2 + 0.2 ** 2)) < 1e-9, `${effectiveDishes}`);
    assert.equal(rows[9]!.dishes, 3);
    assert.ok(Math.abs(rows[9]!.effectiveDishes - 3) < 1e-9, 'three even dishes count three');
    assert.deepEqual(rows[0], {
      label: 'Bread',
      photos: 0,
      namedPhotos: 0,
      dishes: 0,
      effectiveDishes: 0,
    });
    const markdown = dishBreadthToMarkdown(rows);
    assert.match(markdown, /\| Rice \| 11 \| 10 \| 2 \| 1\.5 \| paella \(8\) \|/);
    assert.match(markdown, /\| Bread \| 0 \| 0 \| 0 \| 0\.0 \| — \|/);
  });
});

describe('npm run train --split-only', () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'split-only-'));
    for (const [cls, dish, n] of [
      ['Rice', 'paella', 6],
      ['Rice', 'fried_rice', 2],
      ['Soup', 'miso_soup', 4],
    ] as const) {
      await fs.mkdir(path.join(root, 'set', cls), { recursive: true });
      for (let i = 0; i < n; i++) await fs.writeFile(path.join(root, 'set', cls, `${dish}__${i}.jpg`), '');
    }
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('says the split and the dishes each class trains on, without a base network or PyTorch', async () => {
    const out = path.join(root, 'model');
    const result = await modelCli('train', [
      '--data',
      path.join(root, 'set'),
      '--validation-percent',
      '0',
      '--validation-dishes',
      '0',
      '--out',
      out,
      '--split-only',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /12 photos train; 0 validate/);
    assert.match(result.stdout, /\| Rice \| 8 \| 8 \| 2 \| 1\.6 \| paella \(6\) \|/);
    assert.match(result.stdout, /\| Soup \| 4 \| 4 \| 1 \| 1\.0 \| miso_soup \(4\) \|/);
    await assert.rejects(fs.access(out), 'nothing written');
  });

  it('still needs --base to train', async () => {
    const result = await modelCli('train', ['--data', path.join(root, 'set')]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /--base <model> is required/);
  });
});
