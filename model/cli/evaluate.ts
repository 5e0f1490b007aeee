import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { defaultModelDir, initBackend, loadClassifier, type Classifier } from '../src';
import { DatasetError, loadDataset, type Sample, type Split } from '../train/dataset';
import { decodeForModel } from '../train/decode';
import { confusionMatrix, reportFromConfusion, reportToMarkdown, type Report } from '../train/metrics';
import { runCli } from './run';

interface EvaluateOptions {
  data: string[];
  model?: string;
  split: Split | 'all' | 'auto';
  validationPercent: number;
  backboneUrl?: string;
  backboneFallback?: boolean;
  reportDir?: string;
  batch: number;
  limit?: number;
}

/**
 * Which photos to score: Food-11's evaluation/ when present; for class folders all photos (a folder of photos the
 * model never saw), unless --split validation asks for the training CLI's held-out share.
 */
function choose(
  samples: Sample[],
  split: EvaluateOptions['split'],
  layout: string,
): { picked: Sample[]; what: string } {
  if (split === 'all' || (split === 'auto' && layout !== 'food11'))
    return { picked: samples, what: 'all photos' };
  const wanted: Split = split === 'auto' ? 'evaluation' : split;
  return { picked: samples.filter((s) => s.split === wanted), what: `${wanted} split` };
}

async function classifyAll(
  classifier: Classifier,
  samples: Sample[],
  batch: number,
  onDone: (n: number) => void,
): Promise<Int32Array> {
  const predicted = new Int32Array(samples.length);
  for (let start = 0; start < samples.length; start += batch) {
    const part = samples.slice(start, start + batch);
    const images = await Promise.all(
      part.map((s) => decodeForModel(s.path, classifier.input.size, classifier.input.resize)),
    );
    const probs = await classifier.classify(images);
    probs.forEach((p, i) => {
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
      predicted[start + i] = best;
    });
    onDone(part.length);
  }
  return predicted;
}

async function main(opts: EvaluateOptions): Promise<void> {
  const started = Date.now();
  const dataset = loadDataset(opts.data, { validationPercent: opts.validationPercent });
  const { picked, what } = choose(dataset.samples, opts.split, dataset.layout);
  const samples = opts.limit
    ? picked.filter((_, i) => i % Math.ceil(picked.length / opts.limit!) === 0)
    : picked;
  if (samples.length === 0) throw new DatasetError(`No photos in the ${what} of ${opts.data.join(', ')}.`);

  const backend = await initBackend('wasm');
  const modelDir = opts.model ?? defaultModelDir();
  const classifier = await loadClassifier({
    modelDir,
    backboneUrl: opts.backboneUrl,
    backboneFallback: opts.backboneFallback,
    log: (msg, fields) => console.log(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`),
  });
  const modelLabels = classifier.labels.map((l) => l.id);
  const dataLabels = dataset.labels.map((l) => l.id);
  if (JSON.stringify(modelLabels) !== JSON.stringify(dataLabels)) {
    throw new DatasetError(
      `The model's labels (${modelLabels.join(', ')}) differ from the data's (${dataLabels.join(', ')}).`,
    );
  }
  console.log(
    `Model ${classifier.info.name} ${classifier.info.version}, head '${classifier.info.head}' on ` +
      `${classifier.info.backbone.id}${classifier.info.backbone.fallback ? ' (npm fallback)' : ''}; ` +
      `${samples.length} photos (${what}); TF.js ${backend}.`,
  );

  const bar = new cliProgress.SingleBar(
    {
      format: 'evaluate  [{bar}] {percentage}% | {value}/{total} photos | {eta_formatted} left',
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(samples.length, 0);
  const t0 = performance.now();
  const predicted = await classifyAll(classifier, samples, opts.batch, (n) => bar.increment(n));
  const msPerPhoto = (performance.now() - t0) / samples.length;
  bar.stop();
  classifier.dispose();

  // One report per data folder and, with several, one over all of them.
  const reports: Record<string, Report> = {};
  const groups = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const key = path.basename(path.resolve(s.root));
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  if (groups.size > 1)
    groups.set(
      'all',
      samples.map((_, i) => i),
    );
  for (const [key, idx] of groups) {
    reports[key] = reportFromConfusion(
      confusionMatrix(
        idx.map((i) => samples[i]!.label),
        idx.map((i) => predicted[i]!),
        dataset.labels.length,
      ),
      dataset.labels,
    );
  }

  const title = (k: string) => `${k} (${what}) — head '${classifier.info.head}'`;
  const markdown = Object.entries(reports)
    .map(([k, r]) => reportToMarkdown(r, title(k)))
    .join('\n');
  console.log('\n' + markdown);
  if (opts.reportDir) {
    mkdirSync(opts.reportDir, { recursive: true });
    const json = {
      model: classifier.info,
      data: opts.data,
      selection: what,
      msPerPhotoIncludingDecode: msPerPhoto,
      reports,
    };
    writeFileSync(path.join(opts.reportDir, 'evaluation.md'), markdown);
    writeFileSync(path.join(opts.reportDir, 'evaluation.json'), JSON.stringify(json, null, 2) + '\n');
  }
  console.log(
    `Summary: ` +
      Object.entries(reports)
        .map(
          ([k, r]) =>
            `${k}: ${(r.accuracy * 100).toFixed(1)} % accuracy, ${(r.macroAccuracy * 100).toFixed(1)} % macro`,
        )
        .join('; ') +
      `; ${msPerPhoto.toFixed(1)} ms per photo including decoding (batch ${opts.batch}); ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s` +
      (opts.reportDir ? `; reports in ${opts.reportDir}/evaluation.{md,json}` : '') +
      '.',
  );
}

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number ≥ 1.`);
  return n;
};

export function buildProgram(): Command {
  return new Command('evaluate')
    .description(
      'Score a model folder on labelled photos: accuracy, macro accuracy, per-class precision/recall, confusion.',
    )
    .requiredOption(
      '--data <dir...>',
      'photos: <dir>/<Class>/*.jpg folders, or Food-11 training/ validation/ evaluation/',
    )
    .option('--model <dir>', 'model folder (metadata.json + heads)', defaultModelDir())
    .addOption(
      new Option(
        '--split <split>',
        "which photos: auto (Food-11's evaluation/, else all), all, train, validation, evaluation",
      )
        .choices(['auto', 'all', 'train', 'validation', 'evaluation'])
        .default('auto'),
    )
    .option('--validation-percent <p>', 'the held-out share the training used (folder layouts)', Number, 15)
    .option(
      '--backbone-url <url>',
      "clean backbone URL (http(s):// or file://), or 'none' for the npm backbone",
    )
    .option('--backbone-fallback', 'fall back to the npm backbone if the clean one cannot be had')
    .option('--report-dir <dir>', 'also write evaluation.md and evaluation.json here')
    .option('--batch <n>', 'photos per classify call', positiveInt('--batch'), 1)
    .option('--limit <n>', 'score an evenly spread subset of about n photos', positiveInt('--limit'))
    .action((opts: EvaluateOptions) => main(opts));
}

if (require.main === module) void runCli('evaluate', buildProgram());
