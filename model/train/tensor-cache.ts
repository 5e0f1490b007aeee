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

/** How photos become pixels here: a change to it must change both keys, so no old pixels are reused. */
const RECIPE = 1;

function cacheKey(view: View, samples: CacheSample[], classes: number): string {
  const h = createHash('sha256').update(JSON.stringify({ view, classes, recipe: RECIPE }));
  for (const s of samples) {
    const unseen = `${s.unseenDish ? 'unseen' : ''}${s.unseenSource ? '-source' : ''}`;
    h.update(`${s.file}\0${s.label}\0${s.split}\0${unseen}\0`);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * What the pixels depend on: the view and the photos in order, not their split. A cache of the same photos split
 * another way (a source or a dish share left out) shares its pixels instead of decoding 45,000 photos again.
 */
function pixelsKey(view: View, files: string[]): string {
  const h = createHash('sha256').update(JSON.stringify({ view, recipe: RECIPE }));
  for (const file of files) h.update(`${file}\0`);
  return h.digest('hex');
}

/** A complete sibling cache whose pixels.u8 holds these photos in this view, if any. */
async function samePixelsIn(root: string, key: string, wanted: string): Promise<string | undefined> {
  const folders = await fs.readdir(root).catch(() => [] as string[]);
  for (const folder of folders.sort()) {
    if (folder === key) continue;
    const dir = path.join(root, folder);
    try {
      const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as CacheIndex;
      const files = index.samples.map((s) => s.file);
      if (pixelsKey(index.view, files) === wanted && existsSync(path.join(dir, 'pixels.u8'))) return dir;
    } catch {
      // Not a complete cache (no index yet, or not ours): it cannot lend its pixels.
    }
  }
  return undefined;
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
}): Promise<{ dir: string; index: CacheIndex; reused: boolean; pixelsFrom?: string }> {
  const samples = cacheSamples(opts.samples);
  const key = cacheKey(opts.view, samples, opts.classes);
  const dir = path.join(opts.root, key);
  const indexFile = path.join(dir, 'index.json');
  if (existsSync(indexFile)) {
    const index = JSON.parse(await fs.readFile(indexFile, 'utf8')) as CacheIndex;
    return { dir, index, reused: true };
  }
  await fs.mkdir(dir, { recursive: true });
  const index: CacheIndex = { key, view: opts.view, classes: opts.classes, count: samples.length, samples };
  const wanted = pixelsKey(
    opts.view,
    samples.map((s) => s.file),
  );
  const donor = await samePixelsIn(opts.root, key, wanted);
  if (donor) {
    // A hard link costs no disk; a file system without them gets a copy, still far cheaper than decoding.
    const pixels = path.join(dir, 'pixels.u8');
    await fs.rm(pixels, { force: true });
    await fs
      .link(path.join(donor, 'pixels.u8'), pixels)
      .catch(() => fs.copyFile(path.join(donor, 'pixels.u8'), pixels));
    await fs.writeFile(indexFile, JSON.stringify(index));
    opts.log?.(`tensor cache: the pixels of ${donor} (the same photos, split another way)`);
    return { dir, index, reused: false, pixelsFrom: donor };
  }
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
  // Written last: a cache folder with an index is complete.
  await fs.writeFile(indexFile, JSON.stringify(index));
  return { dir, index, reused: false };
}
