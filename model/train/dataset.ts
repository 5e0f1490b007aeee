import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FOOD11_LABELS, type ClassLabel } from '../src';

export type Split = 'train' | 'validation' | 'evaluation';
export type Layout = 'food11' | 'folders';

export interface Sample {
  path: string;
  label: number;
  split: Split;
  /** The --data folder it came from. */
  root: string;
  /** A validation photo of a dish none of whose photos is trained on (`--validation-dishes`). */
  unseenDish?: boolean;
  /** A validation photo of a source left out of training whole (`--validation-sources`). */
  unseenSource?: boolean;
}

export interface SplitOptions {
  /** Share of the photos (of the dishes that are trained on) kept for validation, by a hash of the file name. */
  validationPercent: number;
  /** Share of the dishes kept out of training altogether, by a hash of the dish (see `dishOf`). */
  validationDishPercent?: number;
  /** At most this many photos of one class from one --data folder (chosen by hash, so the same everywhere). */
  maxPerClass?: number;
  /**
   * Sources left out of training whole, every photo of them kept for validation: a user's kitchen and camera are
   * none of the training sources, so these scores are the nearest to what a user meets. Each entry names a source
   * as `sourceOf` does (`full/Liang-yc`) or by its last part (`Liang-yc`, a --data folder's name).
   */
  validationSources?: string[];
  /**
   * Only photos from these sources (as `sourceOf` names them) are read; the others are as if absent, before the cap
   * and the dish split. A model's recorded split names the sources its data had, so that split can be made again
   * after new sources arrive (`trainedOn`).
   */
  sources?: string[];
}

/**
 * How a model's training split was made, recorded in its metadata (`training.split`): with the same --data folders,
 * `loadDataset` makes the same split again, and `trainedOn` says which photos, dishes and sources it trained on.
 */
export interface RecordedSplit extends SplitOptions {
  /** Every source the training data held (its validation included), sorted. */
  sources: string[];
}

/**
 * A dish no more than this share of its class (over every --data folder) may be left out whole: leaving out Tom Yum
 * would leave Soup with almost no full-resolution photo to learn from, so a class's main dishes are split by photo.
 */
const MAX_HELD_OUT_DISH_SHARE = 0.3;

/**
 * The name of the --data folder a sample came from ('lowres', 'photos', …): validation is reported per set, by
 * the trainer (from the tensor cache's `set`) and by scoring alike, so both take the name from here.
 */
export function setOf(sample: Sample): string {
  return path.basename(path.resolve(sample.root));
}

/**
 * The dish a photo shows, from its file name: the data sets name files `<dish>__<id>` (Food-101's `apple_pie__123`)
 * or `<source>__<dish>__<name>` (`full`'s `Puridech__Tom_Yum_Goong__12`), so the dish is the name without its last
 * `__` part. A name without `__` is a dish of its own. Users' dishes are not the training dishes: validation on whole
 * dishes left out says how the model does on food it never saw.
 */
export function dishOf(file: string): string {
  return namedDishOf(file) ?? path.basename(file, path.extname(file));
}

/** The dish a file's name says (see `dishOf`), or undefined for a name without `__`, which says none. */
export function namedDishOf(file: string): string | undefined {
  const name = path.basename(file, path.extname(file));
  const cut = name.lastIndexOf('__');
  return cut > 0 ? name.slice(0, cut) : undefined;
}

/**
 * Where a photo comes from: its --data folder, and for `<source>__<dish>__<name>` files the source too
 * (`full/Puridech`). A model can learn a source's look instead of the food, so accuracy is reported per source.
 */
export function sourceOf(sample: Sample): string {
  const set = setOf(sample);
  const parts = path.basename(sample.path, path.extname(sample.path)).split('__');
  return parts.length >= 3 ? `${set}/${parts[0]}` : set;
}

export interface Dataset {
  layout: Layout;
  labels: ClassLabel[];
  samples: Sample[];
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);
const FOOD11_SPLITS: Record<string, Split> = {
  training: 'train',
  validation: 'validation',
  evaluation: 'evaluation',
};
const FOOD11_FILE = /^(\d+)_\d+\.(jpe?g|png|webp)$/i;

/** A user-facing error about the data; the CLIs print its message without a stack. */
export class DatasetError extends Error {
  override name = 'DatasetError';
}

/** Folder names are compared loosely so 'Dairy product', 'dairy_product' and 'Dairy-product' all match. */
function normaliseClassName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

/** The Food-11 label a class folder's name stands for, if any. */
function food11LabelFor(folder: string): ClassLabel | undefined {
  const key = normaliseClassName(folder);
  return FOOD11_LABELS.find((l) => normaliseClassName(l.id) === key || normaliseClassName(l.name) === key);
}

function isImage(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

/**
 * Folder-per-class photos are split by a hash of the file's base name, never by position, so the split is the same
 * on every machine and for every ordering, and a photo present in two sets (the same Food-101 id at 64 px and at full
 * resolution) lands on the same side in both.
 */
export function hashSplit(file: string, validationPercent: number): Split {
  return hashPercent(file) < validationPercent ? 'validation' : 'train';
}

/** A stable number in [0, 100) for a name (a file's base name, or a dish). */
function hashPercent(name: string): number {
  return (createHash('sha1').update(path.basename(name)).digest().readUInt32BE(0) % 10000) / 100;
}

/** A class folder's photos, at most `maxPerClass` of them: the first in hash order, so the same everywhere. */
function capped(files: string[], maxPerClass: number | undefined): string[] {
  if (maxPerClass === undefined || files.length <= maxPerClass) return files;
  return [...files]
    .sort((a, b) => hashPercent(a) - hashPercent(b) || a.localeCompare(b))
    .slice(0, maxPerClass)
    .sort();
}

/**
 * The dishes left out of training whole (as `<label>:<dish>` keys): a hash of the dish picks them, among the dishes
 * that are at most MAX_HELD_OUT_DISH_SHARE of their class over every --data folder, so that a dish is on one side in
 * every set and no class loses its main dishes.
 */
function heldOutDishes(photos: { file: string; label: number }[], percent: number): Set<string> {
  const held = new Set<string>();
  if (percent <= 0) return held;
  const dishes = new Map<string, { dish: string; label: number; count: number }>();
  const perClass = new Map<number, number>();
  for (const { file, label } of photos) {
    const dish = dishOf(file);
    const key = `${label}:${dish}`;
    const entry = dishes.get(key) ?? { dish, label, count: 0 };
    entry.count++;
    dishes.set(key, entry);
    perClass.set(label, (perClass.get(label) ?? 0) + 1);
  }
  for (const [key, { dish, label, count }] of dishes) {
    if (count <= MAX_HELD_OUT_DISH_SHARE * perClass.get(label)! && hashPercent(`dish:${dish}`) < percent)
      held.add(key);
  }
  return held;
}

export function detectLayout(root: string): Layout {
  if (!existsSync(root)) throw new DatasetError(`--data ${root}: no such directory.`);
  if (!statSync(root).isDirectory()) throw new DatasetError(`--data ${root}: not a directory.`);
  const entries = listDir(root);
  return entries.includes('training') && entries.some((e) => e === 'validation' || e === 'evaluation')
    ? 'food11'
    : 'folders';
}

function loadFood11(root: string): Sample[] {
  const samples: Sample[] = [];
  for (const [dirName, split] of Object.entries(FOOD11_SPLITS)) {
    const dir = path.join(root, dirName);
    if (!existsSync(dir)) continue;
    for (const file of listDir(dir)) {
      const match = FOOD11_FILE.exec(file);
      if (!match) continue;
      const label = Number(match[1]);
      if (label >= FOOD11_LABELS.length) {
        throw new DatasetError(`${path.join(dir, file)}: class index ${label} is not one of Food-11's 0-10.`);
      }
      samples.push({ path: path.join(dir, file), label, split, root });
    }
  }
  if (samples.length === 0) {
    throw new DatasetError(`--data ${root}: Food-11 layout but no <classIndex>_<n>.jpg files in training/.`);
  }
  return samples;
}

function classFolders(root: string): string[] {
  const folders = listDir(root).filter(
    (e) => !e.startsWith('.') && statSync(path.join(root, e)).isDirectory(),
  );
  if (folders.length === 0) {
    throw new DatasetError(
      `--data ${root}: no class folders found. Expected <data>/<Class>/*.jpg (one folder per class) ` +
        `or Food-11's training/, validation/, evaluation/ with <classIndex>_<n>.jpg.`,
    );
  }
  return folders;
}

/**
 * Reads one or more data folders. Folder names that all name Food-11 classes keep Food-11's 11 labels and order
 * (a folder may hold only some classes); any other names become their own labels, sorted.
 */
export function loadDataset(roots: string[], options: SplitOptions): Dataset {
  if (roots.length === 0) throw new DatasetError('No --data folder given.');
  const layouts = roots.map(detectLayout);
  const food11Roots = roots.filter((_, i) => layouts[i] === 'food11');
  const folderRoots = roots.filter((_, i) => layouts[i] === 'folders');
  const folderNames = folderRoots.map((r) => ({ root: r, folders: classFolders(r) }));
  const allFolders = [...new Set(folderNames.flatMap((f) => f.folders))];
  const useFood11 = food11Roots.length > 0 || allFolders.every((f) => food11LabelFor(f) !== undefined);
  if (food11Roots.length > 0 && !allFolders.every((f) => food11LabelFor(f) !== undefined)) {
    throw new DatasetError(
      `Cannot mix the Food-11 layout with class folders that are not Food-11 classes: ${allFolders.join(', ')}.`,
    );
  }
  const labels: ClassLabel[] = useFood11
    ? FOOD11_LABELS.map((l) => ({ ...l }))
    : [...allFolders].sort().map((id, index) => ({ index, id, name: id }));

  const samples: Sample[] = food11Roots
    .flatMap(loadFood11)
    .filter((sample) => !options.sources || options.sources.includes(sourceOf(sample)));
  const photos: { file: string; label: number; root: string }[] = [];
  for (const { root, folders } of folderNames) {
    for (const folder of folders) {
      const dir = path.join(root, folder);
      const files = listDir(dir).filter(isImage);
      if (files.length === 0) {
        throw new DatasetError(`Class folder ${dir} has no images (${[...IMAGE_EXTENSIONS].join(' ')}).`);
      }
      const label = useFood11 ? food11LabelFor(folder)!.index : labels.findIndex((l) => l.id === folder);
      const known = options.sources;
      const present = known
        ? files.filter((file) => known.includes(sourceOf({ path: file, label, root, split: 'train' })))
        : files;
      for (const file of capped(present, options.maxPerClass))
        photos.push({ file: path.join(dir, file), label, root });
    }
  }
  // The dish split is computed over every photo, left-out sources included, so that leaving a source out does not
  // move other dishes across the split.
  const held = heldOutDishes(photos, options.validationDishPercent ?? 0);
  const leftOut = sourceMatcher(options.validationSources ?? [], photos);
  for (const { file, label, root } of photos) {
    const unseenDish = held.has(`${label}:${dishOf(file)}`);
    const sample: Sample = { path: file, label, split: 'train', root };
    const unseenSource = leftOut(sourceOf(sample));
    sample.split = unseenDish || unseenSource ? 'validation' : hashSplit(file, options.validationPercent);
    if (unseenDish) sample.unseenDish = true;
    if (unseenSource) sample.unseenSource = true;
    samples.push(sample);
  }
  return { layout: food11Roots.length > 0 ? 'food11' : 'folders', labels, samples };
}

const RecordedSplitSchema = z.object({
  validationPercent: z.number().min(0).max(100),
  validationDishPercent: z.number().min(0).max(100).optional(),
  maxPerClass: z.number().int().positive().optional(),
  validationSources: z.array(z.string().min(1)).optional(),
  sources: z.array(z.string().min(1)).min(1),
});

/**
 * A model's recorded split (its metadata's `training.split`), or undefined for a model trained before splits were
 * recorded. A malformed record is an error: a wrong split would compare models on photos one of them trained on.
 */
export function recordedSplitOf(training: Record<string, unknown> | undefined): RecordedSplit | undefined {
  if (training?.['split'] === undefined) return undefined;
  const parsed = RecordedSplitSchema.safeParse(training['split']);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(split)'}: ${i.message}`)
      .join('; ');
    throw new DatasetError(`The model's training.split is not a recorded split: ${issues}.`);
  }
  return parsed.data;
}

/** The split options a model's metadata records, with every source the data held. */
export function recordSplit(dataset: Dataset, options: SplitOptions): RecordedSplit {
  return { ...options, sources: [...new Set(dataset.samples.map(sourceOf))].sort() };
}

/** A photo's name across machines and folder paths: its data set, class and file name. */
export function photoKey(sample: Sample): string {
  return `${setOf(sample)}:${sample.label}:${path.basename(sample.path)}`;
}

/** A dish's name across data sets (a dish is one class's; see `dishOf`). */
export function dishKey(sample: Sample): string {
  return `${sample.label}:${dishOf(sample.path)}`;
}

/** What a model trained on, as `photoKey`, `dishKey` and `sourceOf` name them. */
export interface TrainedOn {
  photos: Set<string>;
  dishes: Set<string>;
  sources: Set<string>;
}

/** The photos, dishes and sources that the training photos among `samples` cover. */
export function trainedIn(samples: Sample[]): TrainedOn {
  const seen: TrainedOn = { photos: new Set(), dishes: new Set(), sources: new Set() };
  for (const sample of samples) {
    if (sample.split !== 'train') continue;
    seen.photos.add(photoKey(sample));
    seen.dishes.add(dishKey(sample));
    seen.sources.add(sourceOf(sample));
  }
  return seen;
}

/** What a model trained on, from its recorded split made again over these --data folders. */
export function trainedOn(roots: string[], split: RecordedSplit): TrainedOn {
  return trainedIn(loadDataset(roots, split).samples);
}

/** The samples models stand alike on, and how many were left out for which reason. */
export interface AlikeSamples {
  /** Each kept sample's position in the samples given. */
  positions: number[];
  samples: Sample[];
  leftOut: { photo: number; dish: number; source: number };
}

/**
 * The samples on which these models stand alike, for comparing them fairly: none trained on the photo, and all or
 * none trained on its dish, and on its source. A model that trained on a photo's dish or source has an edge there
 * that a user's new dish or kitchen will not give it: an older model, split another way before new sources came,
 * may have trained on dishes a newer split holds out, and a newer model on sources the older never had. A kept
 * sample stays an unseen dish or source only where no model trained on it.
 *
 * With `sources: false` a model's edge from a source is kept: a dish no model trained on counts as a dish left out
 * even where one model trained on other dishes of its source. That is how a user's new dish from a kitchen in the
 * data meets the models, but a gain there may come from the data a model had, not from how it was trained.
 */
export function alikeFor(
  samples: Sample[],
  models: TrainedOn[],
  options: { sources: boolean } = { sources: true },
): AlikeSamples {
  const out: AlikeSamples = { positions: [], samples: [], leftOut: { photo: 0, dish: 0, source: 0 } };
  const alike = (seen: (m: TrainedOn) => boolean) => models.every(seen) || !models.some(seen);
  samples.forEach((sample, i) => {
    if (models.some((m) => m.photos.has(photoKey(sample)))) out.leftOut.photo++;
    else if (!alike((m) => m.dishes.has(dishKey(sample)))) out.leftOut.dish++;
    else if (options.sources && !alike((m) => m.sources.has(sourceOf(sample)))) out.leftOut.source++;
    else {
      const unseenDish = sample.unseenDish && !models.some((m) => m.dishes.has(dishKey(sample)));
      const unseenSource = sample.unseenSource && !models.some((m) => m.sources.has(sourceOf(sample)));
      const { unseenDish: _dish, unseenSource: _source, ...rest } = sample;
      out.positions.push(i);
      out.samples.push({
        ...rest,
        ...(unseenDish ? { unseenDish } : {}),
        ...(unseenSource ? { unseenSource } : {}),
      });
    }
  });
  return out;
}

/** Whether a name on the command line means this source: its whole name ('full/Puridech') or its last part. */
export function namesSource(name: string, source: string): boolean {
  return source === name || source.split('/').at(-1) === name;
}

/**
 * Whether a source (as `sourceOf` names it) is one of `names`. A name that matches no photo is an error at once: a
 * typo would otherwise train on the source it meant to leave out and report nothing for it.
 */
function sourceMatcher(
  names: string[],
  photos: { file: string; label: number; root: string }[],
): (source: string) => boolean {
  if (names.length === 0) return () => false;
  const sources = new Set(
    photos.map(({ file, label, root }) => sourceOf({ path: file, label, root, split: 'train' })),
  );
  for (const name of names) {
    if (![...sources].some((source) => namesSource(name, source))) {
      throw new DatasetError(
        `--validation-sources ${name}: no photo comes from it (sources: ${[...sources].sort().join(', ')}).`,
      );
    }
  }
  return (source) => names.some((name) => namesSource(name, source));
}
