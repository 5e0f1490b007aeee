import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { DatasetError, type Sample } from '../../model/train/dataset';
import {
  NEAR_TWIN_BITS,
  hammingDistance,
  hashPhotos,
  hashesOfGrey,
  nearTwins,
  nearTwinsToMarkdown,
  photoHashes,
} from '../../model/train/near-duplicates';
import { mulberry32 } from '../../model/train/random';
import { modelCli } from '../helpers/model-cli';

/**
 * A photo-like picture, different for each seed: a few discs of colour over a shaded background. Flat colour would
 * not do: where neighbours are equal, a JPEG's noise decides which is brighter, as it does nowhere in a photo.
 */
function scene(seed: number, width: number, height: number): Buffer {
  const random = mulberry32(seed);
  const shade = [random() - 0.5, random() - 0.5].map((v) => v * 160);
  const discs = Array.from({ length: 7 }, () => ({
    x: random() * width,
    y: random() * height,
    r: (0.1 + 0.25 * random()) * Math.min(width, height),
    rgb: [random() * 255, random() * 255, random() * 255],
  }));
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const light = 128 + shade[0]! * (x / width - 0.5) * 2 + shade[1]! * (y / height - 0.5) * 2;
      let rgb = [light, light, light];
      for (const d of discs)
        if ((x - d.x) ** 2 + (y - d.y) ** 2 < d.r ** 2) rgb = d.rgb.map((c) => (c + light) / 2);
      px.set(
        rgb.map((c) => Math.round(Math.min(255, Math.max(0, c)))),
        (y * width + x) * 3,
      );
    }
  return px;
}

const jpeg = (seed: number, width: number, height: number, quality = 90) =>
  sharp(scene(seed, width, height), { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();

describe('perceptual hashes', () => {
  const grey = (f: (x: number, y: number) => number) =>
    Float64Array.from({ length: 32 * 32 }, (_, i) => f(i % 32, Math.floor(i / 32)));

  it('do not change when the whole photo is brighter', () => {
    const pattern = (x: number, y: number) => 100 + 60 * Math.sin(x / 3) * Math.cos(y / 5);
    const a = hashesOfGrey(grey(pattern));
    const b = hashesOfGrey(grey((x, y) => pattern(x, y) + 40));
    assert.equal(hammingDistance(a.dHash, b.dHash), 0);
    assert.equal(hammingDistance(a.pHash, b.pHash), 0);
  });

  it('set many bits apart for a different picture', () => {
    const a = hashesOfGrey(grey((x, y) => 100 + 60 * Math.sin(x / 3) * Math.cos(y / 5)));
    const b = hashesOfGrey(grey((x) => 4 * x));
    assert.ok(hammingDistance(a.dHash, b.dHash) > NEAR_TWIN_BITS);
    assert.ok(hammingDistance(a.pHash, b.pHash) > NEAR_TWIN_BITS);
  });

  it('refuse a thumbnail of the wrong size', () => {
    assert.throws(() => hashesOfGrey(new Float64Array(100)), /32×32/);
  });

  it('count the bits two hashes differ by', () => {
    assert.equal(hammingDistance(0n, 0n), 0);
    assert.equal(hammingDistance(0xffn, 0x0fn), 4);
    assert.equal(hammingDistance(0xffffffffffffffffn, 0n), 64);
  });
});

describe('near twins of validation photos in training', () => {
  let root: string;
  const file = (...parts: string[]) => path.join(root, 'set', ...parts);
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'near-twins-'));
    await fs.mkdir(file('Rice'), { recursive: true });
    await fs.mkdir(file('Soup'), { recursive: true });
    // A photo, and the same photo smaller, re-encoded and resaved under another dish's name.
    await fs.writeFile(file('Rice', 'paella__1.jpg'), await jpeg(1, 400, 300));
    await fs.writeFile(
      file('Rice', 'risotto__7.jpg'),
      await sharp(await jpeg(1, 400, 300))
        .resize(200, 150)
        .jpeg({ quality: 60 })
        .toBuffer(),
    );
    for (const [name, seed] of [
      ['paella__2.jpg', 2],
      ['risotto__8.jpg', 3],
    ] as const)
      await fs.writeFile(file('Rice', name), await jpeg(seed, 320, 320));
    for (let i = 0; i < 3; i++)
      await fs.writeFile(file('Soup', `miso__${i}.jpg`), await jpeg(10 + i, 300, 300));
    // Twins of each other, both validating: not a twin in training.
    await fs.writeFile(
      file('Soup', 'miso__9.jpg'),
      await sharp(await fs.readFile(file('Soup', 'miso__1.jpg')))
        .jpeg({ quality: 70 })
        .toBuffer(),
    );
    await fs.writeFile(file('Soup', 'broken__1.jpg'), 'not a photo');
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  const sample = (
    cls: string,
    name: string,
    split: Sample['split'],
    extra: Partial<Sample> = {},
  ): Sample => ({
    path: file(cls, name),
    label: cls === 'Rice' ? 7 : 9,
    split,
    root: path.join(root, 'set'),
    ...extra,
  });

  it('finds a resized, re-encoded copy, and no photo unlike it', async () => {
    const copy = await photoHashes(file('Rice', 'risotto__7.jpg'));
    const original = await photoHashes(file('Rice', 'paella__1.jpg'));
    assert.ok(hammingDistance(copy.dHash, original.dHash) <= NEAR_TWIN_BITS);
    assert.ok(hammingDistance(copy.pHash, original.pHash) <= NEAR_TWIN_BITS);
    const other = await photoHashes(file('Rice', 'paella__2.jpg'));
    assert.ok(hammingDistance(other.dHash, original.dHash) > NEAR_TWIN_BITS);
  });

  it('pairs each validation photo with its twins in training only, and counts them per group', async () => {
    const samples = [
      sample('Rice', 'paella__1.jpg', 'train'),
      sample('Rice', 'paella__2.jpg', 'train'),
      sample('Rice', 'risotto__7.jpg', 'validation', { unseenDish: true }),
      sample('Rice', 'risotto__8.jpg', 'validation', { unseenDish: true }),
      sample('Soup', 'miso__0.jpg', 'train'),
      sample('Soup', 'miso__1.jpg', 'validation'),
      sample('Soup', 'miso__2.jpg', 'validation'),
      sample('Soup', 'miso__9.jpg', 'validation'),
    ];
    const cacheFile = path.join(root, 'cache', 'hashes.json');
    const hashes = await hashPhotos(
      samples.map((s) => s.path),
      cacheFile,
    );
    const twins = nearTwins(samples, hashes);
    assert.deepEqual(
      twins.map((t) => [path.basename(t.validation.path), path.basename(t.training.path)]),
      [['risotto__7.jpg', 'paella__1.jpg']],
    );
    const markdown = nearTwinsToMarkdown(samples, twins);
    assert.match(markdown, /\| dishes left out \| `set` \| 2 \| 1 \(50\.0 %\) \|/);
    assert.match(markdown, /\| by photo \| `set` \| 3 \| 0 \(0\.0 %\) \|/);
    assert.match(
      markdown,
      /\| set\/Rice\/risotto__7\.jpg \| dishes left out \| set\/Rice\/paella__1\.jpg \| \d, \d \|/,
    );
  });

  it('reuses the cache while a file is unchanged, and hashes it again once it changes', async () => {
    const cacheFile = path.join(root, 'cache', 'reuse.json');
    const photo = file('Soup', 'miso__0.jpg');
    const first = await hashPhotos([photo], cacheFile);
    const cache = JSON.parse(await fs.readFile(cacheFile, 'utf8')) as {
      photos: Record<string, { dHash: string }>;
    };
    assert.equal(cache.photos[photo]!.dHash, first.get(photo)!.dHash.toString(16));
    // A cached value no decoder would give: read back, it shows the photo was not decoded again.
    cache.photos[photo]!.dHash = '1';
    await fs.writeFile(cacheFile, JSON.stringify(cache));
    assert.equal((await hashPhotos([photo], cacheFile)).get(photo)!.dHash, 1n);
    const later = new Date(Date.now() + 60_000);
    await fs.utimes(photo, later, later);
    assert.equal((await hashPhotos([photo], cacheFile)).get(photo)!.dHash, first.get(photo)!.dHash);
  });

  it('hashes again over a cache file it cannot read', async () => {
    const cacheFile = path.join(root, 'cache', 'torn.json');
    const photo = file('Soup', 'miso__0.jpg');
    await fs.writeFile(cacheFile, '{"version": 1, "pho');
    const hashes = await hashPhotos([photo], cacheFile);
    assert.equal(hashes.get(photo)!.pHash, (await photoHashes(photo)).pHash);
    assert.ok(JSON.parse(await fs.readFile(cacheFile, 'utf8')).photos[photo]);
  });

  it('stops on a photo it cannot decode, naming it', async () => {
    await assert.rejects(
      hashPhotos([file('Soup', 'broken__1.jpg')], path.join(root, 'cache', 'broken.json')),
      (err: Error) => err instanceof DatasetError && /broken__1\.jpg: .*not a JPEG, PNG/.test(err.message),
    );
  });
});

describe('npm run train --split-only --near-duplicates', () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'split-twins-'));
    await fs.mkdir(path.join(root, 'set', 'Rice'), { recursive: true });
    // Source b, left out, shares one of its two pictures with source a, which trains.
    for (const [name, seed] of [
      ['a__paella__1.jpg', 1],
      ['a__paella__2.jpg', 2],
      ['b__paella__1.jpg', 1],
      ['b__risotto__3.jpg', 3],
    ] as const)
      await fs.writeFile(path.join(root, 'set', 'Rice', name), await jpeg(seed, 240, 240));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('adds the table of twins to the split, and keeps the hashes in --cache-dir', async () => {
    const cacheDir = path.join(root, 'cache');
    const result = await modelCli('train', [
      '--data',
      path.join(root, 'set'),
      '--validation-percent',
      '0',
      '--validation-dishes',
      '0',
      '--validation-sources',
      'b',
      '--cache-dir',
      cacheDir,
      '--split-only',
      '--near-duplicates',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /2 photos train; 2 validate, 0 of them of dishes left out whole and 2 of sources/,
    );
    assert.match(result.stdout, /\| sources left out \| `set` \| 2 \| 1 \(50\.0 %\) \|/);
    assert.match(
      result.stdout,
      /\| set\/Rice\/b__paella__1\.jpg \| sources left out \| set\/Rice\/a__paella__1\.jpg \|/,
    );
    await fs.access(path.join(cacheDir, 'photo-hashes.json'));
  });
});
