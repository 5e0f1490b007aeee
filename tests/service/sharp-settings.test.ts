import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { preprocessPhoto } from '../../model/src/preprocess';
import { applySharpSettings } from '../../service/src/inference/sharp-settings';
import { makeJpeg } from '../helpers/images';

// sharp's CommonJS copy (imported here and by service/src/http/views.ts) and the ES module copy model/src/preprocess.ts loads
// lazily each reset libvips' shared cache to 50 MB when they load: the service's SHARP_CACHE_MB=0 must survive
// the first decode (issue 19 found it undone there).
describe("the service's libvips settings", () => {
  it('keep the operation cache off after photos are decoded', async () => {
    await applySharpSettings({ sharpCacheMb: 0, sharpConcurrency: 1 });
    await preprocessPhoto(await makeJpeg(320, 240), {
      view: { size: 64, crop: 'cover' },
      maxPixels: 1e6,
      decoder: 'sharp',
    });
    const cache = sharp.cache();
    assert.equal(cache.memory.max, 0, JSON.stringify(cache));
    assert.equal(cache.items.max, 0, JSON.stringify(cache));
    assert.equal(sharp.concurrency(), 1);
  });
});
