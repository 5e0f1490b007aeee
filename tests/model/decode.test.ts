import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { initBackend } from '../../model/src/index';
import { cropWindow, decodeForModel, VARIANTS, VIEW_RECIPES } from '../../model/train/decode';
import { seededRandom } from '../../model/train/prng';

const SIZE = 32;
let dir: string;
let photo: string;

/** What the classifier's test-time flip feeds the backbone: tf.reverse of the decoded input along its width. */
async function servedMirror(rgb: Uint8Array): Promise<Uint8Array> {
  const x = tf.tensor3d(rgb, [SIZE, SIZE, 3], 'int32');
  const mirrored = tf.reverse(x, 1);
  const out = Uint8Array.from(await mirrored.data());
  tf.dispose([x, mirrored]);
  return out;
}

describe('training views', () => {
  before(async () => {
    await initBackend('wasm');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gg-views-'));
    // Noise on an odd, non-square canvas: a centre crop that cannot be exactly centred, and no symmetry to hide
    // a view that is mirrored before it is cropped.
    const random = seededRandom(7);
    const [w, h] = [301, 203];
    const pixels = Buffer.from(Array.from({ length: w * h * 3 }, () => Math.floor(random() * 256)));
    photo = path.join(dir, 'noise.png');
    await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(photo);
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('the flip view is exactly what the test-time flip sees', async () => {
    const plain = await decodeForModel(photo, SIZE, 'cover', 'plain');
    const flip = await decodeForModel(photo, SIZE, 'cover', 'flip');
    assert.deepEqual(flip, await servedMirror(plain));
    assert.notDeepEqual(flip, plain);
  });

  it('the 64 px look, mirrored, is the mirror of the 64 px look', async () => {
    const lowres = await decodeForModel(photo, SIZE, 'cover', 'lowres');
    const lowresFlip = await decodeForModel(photo, SIZE, 'cover', 'lowres-flip');
    assert.deepEqual(lowresFlip, await servedMirror(lowres));
  });

  it('the crop view is a zoomed-in window, the same on every run', async () => {
    const plain = await decodeForModel(photo, SIZE, 'cover', 'plain');
    const crop = await decodeForModel(photo, SIZE, 'cover', 'crop');
    assert.equal(crop.length, plain.length);
    assert.notDeepEqual(crop, plain);
    assert.deepEqual(await decodeForModel(photo, SIZE, 'cover', 'crop'), crop);
  });

  it('crop windows stay inside the zoomed square and vary from photo to photo', () => {
    const windows = Array.from({ length: 200 }, (_, i) => cropWindow(`/data/Egg/egg_${i}.jpg`, 224));
    for (const w of windows) {
      assert.ok(
        w.zoomed >= Math.round(224 / 0.9) && w.zoomed <= Math.round(224 / 0.75),
        `zoomed ${w.zoomed}`,
      );
      assert.ok(w.left >= 0 && w.left + 224 <= w.zoomed, `left ${w.left} of ${w.zoomed}`);
      assert.ok(w.top >= 0 && w.top + 224 <= w.zoomed, `top ${w.top} of ${w.zoomed}`);
    }
    assert.ok(new Set(windows.map((w) => `${w.zoomed},${w.left},${w.top}`)).size > 150);
    // The name decides it, not the folder: a photo keeps its crop wherever the data set lives.
    assert.deepEqual(cropWindow('/a/Egg/x.jpg', 224), cropWindow('/b/Egg/x.jpg', 224));
  });

  it('every view has its own folder in the feature cache', () => {
    const recipes = VARIANTS.map((v) => VIEW_RECIPES[v]);
    assert.equal(new Set(recipes).size, VARIANTS.length);
  });
});
