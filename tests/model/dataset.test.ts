import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DatasetError,
  detectLayout,
  dishOf,
  hashSplit,
  loadDataset,
  alikeFor,
  photoKey,
  recordedSplitOf,
  recordSplit,
  sourceOf,
  trainedIn,
  trainedOn,
  type Sample,
} from '../../model/train/dataset';
import { writeFolderDataset, writeFood11Dataset } from '../fixtures/model/shape-photos';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'dataset-test-'));
  await writeFolderDataset(path.join(root, 'folders'), 10);
  await writeFood11Dataset(path.join(root, 'food11'), 3);
});
after(() => fs.rm(root, { recursive: true, force: true }));

describe('folder-per-class layout', () => {
  it('keeps Food-11 labels and order when the folders are Food-11 classes', () => {
    const ds = loadDataset([path.join(root, 'folders')], { validationPercent: 30 });
    assert.equal(ds.layout, 'folders');
    assert.equal(ds.labels.length, 11);
    assert.equal(ds.labels[3]!.id, 'Egg');
    assert.equal(ds.samples.length, 30);
    const byLabel = new Map<number, number>();
    for (const s of ds.samples) byLabel.set(s.label, (byLabel.get(s.label) ?? 0) + 1);
    assert.deepEqual(
      [...byLabel.entries()].sort((a, b) => a[0] - b[0]),
      [
        [0, 10],
        [3, 10],
        [7, 10],
      ],
    );
    const held = ds.samples.filter((s) => s.split === 'validation').length;
    assert.ok(held > 0 && held < 30, `some but not all photos held out (${held})`);
  });

  it('splits by file name alone, so the same photo in two sets lands on the same side', () => {
    for (const name of ['apple_pie__1.jpg', 'ramen__99.jpg', 'x.png']) {
      assert.equal(hashSplit(`/a/lowres/Dessert/${name}`, 15), hashSplit(`/b/photos/Other/${name}`, 15));
    }
    const names = Array.from({ length: 2000 }, (_, i) => `dish__${i}.jpg`);
    const share = names.filter((n) => hashSplit(n, 15) === 'validation').length / names.length;
    assert.ok(share > 0.12 && share < 0.18, `about 15 % held out, got ${share}`);
  });

  it('uses the folder names as labels when they are not Food-11 classes', async () => {
    const dir = path.join(root, 'custom');
    await writeFolderDataset(dir, 2, ['Bread']);
    await fs.rename(path.join(dir, 'Bread'), path.join(dir, 'zeta'));
    await fs.mkdir(path.join(dir, 'alpha'));
    await fs.copyFile(path.join(dir, 'zeta', 'bread__0.jpg'), path.join(dir, 'alpha', 'a.jpg'));
    const ds = loadDataset([dir], { validationPercent: 0 });
    assert.deepEqual(
      ds.labels.map((l) => l.id),
      ['alpha', 'zeta'],
    );
    assert.ok(ds.samples.every((s) => s.split === 'train'));
  });
});

describe('Food-11 layout', () => {
  it('reads training/, validation/ and evaluation/ with <classIndex>_<n>.jpg', () => {
    assert.equal(detectLayout(path.join(root, 'food11')), 'food11');
    const ds = loadDataset([path.join(root, 'food11')], { validationPercent: 15 });
    assert.equal(ds.layout, 'food11');
    const count = (split: string) => ds.samples.filter((s) => s.split === split).length;
    assert.deepEqual([count('train'), count('validation'), count('evaluation')], [9, 9, 9]);
    assert.deepEqual(
      [...new Set(ds.samples.map((s) => s.label))].sort((a, b) => a - b),
      [0, 3, 7],
    );
  });
});

describe('bad data', () => {
  it('names a missing --data path', () => {
    assert.throws(
      () => loadDataset([path.join(root, 'nope')], { validationPercent: 15 }),
      (e: Error) => e instanceof DatasetError && /nope: no such directory/.test(e.message),
    );
  });

  it('names an empty class folder', async () => {
    const dir = path.join(root, 'empty-class');
    await writeFolderDataset(dir, 2, ['Bread']);
    await fs.mkdir(path.join(dir, 'Egg'));
    await fs.writeFile(path.join(dir, 'Egg', 'notes.txt'), 'not a photo');
    assert.throws(
      () => loadDataset([dir], { validationPercent: 15 }),
      (e: Error) =>
        e instanceof DatasetError && e.message.includes(path.join(dir, 'Egg')) && /no images/.test(e.message),
    );
  });

  it('explains the expected layouts for a folder without class folders', async () => {
    const dir = path.join(root, 'flat');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'a.jpg'), '');
    assert.throws(() => loadDataset([dir], { validationPercent: 15 }), /no class folders found.*training\//s);
  });

  it('rejects a Food-11 file with a class index beyond 10', async () => {
    const dir = path.join(root, 'bad-index');
    await fs.mkdir(path.join(dir, 'training'), { recursive: true });
    await fs.mkdir(path.join(dir, 'validation'));
    await fs.writeFile(path.join(dir, 'training', '11_0.jpg'), '');
    assert.throws(() => loadDataset([dir], { validationPercent: 15 }), /class index 11/);
  });
});

describe('dishes and sources', () => {
  it('reads the dish and the source from the file name', () => {
    assert.equal(dishOf('/d/lowres/Dessert/apple_pie__123.jpg'), 'apple_pie');
    assert.equal(
      dishOf('/d/full/Soup/Puridech__Tom_Yum_Goong__Tom_Yum_Goong_12.jpg'),
      'Puridech__Tom_Yum_Goong',
    );
    assert.equal(dishOf('/labels/Soup/7f3a.jpg'), '7f3a', 'a name without "__" is a dish of its own');
    const sample = (file: string, root: string) => ({ path: file, label: 0, split: 'train' as const, root });
    assert.equal(sourceOf(sample('/d/full/Soup/Puridech__Tom_Yum__1.jpg', '/d/full')), 'full/Puridech');
    assert.equal(sourceOf(sample('/d/lowres/Soup/miso_soup__1.jpg', '/d/lowres')), 'lowres');
  });

  it('leaves whole dishes out of training, never a main dish of its class, on the same side in every set', async () => {
    const write = async (set: string, dish: string, n: number) => {
      await fs.mkdir(path.join(root, 'dishes', set, 'Soup'), { recursive: true });
      for (let i = 0; i < n; i++)
        await fs.writeFile(path.join(root, 'dishes', set, 'Soup', `${dish}__${i}.jpg`), '');
    };
    const small = Array.from({ length: 30 }, (_, i) => `soup${i}`);
    for (const dish of small) {
      await write('a', dish, 3);
      await write('b', dish, 2);
    }
    // 200 of 350: a main dish, never left out whole (its hash alone, 18.5 of 100, would leave it out)
    await write('a', 'big_soup', 200);
    const folders = ['a', 'b'].map((s) => path.join(root, 'dishes', s));
    const ds = loadDataset(folders, { validationPercent: 10, validationDishPercent: 30 });
    const byDish = new Map<string, Set<string>>();
    for (const s of ds.samples) {
      const key = dishOf(s.path);
      byDish.set(key, (byDish.get(key) ?? new Set()).add(s.unseenDish ? 'unseen' : s.split));
    }
    const unseen = small.filter((d) => byDish.get(d)!.has('unseen'));
    assert.ok(
      unseen.length >= 3 && unseen.length <= 18,
      `about 30 % of 30 dishes left out, got ${unseen.length}`,
    );
    for (const d of unseen)
      assert.deepEqual([...byDish.get(d)!], ['unseen'], `${d}: every photo, in both sets`);
    assert.ok(!byDish.get('big_soup')!.has('unseen'));
    assert.ok(ds.samples.every((s) => !s.unseenDish || s.split === 'validation'));
    const again = loadDataset(folders, { validationPercent: 10, validationDishPercent: 30 });
    assert.deepEqual(again.samples, ds.samples, 'the same split on every run');
  });

  it('leaves whole sources out of training, every photo of them validation, and names an unknown one', async () => {
    const dir = path.join(root, 'sources', 'full');
    for (const [source, cls] of [
      ['phone', 'Egg'],
      ['phone', 'Rice'],
      ['web', 'Egg'],
      ['web', 'Rice'],
    ] as const) {
      await fs.mkdir(path.join(dir, cls), { recursive: true });
      for (let i = 0; i < 20; i++)
        await fs.writeFile(path.join(dir, cls, `${source}__dish${cls}__${i}.jpg`), '');
    }
    const plain = loadDataset([dir], { validationPercent: 20 });
    const ds = loadDataset([dir], { validationPercent: 20, validationSources: ['phone'] });
    const phone = ds.samples.filter((s) => path.basename(s.path).startsWith('phone__'));
    assert.equal(phone.length, 40);
    assert.ok(phone.every((s) => s.split === 'validation' && s.unseenSource === true));
    const web = ds.samples.filter((s) => path.basename(s.path).startsWith('web__'));
    assert.ok(web.every((s) => !s.unseenSource));
    assert.deepEqual(
      web.map((s) => s.split),
      plain.samples.filter((s) => path.basename(s.path).startsWith('web__')).map((s) => s.split),
      "the other sources' split does not move",
    );
    assert.ok(web.some((s) => s.split === 'train'));
    // The full name works as well as the last part; a typo is refused rather than trained on.
    const byFullName = loadDataset([dir], { validationPercent: 20, validationSources: ['full/phone'] });
    assert.deepEqual(byFullName.samples, ds.samples);
    assert.throws(
      () => loadDataset([dir], { validationPercent: 20, validationSources: ['phones'] }),
      (e: Error) =>
        e instanceof DatasetError && /--validation-sources phones: no photo comes from it/.test(e.message),
    );
  });

  it('caps the photos of a class per data folder, the same ones every time', async () => {
    const capped = loadDataset([path.join(root, 'folders')], { validationPercent: 30, maxPerClass: 4 });
    assert.equal(capped.samples.length, 12);
    const again = loadDataset([path.join(root, 'folders')], { validationPercent: 30, maxPerClass: 4 });
    assert.deepEqual(
      again.samples.map((s) => s.path),
      capped.samples.map((s) => s.path),
    );
  });
});

describe("a model's recorded split", () => {
  /** `full`-style photos: `<source>__<dish>__<n>.jpg`, 12 of each dish. */
  async function writeSource(dir: string, source: string, dishes: [string, string][]): Promise<void> {
    for (const [cls, dish] of dishes) {
      await fs.mkdir(path.join(dir, cls), { recursive: true });
      for (let i = 0; i < 12; i++)
        await fs.writeFile(path.join(dir, cls, `${source}__${dish}__${i}.jpg`), '');
    }
  }
  const dishes: [string, string][] = [
    ['Egg', 'omelette'],
    ['Egg', 'frittata'],
    ['Egg', 'shakshuka'],
    ['Egg', 'tamagoyaki'],
    ['Rice', 'risotto'],
    ['Rice', 'paella'],
    ['Rice', 'biryani'],
    ['Rice', 'jollof'],
  ];

  it('makes the same split again after a new source arrives, though the cap and the dish split would move', async () => {
    const dir = path.join(root, 'recorded', 'full');
    await writeSource(dir, 'old', dishes);
    const options = { validationPercent: 20, validationDishPercent: 40, maxPerClass: 30 };
    const then = loadDataset([dir], options);
    const split = recordSplit(then, options);
    assert.deepEqual(split.sources, ['full/old']);
    const trained = then.samples.filter((s) => s.split === 'train');
    assert.ok(trained.length > 0 && trained.length < then.samples.length);

    // A new source doubles every class: the cap of 30 now picks other photos, and the dish split counts anew.
    await writeSource(dir, 'new', dishes);
    const now = loadDataset([dir], options);
    const oldOf = (ds: typeof then) =>
      ds.samples.filter((s) => s.path.includes('old__')).map((s) => [s.path, s.split]);
    assert.notDeepEqual(oldOf(now), oldOf(then), 'made afresh, the old photos split another way');
    const again = loadDataset([dir], split);
    assert.deepEqual(
      again.samples.map((s) => [s.path, s.split, s.unseenDish ?? false]),
      then.samples.map((s) => [s.path, s.split, s.unseenDish ?? false]),
    );

    const seen = trainedOn([dir], split);
    assert.deepEqual([...seen.photos].sort(), trained.map(photoKey).sort());
    assert.deepEqual([...seen.sources], ['full/old']);
    assert.ok(seen.dishes.size > 0);
  });

  it('compares only photos both models stand alike on: neither trained on the photo, and both or neither on its dish and source', async () => {
    const dir = path.join(root, 'fair', 'full');
    await writeSource(dir, 'old', dishes);
    await writeSource(dir, 'phone', [
      ['Egg', 'omelette'],
      ['Rice', 'fried_rice'],
    ]);
    // The older model: no dish held out, no source left out, the phone photos not yet there.
    const olderOptions = { validationPercent: 20, sources: ['full/old'] };
    const older = trainedOn([dir], recordSplit(loadDataset([dir], olderOptions), olderOptions));
    // The newer one leaves the phone source out whole, and some dishes of the old source.
    const newer = loadDataset([dir], {
      validationPercent: 20,
      validationDishPercent: 40,
      validationSources: ['phone'],
    });
    const validation = newer.samples.filter((s) => s.split === 'validation');
    const alike = alikeFor(validation, [trainedIn(newer.samples), older]);

    positionsMatch(alike.positions, alike.samples, validation);
    const { photo, dish, source } = alike.leftOut;
    assert.equal(alike.samples.length + photo + dish + source, validation.length);
    // The older model trained on most photos of the old dishes the newer split holds out; the rest of those
    // photos are of a dish one model trained on and the other did not.
    assert.ok(photo > 0 && dish > 0, `left out: ${JSON.stringify(alike.leftOut)}`);
    for (const s of alike.samples) {
      assert.ok(!older.photos.has(photoKey(s)), `${s.path}: the older model trained on it`);
      assert.ok(
        !(s.path.includes('old__') && validation[alike.positions[alike.samples.indexOf(s)]!]!.unseenDish),
      );
    }
    // Every phone photo stays, an unseen source for both: neither model trained on that source.
    const phone = alike.samples.filter((s) => sourceOf(s) === 'full/phone');
    assert.equal(phone.length, 24);
    assert.ok(phone.every((s) => s.unseenSource));
    // Against itself a model stands alike on every photo of its own validation.
    const self = alikeFor(validation, [trainedIn(newer.samples)]);
    assert.deepEqual(self.samples, validation);
    assert.deepEqual(self.leftOut, { photo: 0, dish: 0, source: 0 });
  });

  it('compares, not matched on sources, the dishes neither trained on from a source only one trained on', async () => {
    const dir = path.join(root, 'fair-dishes', 'full');
    await writeSource(dir, 'old', dishes);
    const olderOptions = { validationPercent: 20, sources: ['full/old'] };
    const older = trainedOn([dir], recordSplit(loadDataset([dir], olderOptions), olderOptions));
    // A source only the newer model has: it trains on some of its dishes and leaves the others out.
    await writeSource(dir, 'market', dishes);
    const newer = loadDataset([dir], { validationPercent: 20, validationDishPercent: 40 });
    const validation = newer.samples.filter((s) => s.split === 'validation');
    const models = [trainedIn(newer.samples), older];
    const onSources = alikeFor(validation, models);
    const onDishes = alikeFor(validation, models, { sources: false });

    const market = validation.filter((s) => sourceOf(s) === 'full/market');
    const marketLeftOut = market.filter((s) => s.unseenDish);
    assert.ok(
      marketLeftOut.length > 0 && marketLeftOut.length < market.length,
      'some market dishes left out',
    );
    assert.equal(
      onSources.leftOut.source,
      marketLeftOut.length,
      "only the newer model trained on market's others",
    );
    assert.equal(onDishes.leftOut.source, 0);
    assert.deepEqual(
      { photo: onDishes.leftOut.photo, dish: onDishes.leftOut.dish },
      { photo: onSources.leftOut.photo, dish: onSources.leftOut.dish },
    );
    const kept = onDishes.samples.filter((s) => sourceOf(s) === 'full/market' && s.unseenDish);
    assert.equal(kept.length, marketLeftOut.length, 'they stay, still dishes left out');
    positionsMatch(onDishes.positions, onDishes.samples, validation);
  });

  function positionsMatch(positions: number[], kept: Sample[], from: Sample[]): void {
    assert.equal(kept.length, positions.length);
    positions.forEach((p, i) => assert.equal(kept[i]!.path, from[p]!.path));
  }

  it('reads a recorded split from metadata, and refuses a malformed one', () => {
    assert.equal(recordedSplitOf(undefined), undefined);
    assert.equal(recordedSplitOf({ epochs: 3 }), undefined);
    const split = {
      validationPercent: 15,
      validationDishPercent: 15,
      maxPerClass: 1200,
      sources: ['lowres'],
    };
    assert.deepEqual(recordedSplitOf({ split }), split);
    assert.throws(
      () => recordedSplitOf({ split: { validationPercent: 15, sources: [] } }),
      (e: Error) =>
        e instanceof DatasetError && /training\.split is not a recorded split: sources/.test(e.message),
    );
  });
});
