import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { defaultModelDir, initBackend, loadClassifier, type Classifier } from '../src';
import {
  DatasetError,
  loadDataset,
  type Dataset,
  type Layout,
  type Sample,
  type Split,
} from '../train/dataset';
import { reportToMarkdown } from '../train/classification-metrics';
import { predictSamples, reportsBySet, type Look } from '../train/scoring';
import { nonNegative, positiveInt } from './arguments';
import { runCli } from './run-cli';

interface EvaluateOptions {
  data: string[];
  model?: string;
  split: Split | 'all' | 'auto';
  validationPercent: number;
  look: Look;
  reportDir?: string;
  batch: number;
  limit?: number;
}

/**
 * Which photos to score: Food-11's evaluation/ when present; for class folders all photos (a folder of photos the
 * model never saw), unless --split validation asks for the training CLI's held-out share.
 */
function chooseSplit(
  samples: Sample[],
  split: EvaluateOptions['split'],
  layout: Layout,
): { picked: Sample[]; what: string } {
  if (split === 'all' || (split === 'auto' && layout !== 'food11'))
    return { picked: samples, what: 'all photos' };
  const wanted: Split = split === 'auto' ? 'evaluation' : split;
  return { picked: samples.filter((s) => s.split === wanted), what: `${wanted} split` };
}

/** A model scores only data labelled the way it was trained: the same classes in the same order. */
function assertSameLabels(classifier: Classifier, dataset: Dataset): void {
  const modelLabels = classifier.labels.map((l) => l.id);
  const dataLabels = dataset.labels.map((l) => l.id);
  if (JSON.stringify(modelLabels) !== JSON.stringify(dataLabels)) {
    throw new DatasetError(
      `The model's labels (${modelLabels.join(', ')}) differ from the data's (${dataLabels.join(', ')}).`,
    );
  }
}

function progressBar(total: number): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    {
      format: 'evaluate  [{bar}] {percentage}% | {value}/{total} photos | {eta_formatted} left',
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

async function main(opts: EvaluateOptions): Promise<void> {
  const started = Date.now();
  const dataset = loadDataset(opts.data, { validationPercent: opts.validationPercent });
  const { picked, what } = chooseSplit(dataset.samples, opts.split, dataset.layout);
  const samples = opts.limit
    ? picked.filter((_, i) => i % Math.ceil(picked.length / opts.limit!) === 0)
    : picked;
  if (samples.length === 0) throw new DatasetError(`No photos in the ${what} of ${opts.data.join(', ')}.`);

  const backend = await initBackend('wasm');
  const modelDir = opts.model ?? defaultModelDir();
  const classifier = await loadClassifier({
    modelDir,
    log: (msg, fields) => console.log(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`),
  });
  assertSameLabels(classifier, dataset);
  const { info } = classifier;
  const seen = opts.look === 'lowres' ? ', each sent at its 64 px look' : '';
  console.log(
    `Model ${info.name} ${info.version} (${info.architecture} at ${info.inputSize} px, view ` +
      `${JSON.stringify(classifier.view)}); ${samples.length} photos (${what}${seen}); TF.js ${backend}.`,
  );

  const bar = progressBar(samples.length);
  const { predicted, msPerPhoto } = await predictSamples(classifier, samples, {
    batch: opts.batch,
    look: opts.look,
    onDone: (n) => bar.increment(n),
  });
  bar.stop();
  classifier.dispose();
  const reports = reportsBySet(samples, predicted, dataset.labels);

  const title = (k: string) => `${k} (${what}${seen}) — model ${info.version}`;
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
      look: opts.look,
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

function buildProgram(): Command {
  return new Command('evaluate')
    .description(
      'Score a model folder on labelled photos: accuracy, macro accuracy, per-class precision/recall, confusion.',
    )
    .requiredOption(
      '--data <dir...>',
      'photos: <dir>/<Class>/*.jpg folders, or Food-11 training/ validation/ evaluation/',
    )
    .option('--model <dir>', 'model folder (metadata.json + network/)', defaultModelDir())
    .addOption(
      new Option(
        '--split <split>',
        "which photos: auto (Food-11's evaluation/, else all), all, train, validation, evaluation",
      )
        .choices(['auto', 'all', 'train', 'validation', 'evaluation'])
        .default('auto'),
    )
    .option(
      '--validation-percent <p>',
      'the held-out share the training used (folder layouts)',
      nonNegative('--validation-percent'),
      15,
    )
    .addOption(
      new Option(
        '--look <look>',
        'send each photo as-is, or at its 64 px look (centre crop, 64×64 JPEG): the sharpness-shortcut check',
      )
        .choices(['as-is', 'lowres'])
        .default('as-is'),
    )
    .option('--report-dir <dir>', 'also write evaluation.md and evaluation.json here')
    .option('--batch <n>', 'photos per classify call', positiveInt('--batch'), 1)
    .option('--limit <n>', 'score an evenly spread subset of about n photos', positiveInt('--limit'))
    .action((opts: EvaluateOptions) => main(opts));
}

if (require.main === module) void runCli('evaluate', buildProgram());
