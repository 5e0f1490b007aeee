import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import type { ClassLabel, Classifier } from '../src';
import { confusionMatrix, reportFromConfusion, type Report } from './classification-metrics';
import { setOf, type Sample } from './dataset';
import { viewPhotoFile } from './photo-file';

/**
 * A photo as the low-resolution set stores its photos: centre crop, 64×64, JPEG. Scoring a sharp photo and its own
 * 64 px look side by side is the shortcut check: a model that tells classes apart by sharpness scores them apart.
 */
async function lowresLook(photo: Buffer): Promise<Buffer> {
  return sharp(photo)
    .rotate()
    .resize(64, 64, { fit: 'cover', position: 'centre' })
    .jpeg({ quality: 75 })
    .toBuffer();
}

export type Look = 'as-is' | 'lowres';

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
      part.map((s) =>
        viewPhotoFile(s.path, classifier.view, opts.look === 'lowres' ? lowresLook : undefined),
      ),
    );
    const probs = await classifier.classify(images);
    probs.forEach((p, i) => (predicted[start + i] = argmax(p)));
    opts.onDone?.(part.length);
  }
  return { predicted, msPerPhoto: (performance.now() - started) / Math.max(samples.length, 1) };
}

/** One report per data folder and, with several, one over all of them. */
export function reportsBySet(
  samples: Sample[],
  predicted: Int32Array,
  labels: ClassLabel[],
): Record<string, Report> {
  const groups = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const key = setOf(s);
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  if (groups.size > 1)
    groups.set(
      'all',
      samples.map((_, i) => i),
    );
  const reports: Record<string, Report> = {};
  for (const [key, idx] of groups) {
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
