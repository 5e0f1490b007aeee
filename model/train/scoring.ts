import { performance } from 'node:perf_hooks';
import type { ClassLabel, Classifier } from '../src';
import { confusionMatrix, reportFromConfusion, type Report } from './classification-metrics';
import { dishKey, dishOf, setOf, sourceOf, type Sample } from './dataset';
import { LOOKS, type Look } from './looks';
import {
  comparePaired,
  type BootstrapOptions,
  type DishComparison,
  type GroupComparison,
  type ResampleUnit,
} from './paired-comparison';
import { averageCrops, cropCount, cropViews, type CropSet } from './crops';
import { photoBytes, viewPhoto } from './photo-file';

/** The index of the largest probability (the first, on a tie). */
export function argmax(probabilities: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < probabilities.length; c++) if (probabilities[c]! > probabilities[best]!) best = c;
  return best;
}

/**
 * The predicted class of every sample, through the service's own path: photo bytes → preprocessPhoto → model. With
 * `crops`, each photo is shown as those crops and their probabilities are averaged (model/train/crops.ts).
 * msPerPhoto counts everything from reading the file on; modelMsPerPhoto only the classify calls, where more crops
 * cost the most.
 */
export async function predictSamples(
  classifier: Classifier,
  samples: Sample[],
  opts: { batch: number; look?: Look; crops?: CropSet; onDone?: (n: number) => void },
): Promise<{ predicted: Int32Array; msPerPhoto: number; modelMsPerPhoto: number }> {
  const predicted = new Int32Array(samples.length);
  const look = LOOKS[opts.look ?? 'as-is'];
  const perPhoto = opts.crops ? cropCount(opts.crops) : 1;
  const views = async (file: string) => {
    const photo = await photoBytes(file, look);
    return opts.crops
      ? cropViews(photo, classifier.view, opts.crops)
      : [await viewPhoto(photo, classifier.view)];
  };
  let modelMs = 0;
  const started = performance.now();
  for (let start = 0; start < samples.length; start += opts.batch) {
    const part = samples.slice(start, start + opts.batch);
    const images = (await Promise.all(part.map((s) => views(s.path)))).flat();
    const classifyStarted = performance.now();
    const probs = await classifier.classify(images);
    modelMs += performance.now() - classifyStarted;
    averageCrops(probs, perPhoto).forEach((p, i) => (predicted[start + i] = argmax(p)));
    opts.onDone?.(part.length);
  }
  const photos = Math.max(samples.length, 1);
  return { predicted, msPerPhoto: (performance.now() - started) / photos, modelMsPerPhoto: modelMs / photos };
}

/**
 * The groups a validation photo is reported in: its data folder, its source where a folder has several (`full`'s
 * repositories), the dishes left out of training whole, the sources left out whole, and, with more than one group,
 * all photos.
 */
export function reportGroups(samples: Sample[]): Map<string, number[]> {
  const groups = indexBy(samples, setOf);
  for (const [source, idx] of indexBy(samples, sourceOf)) if (!groups.has(source)) groups.set(source, idx);
  for (const [key, idx] of indexBy(samples, (s) => (s.unseenDish ? 'unseen dishes' : undefined)))
    groups.set(key, idx);
  for (const [key, idx] of indexBy(samples, (s) => (s.unseenSource ? 'unseen sources' : undefined)))
    groups.set(key, idx);
  if (groups.size > 1)
    groups.set(
      'all',
      samples.map((_, i) => i),
    );
  return groups;
}

/** The samples' positions by a key of each (those without a key are left out), in order of first appearance. */
function indexBy(samples: Sample[], keyOf: (s: Sample) => string | undefined): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const key = keyOf(s);
    if (key === undefined) return;
    const list = groups.get(key);
    if (list) list.push(i);
    else groups.set(key, [i]);
  });
  return groups;
}

/** One report per group (reportGroups). */
export function reportsByGroup(
  samples: Sample[],
  predicted: Int32Array,
  labels: ClassLabel[],
): Record<string, Report> {
  const reports: Record<string, Report> = {};
  for (const [key, idx] of reportGroups(samples)) {
    reports[key] = reportFromConfusion(
      confusionMatrix(
        idx.map((i) => samples[i]!.label),
        idx.map((i) => predicted[i]!),
        labels.length,
      ),
      labels,
    );
  }
  return reports;
}

/**
 * Two models' predictions on the same samples compared photo by photo, in every group (reportGroups). With
 * `resample: 'dishes'` the bootstrap draws dishes (`dishKey`; a photo whose name says no dish is one of its own),
 * then photos within each.
 */
export function comparisonsByGroup(
  samples: Sample[],
  baseline: Int32Array,
  candidate: Int32Array,
  labels: ClassLabel[],
  bootstrap: BootstrapOptions,
  resample: ResampleUnit = 'photos',
): Record<string, GroupComparison> {
  const comparisons: Record<string, GroupComparison> = {};
  for (const [key, idx] of reportGroups(samples)) {
    comparisons[key] = comparePaired(
      idx.map((i) => samples[i]!.label),
      idx.map((i) => baseline[i]!),
      idx.map((i) => candidate[i]!),
      labels,
      bootstrap,
      resample === 'dishes' ? idx.map((i) => dishKey(samples[i]!)) : undefined,
    );
  }
  return comparisons;
}

/** One model's answers to the scored samples, under the column name it is written with. */
export interface PredictionColumn {
  name: string;
  predicted: Int32Array;
}

/**
 * A row per scored photo: where it came from, its true class, and each column's answer, as class ids. The reports
 * count; these say which photos, so a failure can be looked at (which dish, which source, what it was taken for).
 * `compared` (the positions a gate compared), when given, marks each row in or out of the comparison.
 */
export function predictionRows(
  samples: Sample[],
  labels: ClassLabel[],
  columns: PredictionColumn[],
  compared?: number[],
): Record<string, string>[] {
  const inComparison = compared ? new Set(compared) : undefined;
  return samples.map((sample, i) => {
    const row: Record<string, string> = {
      file: sample.path,
      set: setOf(sample),
      source: sourceOf(sample),
      dish: dishOf(sample.path),
      left_out: [sample.unseenDish ? 'dish' : '', sample.unseenSource ? 'source' : '']
        .filter(Boolean)
        .join('+'),
      truth: labels[sample.label]!.id,
    };
    for (const column of columns) row[column.name] = labels[column.predicted[i]!]!.id;
    if (inComparison) row['compared'] = inComparison.has(i) ? 'yes' : 'no';
    return row;
  });
}

/**
 * Both models per dish, over the dishes left out of training (`unseenDish`), by class and then by photos. Mean
 * recall over a class's photos hides which dishes moved: two or three dishes can carry a class's gain or loss, and
 * a user's next dish is neither of them.
 */
export function dishComparisons(
  samples: Sample[],
  baseline: Int32Array,
  candidate: Int32Array,
  labels: ClassLabel[],
): DishComparison[] {
  const byDish = new Map<string, DishComparison & { index: number }>();
  samples.forEach((sample, i) => {
    if (!sample.unseenDish) return;
    const key = dishKey(sample);
    let row = byDish.get(key);
    if (!row) {
      row = {
        index: sample.label,
        label: labels[sample.label]!.name,
        dish: dishOf(sample.path),
        photos: 0,
        baselineRight: 0,
        candidateRight: 0,
      };
      byDish.set(key, row);
    }
    row.photos++;
    if (baseline[i] === sample.label) row.baselineRight++;
    if (candidate[i] === sample.label) row.candidateRight++;
  });
  return [...byDish.values()]
    .sort((a, b) => a.index - b.index || b.photos - a.photos || a.dish.localeCompare(b.dish))
    .map(({ index: _index, ...row }) => row);
}
