import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Classifier, View } from '../../model/src/index';
import { averageCrops, cropCount, cropViews, parseCropSet } from '../../model/train/crops';
import { loadDataset } from '../../model/train/dataset';
import { predictSamples } from '../../model/train/scoring';
import { writeFolderDataset } from '../fixtures/model/shape-photos';

type RGB = [number, number, number];
const RED: RGB = [255, 0, 0];
const GREEN: RGB = [0, 255, 0];
const BLUE: RGB = [0, 0, 255];
const WHITE: RGB = [255, 255, 255];

/** A PNG (lossless, so colours stay exact) painted by `paint(x, y)`. */
function png(width: number, height: number, paint: (x: number, y: number) => RGB): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set(paint(x, y), (y * width + x) * 3);
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

function pixel(rgb: Uint8Array, size: number, x: number, y: number): RGB {
  const i = (y * size + x) * 3;
  return [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!];
}

function assertColour(actual: RGB, expected: RGB, what: string) {
  assert.ok(
    actual.every((v, i) => Math.abs(v - expected[i]!) <= 40),
    `${what}: got ${actual.join(',')}, expected about ${expected.join(',')}`,
  );
}

describe('crop sets', () => {
  it("are crop names joined by '+', each once", () => {
    assert.deepEqual(parseCropSet('cover+corners'), ['cover', 'corners']);
    assert.equal(cropCount(['cover', 'corners']), 5);
    assert.equal(cropCount(['fill']), 1);
    assert.match(parseCropSet('centre') as string, /crops are cover, fill, corners/);
    assert.match(parseCropSet('cover+') as string, /crops are/);
    assert.match(parseCropSet('fill+fill') as string, /named twice/);
  });

  it('average each photo’s crops, photo by photo', () => {
    const p = (...v: number[]) => Float32Array.from(v);
    const out = averageCrops([p(1, 0), p(0, 1), p(0.5, 0.5), p(0.3, 0.7)], 2);
    assert.deepEqual(
      out.map((v) => Array.from(v, (x) => Math.round(x * 100) / 100)),
      [
        [0.5, 0.5],
        [0.4, 0.6],
      ],
    );
    assert.throws(() => averageCrops([p(1, 0), p(0, 1), p(1, 0)], 2), /not 2 per photo/);
  });
});

describe('cropViews: the parts of a photo the model is shown', () => {
  const view: View = { size: 16, crop: 'cover' };

  it('cover shows the centre square, fill the whole photo', async () => {
    // 96 × 48: red on the left quarter, blue on the right quarter, green between.
    const wide = await png(96, 48, (x) => (x < 24 ? RED : x >= 72 ? BLUE : GREEN));
    const [cover, fill] = await cropViews(wide, view, ['cover', 'fill']);
    assertColour(pixel(cover!, 16, 0, 8), GREEN, "cover's left edge");
    assertColour(pixel(cover!, 16, 15, 8), GREEN, "cover's right edge");
    assertColour(pixel(fill!, 16, 0, 8), RED, "fill's left edge");
    assertColour(pixel(fill!, 16, 15, 8), BLUE, "fill's right edge");
  });

  it('corners shows four squares of 7/8 the side, one in each corner, in reading order', async () => {
    // 64 × 64 quadrants: red, green / blue, white. Each corner crop's centre lies in its own quadrant (the whole
    // photo's centre is where all four meet).
    const quadrants = await png(64, 64, (x, y) => (y < 32 ? (x < 32 ? RED : GREEN) : x < 32 ? BLUE : WHITE));
    const views = await cropViews(quadrants, view, ['corners']);
    assert.equal(views.length, 4);
    [RED, GREEN, BLUE, WHITE].forEach((colour, i) => {
      assert.equal(views[i]!.length, 16 * 16 * 3);
      assertColour(pixel(views[i]!, 16, 8, 8), colour, `corner ${i}'s centre`);
    });
  });

  it("gives the corners the view's JPEG round trip, as the service gives every photo", async () => {
    const photo = await png(64, 64, (x, y) => [
      (x * 37 + y * 11) % 256,
      (x * 5 + y * 53) % 256,
      (x * y) % 256,
    ]);
    const plain = await cropViews(photo, view, ['corners']);
    const jpeg = await cropViews(photo, { ...view, jpegQuality: 30 }, ['corners']);
    const differs = plain[0]!.some((v, i) => Math.abs(v - jpeg[0]![i]!) > 8);
    assert.ok(differs, 'a JPEG at quality 30 changes a busy 16 px view');
  });
});

describe('predictSamples with crops', () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'crops-test-'));
    await writeFolderDataset(path.join(root, 'shapes'), 2);
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('classifies every crop of each photo and answers the class of their mean probability', async () => {
    const samples = loadDataset([path.join(root, 'shapes')], { validationPercent: 0 }).samples;
    const calls: number[] = [];
    // The first crop of each photo (cover) says class 0; the four corners say class 1 more weakly than the mean
    // of all five would need, so only averaging all five answers class 1: (0.6 + 4 × 0.1) / 5 = 0.2 < 0.48.
    const classifier: Classifier = {
      info: { name: 'stub', version: 's', architecture: 'none', inputSize: 8, engine: 'layers' },
      labels: [],
      view: { size: 8, crop: 'cover' },
      classify: async (images) => {
        calls.push(images.length);
        images.forEach((image) => assert.equal(image.length, 8 * 8 * 3));
        return images.map((_, i) => Float32Array.from(i % 5 === 0 ? [0.6, 0.4, 0] : [0.1, 0.5, 0.4]));
      },
      dispose: () => undefined,
    };
    const run = await predictSamples(classifier, samples, { batch: 2, crops: ['cover', 'corners'] });
    assert.deepEqual(calls, [10, 10, 10], '6 photos, 2 a call, 5 crops each');
    assert.deepEqual(Array.from(run.predicted), [1, 1, 1, 1, 1, 1]);
    assert.ok(run.modelMsPerPhoto > 0 && run.modelMsPerPhoto <= run.msPerPhoto, JSON.stringify(run));

    const single = await predictSamples(classifier, samples, { batch: 2 });
    assert.deepEqual(calls.slice(3), [2, 2, 2]);
    assert.deepEqual(
      Array.from(single.predicted),
      [0, 1, 0, 1, 0, 1],
      'without crops, each image is its photo',
    );
  });
});
