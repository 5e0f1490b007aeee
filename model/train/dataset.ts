import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { FOOD11_LABELS, type ClassLabel } from '../src';

export type Split = 'train' | 'validation' | 'evaluation';
export type Layout = 'food11' | 'folders';

export interface Sample {
  path: string;
  label: number;
  split: Split;
  /** The --data folder it came from. */
  root: string;
}

/**
 * The name of the --data folder a sample came from ('lowres', 'photos', …): validation is reported per set, by
 * the trainer (from the tensor cache's `set`) and by scoring alike, so both take the name from here.
 */
export function setOf(sample: Sample): string {
  return path.basename(path.resolve(sample.root));
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
  const h = createHash('sha1').update(path.basename(file)).digest().readUInt32BE(0);
  return (h % 10000) / 100 < validationPercent ? 'validation' : 'train';
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
export function loadDataset(roots: string[], options: { validationPercent: number }): Dataset {
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

  const samples: Sample[] = food11Roots.flatMap(loadFood11);
  for (const { root, folders } of folderNames) {
    for (const folder of folders) {
      const dir = path.join(root, folder);
      const files = listDir(dir).filter(isImage);
      if (files.length === 0) {
        throw new DatasetError(`Class folder ${dir} has no images (${[...IMAGE_EXTENSIONS].join(' ')}).`);
      }
      const label = useFood11 ? food11LabelFor(folder)!.index : labels.findIndex((l) => l.id === folder);
      for (const file of files) {
        samples.push({
          path: path.join(dir, file),
          label,
          split: hashSplit(file, options.validationPercent),
          root,
        });
      }
    }
  }
  return { layout: food11Roots.length > 0 ? 'food11' : 'folders', labels, samples };
}
