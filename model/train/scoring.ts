import { performance } from 'node:perf_hooks';
import type { ClassLabel, Classifier } from '../src';
import { confusionMatrix, reportFromConfusion, type Report } from './classification-metrics';
import { setOf, sourceOf, type Sample } from './dataset';
import { LOOKS, type Look } from './looks';
import { viewPhotoFile } from './photo-file';

/** The index of the largest probability (the first, on a tie). */
export function argmax(probabilities: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < probabilities.length; c++) if (probabilities[c]! > probabilities[best]!) best = c;
  return best;
}

/** The predicted class of every sample, through the service's own path: photo bytes → preprocessPhoto → model. */
export async function predictSamples(
  classifier: Classifier,
  samples: Sample[],
  opts: { batch: number; look?: Look; onDone?: (n: number) => void },
): Promise<{ predicted: Int32Array; msPerPhoto: number }> {
  const predicted = new Int32Array(samples.length);
  const started = performance.now();
  for (let start = 0; start < samples.length; start += opts.batch) {
    const part = samples.slice(start, start + opts.batch);
    const images = await Promise.all(
      part.map((s) => viewPhotoFile(s.path, classifier.view, LOOKS[opts.look ?? 'as-is'])),
    );
    const probs = await classifier.classify(images);
    probs.forEach((p, i) => (predicted[start + i] = argmax(p)));
    opts.onDone?.(part.length);
  }
  return { predicted, msPerPhoto: (performance.now() - started) / Math.max(samples.length, 1) };
}

/**
 * The groups a validation photo is reported in: its data folder, its source where a folder has several (`full`'s
 * seven repositories), the dishes left out of training whole, and, with more than one group, all photos.
 */
export function reportGroups(samples: Sample[]): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  const add = (key: string, i: number) => groups.set(key, [...(groups.get(key) ?? []), i]);
  samples.forEach((s, i) => add(setOf(s), i));
  const sources = new Map<string, number[]>();
  samples.forEach((s, i) => sources.set(sourceOf(s), [...(sources.get(sourceOf(s)) ?? []), i]));
  for (const [source, idx] of sources) if (!groups.has(source)) groups.set(source, idx);
  samples.forEach((s, i) => s.unseenDish && add('unseen dishes', i));
  if (groups.size > 1)
    groups.set(
      'all',
      samples.map((_, i) => i),
    );
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
