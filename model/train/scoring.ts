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
