import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { defaultModelDir, initBackend, loadClassifier, type Classifier } from '../src';
import {
  DatasetError,
  loadDataset,
  setOf,
  type Dataset,
  type Layout,
  type Sample,
  type Split,
} from '../train/dataset';
import { reportToMarkdown } from '../train/classification-metrics';
import { predictSamples, reportsByGroup } from '../train/scoring';
import { LOOK_NAMES, type Look } from '../train/looks';
import type { Report } from '../train/classification-metrics';
import { nonNegative, positiveInt } from './arguments';
import { runCli } from './run-cli';

interface EvaluateOptions {
  data: string[];
  model?: string;
  split: Split | 'all' | 'auto';
  validationPercent: number;
  validationDishes: number;
  maxPerClass?: number;
  validationSources?: string[];
  look: Look[];
  reportDir?: string;
  batch: number;
  limit?: number;
  sets?: string[];
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

function progressBar(total: number, look: Look): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    {
      format: `evaluate ${look}  [{bar}] {percentage}% | {value}/{total} photos | {eta_formatted} left`,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

async function main(opts: EvaluateOptions): Promise<void> {
  const started = Date.now();
  const dataset = loadDataset(opts.data, {
    validationPercent: opts.validationPercent,
    validationDishPercent: opts.validationDishes,
    ...(opts.maxPerClass ? { maxPerClass: opts.maxPerClass } : {}),
    ...(opts.validationSources ? { validationSources: opts.validationSources } : {}),
  });
  // The split is made over every --data folder, as the training made it; --sets only narrows what is scored.
  const inSets = opts.sets ? dataset.samples.filter((s) => opts.sets!.includes(setOf(s))) : dataset.samples;
  const { picked, what } = chooseSplit(inSets, opts.split, dataset.layout);
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
  const looks = [...new Set(opts.look)];
  console.log(
    `Model ${info.name} ${info.version} (${info.architecture} at ${info.inputSize} px, view ` +
      `${JSON.stringify(classifier.view)}); ${samples.length} photos (${what}), look ${looks.join(', ')}; ` +
      `TF.js ${backend}.`,
  );

  const byLook: Partial<Record<Look, Record<string, Report>>> = {};
  let msPerPhoto = 0;
  for (const look of looks) {
    const bar = progressBar(samples.length, look);
    const run = await predictSamples(classifier, samples, {
      batch: opts.batch,
      look,
      onDone: (n) => bar.increment(n),
    });
    bar.stop();
    if (look === looks[0]) msPerPhoto = run.msPerPhoto;
    byLook[look] = reportsByGroup(samples, run.predicted, dataset.labels);
  }
  classifier.dispose();

  const markdown = looks
    .flatMap((look) =>
      Object.entries(byLook[look]!).map(([k, r]) =>
        reportToMarkdown(r, `${k} (${what}, look ${look}) — model ${info.version}`),
      ),
    )
    .join('\n');
  const summary = looksTable(looks, byLook) + (looks.length > 1 ? '\n\n' + recallByLook(looks, byLook) : '');
  console.log('\n' + markdown + '\n' + summary);
  if (opts.reportDir) {
    mkdirSync(opts.reportDir, { recursive: true });
    const json = {
      model: classifier.info,
      data: opts.data,
      selection: what,
      msPerPhotoIncludingDecode: msPerPhoto,
      looks: byLook,
    };
    writeFileSync(path.join(opts.reportDir, 'evaluation.md'), markdown + '\n' + summary);
    writeFileSync(path.join(opts.reportDir, 'evaluation.json'), JSON.stringify(json, null, 2) + '\n');
  }
  console.log(
    `${msPerPhoto.toFixed(1)} ms per photo including decoding (batch ${opts.batch}, look ${looks[0]}); ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s` +
      (opts.reportDir ? `; reports in ${opts.reportDir}/evaluation.{md,json}` : '') +
      '.',
  );
}

/**
 * Recall per class in every look, over all the photos scored: the shortcut check reads it (a class recognised by
 * its sharpness would be recalled apart in the photo and in its 64 px look), and so does each fault's cost.
 */
function recallByLook(looks: Look[], byLook: Partial<Record<Look, Record<string, Report>>>): string {
  const group = (look: Look) => {
    const reports = byLook[look]!;
    return reports['all'] ?? Object.values(reports)[0]!;
  };
  const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)} %`);
  const first = group(looks[0]!);
  return [
    `| class | photos | ${looks.map((l) => `recall, ${l}`).join(' | ')} |`,
    `|---|---:|${looks.map(() => '---:').join('|')}|`,
    ...first.classes
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c.support > 0)
      .map(
        ({ c, i }) =>
          `| ${c.name} | ${c.support} | ${looks.map((l) => pct(group(l).classes[i]!.recall)).join(' | ')} |`,
      ),
  ].join('\n');
}

/** Accuracy (mean per-class recall) of every group in every look: one row per group, one column per look. */
function looksTable(looks: Look[], byLook: Partial<Record<Look, Record<string, Report>>>): string {
  const groups = Object.keys(byLook[looks[0]!]!);
  const cell = (r: Report) => `${(r.accuracy * 100).toFixed(1)} % (${(r.macroAccuracy * 100).toFixed(1)} %)`;
  return [
    `| photos | ${looks.join(' | ')} |`,
    `|---|${looks.map(() => '---:').join('|')}|`,
    ...groups.map(
      (g) =>
        `| ${g} (${byLook[looks[0]!]![g]!.total}) | ${looks.map((l) => cell(byLook[l]![g]!)).join(' | ')} |`,
    ),
  ].join('\n');
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
    .option(
      '--validation-dishes <p>',
      'the share of dishes the training left out whole (with --split validation)',
      nonNegative('--validation-dishes'),
      15,
    )
    .option(
      '--max-per-class <n>',
      'the cap on photos of a class per --data folder the training used',
      positiveInt('--max-per-class'),
    )
    .option(
      '--validation-sources <source...>',
      'the sources the training left out whole (with --split validation): scored as "unseen sources"',
    )
    .addOption(
      new Option(
        '--look <look...>',
        "send each photo as-is, or changed as users' photos are (one report each): lowres (its 64 px look: the " +
          'sharpness-shortcut check), defocus, motion, dark, noise, jpeg, small, tilt, phone (dark + motion + noise)',
      )
        .choices(LOOK_NAMES)
        .default(['as-is']),
    )
    .option('--report-dir <dir>', 'also write evaluation.md and evaluation.json here')
    .option('--batch <n>', 'photos per classify call', positiveInt('--batch'), 1)
    .option('--limit <n>', 'score an evenly spread subset of about n photos', positiveInt('--limit'))
    .option(
      '--sets <name...>',
      'score only the photos of these --data folders (by folder name); the split is still made over all of them',
    )
    .action((opts: EvaluateOptions) => main(opts));
}

if (require.main === module) void runCli('evaluate', buildProgram());
