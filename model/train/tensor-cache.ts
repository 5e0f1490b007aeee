import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import type { View } from '../src';
import { DatasetError, setOf, sourceOf, type Sample } from './dataset';
import { viewPhotoFile } from './photo-file';

/**
 * The photos as the model sees them, written once for the PyTorch trainer (model/train/finetune.py) to read:
 * every pixel comes from `preprocessPhoto`, the service's own preprocessing, so training and serving cannot
 * drift apart. `pixels.u8` holds N × size × size × 3 bytes (RGB, HWC) in `index.json`'s sample order.
 */

export interface CacheSample {
  file: string;
  label: number;
  split: Sample['split'];
  /** The --data folder's base name ('lowres', 'photos', …): validation is scored per set. */
  set: string;
  /** The set and, for `<source>__<dish>__<name>` files, the source ('full/Puridech'): scored per source too. */
  source: string;
  /** A validation photo of a dish left out of training whole. */
  unseenDish: boolean;
  /** A validation photo of a source left out of training whole. */
  unseenSource: boolean;
}

export interface CacheIndex {
  /** Changes with the view, the photos and their labels: a cache is reused only when all three match. */
  key: string;
  view: View;
  classes: number;
  count: number;
  samples: CacheSample[];
}

function cacheKey(view: View, samples: CacheSample[], classes: number): string {
  const h = createHash('sha256').update(JSON.stringify({ view, classes, recipe: 1 }));
  for (const s of samples) {
    const unseen = `${s.unseenDish ? 'unseen' : ''}${s.unseenSource ? '-source' : ''}`;
    h.update(`${s.file}\0${s.label}\0${s.split}\0${unseen}\0`);
  }
  return h.digest('hex').slice(0, 16);
}

function cacheSamples(samples: Sample[]): CacheSample[] {
  return samples.map((s) => ({
    file: s.path,
    label: s.label,
    split: s.split,
    set: setOf(s),
    source: sourceOf(s),
    unseenDish: s.unseenDish ?? false,
    unseenSource: s.unseenSource ?? false,
  }));
}

/**
 * Writes (or reuses) the cache for these samples under `<root>/<key>` and returns its folder. Photos are
 * preprocessed a few at a time in order; a photo that cannot be decoded stops the run with its name.
 */
export async function buildTensorCache(opts: {
  samples: Sample[];
  view: View;
  classes: number;
  root: string;
  concurrency?: number;
  log?: (msg: string) => void;
}): Promise<{ dir: string; index: CacheIndex; reused: boolean }> {
  const samples = cacheSamples(opts.samples);
  const key = cacheKey(opts.view, samples, opts.classes);
  const dir = path.join(opts.root, key);
  const indexFile = path.join(dir, 'index.json');
  if (existsSync(indexFile)) {
    const index = JSON.parse(await fs.readFile(indexFile, 'utf8')) as CacheIndex;
    return { dir, index, reused: true };
  }
  await fs.mkdir(dir, { recursive: true });
  const bytesPerPhoto = opts.view.size * opts.view.size * 3;
  const partial = path.join(dir, 'pixels.u8.partial');
  const out = createWriteStream(partial);
  const concurrency = opts.concurrency ?? 4;
  const started = Date.now();
  for (let start = 0; start < samples.length; start += concurrency) {
    const part = samples.slice(start, start + concurrency);
    const decoded = await Promise.all(
      part.map(async (s) => {
        try {
          return await viewPhotoFile(s.file, opts.view);
        } catch (err) {
          throw new DatasetError(`${s.file}: ${(err as Error).message}`);
        }
      }),
    );
    for (const rgb of decoded) {
      if (rgb.length !== bytesPerPhoto)
        throw new Error(`Internal: ${rgb.length} bytes, not ${bytesPerPhoto}.`);
      if (!out.write(rgb)) await once(out, 'drain');
    }
    const done = start + part.length;
    if (opts.log && (done % 5000 < concurrency || done === samples.length)) {
      opts.log(
        `tensor cache: ${done}/${samples.length} photos (${Math.round((Date.now() - started) / 1000)} s)`,
      );
    }
  }
  out.end();
  await once(out, 'finish');
  await fs.rename(partial, path.join(dir, 'pixels.u8'));
  const index: CacheIndex = { key, view: opts.view, classes: opts.classes, count: samples.length, samples };
  // Written last: a cache folder with an index is complete.
  await fs.writeFile(indexFile, JSON.stringify(index));
  return { dir, index, reused: false };
}
