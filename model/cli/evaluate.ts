import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'csv-stringify/sync';
import cliProgress from 'cli-progress';
import {
  defaultModelDir,
  initBackend,
  loadClassifier,
  readMetadata,
  type Classifier,
  type ModelInfo,
} from '../src';
import {
  DatasetError,
  loadDataset,
  alikeFor,
  recordedSplitOf,
  setOf,
  trainedIn,
  trainedOn,
  type Dataset,
  type Layout,
  type Sample,
  type Split,
  type AlikeSamples,
  type TrainedOn,
} from '../train/dataset';
import { reportToMarkdown, type Report } from '../train/classification-metrics';
import { CROP_NAMES, cropCount, cropSetName, parseCropSet, type CropSet } from '../train/crops';
import {
  comparisonsByGroup,
  dishComparisons,
  predictionRows,
  predictSamples,
  reportsByGroup,
} from '../train/scoring';
import { LOOK_NAMES, type Look } from '../train/looks';
import {
  classesTable,
  DEFAULT_BOOTSTRAP,
  dishesTable,
  groupsTable,
  INTERVAL_LEVEL,
  MUST_IMPROVE,
  promotionVerdict,
  RESAMPLE_UNITS,
  verdictToMarkdown,
  type DishComparison,
  type ResampleUnit,
  type GroupComparison,
  type Verdict,
} from '../train/paired-comparison';
import { nonNegative, positiveInt } from './arguments';
import { runCli } from './run-cli';

/** What a comparison matches the models on (see `alikeFor`). */
const ALIKE_ON = ['dish-and-source', 'dish'] as const;
type AlikeOn = (typeof ALIKE_ON)[number];

interface EvaluateOptions {
  data: string[];
  model?: string;
  split: Split | 'all' | 'auto';
  validationPercent: number;
  validationDishes: number;
  maxPerClass?: number;
  validationSources?: string[];
  look: Look[];
  crops?: CropSet[];
  baseline?: string;
  alike: AlikeOn;
  margin: number;
  resamples: number;
  resample: ResampleUnit;
  requirePromotion?: boolean;
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

function progressBar(total: number, what: string): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    {
      format: `evaluate ${what}  [{bar}] {percentage}% | {value}/{total} photos | {eta_formatted} left`,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

/** One way of scoring a model: a look of the photos, and the crops shown (the model's own view when none). */
interface Variant {
  look: Look;
  crops?: CropSet;
  /** The column and key it is reported under: the look, and the crops when --crops is given. */
  label: string;
}

interface Scored {
  variant: Variant;
  predicted: Int32Array;
  msPerPhoto: number;
  modelMsPerPhoto: number;
  reports: Record<string, Report>;
}

interface ScoredModel {
  info: ModelInfo;
  view: Classifier['view'];
  runs: Scored[];
}

/** The photos to score: the split made over every --data folder as the training made it, then narrowed. */
function selectSamples(opts: EvaluateOptions): { dataset: Dataset; samples: Sample[]; what: string } {
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
  return { dataset, samples, what };
}

/** Loads a model folder and scores the samples in every variant, one after the other, timing each. */
async function scoreModel(
  what: 'Model' | 'Baseline',
  modelDir: string,
  variants: Variant[],
  samples: Sample[],
  dataset: Dataset,
  batch: number,
): Promise<ScoredModel> {
  const classifier = await loadClassifier({
    modelDir,
    log: (msg, fields) => console.log(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`),
  });
  try {
    assertSameLabels(classifier, dataset);
    console.log(describeModel(classifier, what));
    const runs: Scored[] = [];
    for (const variant of variants) {
      const options = { batch, look: variant.look, ...(variant.crops ? { crops: variant.crops } : {}) };
      // One photo first, untimed: the first call of a batch shape builds its kernels, which would otherwise be
      // charged to whichever variant came first and tilt the comparison of their costs.
      await predictSamples(classifier, samples.slice(0, 1), options);
      const bar = progressBar(samples.length, `${classifier.info.version} ${variant.label}`);
      const run = await predictSamples(classifier, samples, { ...options, onDone: (n) => bar.increment(n) });
      bar.stop();
      runs.push({ variant, ...run, reports: reportsByGroup(samples, run.predicted, dataset.labels) });
    }
    return { info: classifier.info, view: classifier.view, runs };
  } finally {
    classifier.dispose();
  }
}

function describeModel(classifier: Classifier, what: string): string {
  const { info, view } = classifier;
  return `${what} ${info.name} ${info.version} (${info.architecture} at ${info.inputSize} px, view ${JSON.stringify(view)})`;
}

async function main(opts: EvaluateOptions): Promise<void> {
  const started = Date.now();
  const { dataset, samples, what } = selectSamples(opts);
  const backend = await initBackend('wasm');
  const looks = [...new Set(opts.look)];
  const cropSets = opts.crops ?? [undefined];
  const variants: Variant[] = looks.flatMap((look) =>
    cropSets.map((crops) => ({
      look,
      ...(crops ? { crops, label: `${look} · ${cropSetName(crops)}` } : { label: look }),
    })),
  );
  console.log(
    `${samples.length} photos (${what}), look ${looks.join(', ')}` +
      (opts.crops ? `, crops ${opts.crops.map(cropSetName).join(', ')}` : '') +
      `; TF.js ${backend}.`,
  );

  const modelDir = opts.model ?? defaultModelDir();
  const candidate = await scoreModel('Model', modelDir, variants, samples, dataset, opts.batch);
  const baseline = opts.baseline
    ? await scoreModel(
        'Baseline',
        opts.baseline,
        looks.map((look) => ({ look, label: look })),
        samples,
        dataset,
        opts.batch,
      )
    : undefined;

  const version = candidate.info.version;
  const markdown = candidate.runs
    .flatMap(({ variant, reports }) =>
      Object.entries(reports).map(([k, r]) =>
        reportToMarkdown(
          r,
          `${k} (${what}, look ${variant.look}` +
            (variant.crops ? `, crops ${cropSetName(variant.crops)}` : '') +
            `) — model ${version}`,
        ),
      ),
    )
    .join('\n');
  const summary =
    variantsTable(candidate.runs) +
    (candidate.runs.length > 1 ? '\n\n' + recallByVariant(candidate.runs) : '');
  const compared = baseline
    ? await comparablePhotos(samples, dataset, opts.data, modelDir, opts.baseline!, opts.alike)
    : undefined;
  const gate =
    baseline && compared ? promotionGate(compared, dataset, what, baseline, candidate, opts) : undefined;
  const text = markdown + '\n' + summary + (gate ? '\n\n' + gate.markdown : '');
  console.log('\n' + text);
  if (opts.reportDir) {
    mkdirSync(opts.reportDir, { recursive: true });
    const timings = (m: ScoredModel) =>
      Object.fromEntries(
        m.runs.map((r) => [
          r.variant.label,
          {
            crops: r.variant.crops ? cropCount(r.variant.crops) : 1,
            msPerPhotoIncludingDecode: r.msPerPhoto,
            modelMsPerPhoto: r.modelMsPerPhoto,
          },
        ]),
      );
    const reportsOf = (m: ScoredModel) => Object.fromEntries(m.runs.map((r) => [r.variant.label, r.reports]));
    const json = {
      model: candidate.info,
      view: candidate.view,
      data: opts.data,
      selection: what,
      msPerPhotoIncludingDecode: candidate.runs[0]!.msPerPhoto,
      timings: timings(candidate),
      looks: reportsOf(candidate),
      ...(baseline && gate && compared
        ? {
            baseline: {
              model: baseline.info,
              view: baseline.view,
              timings: timings(baseline),
              looks: reportsOf(baseline),
            },
            compared: {
              photos: compared.samples.length,
              alike: compared.alike,
              resample: opts.resample,
              leftOut: compared.leftOut,
              splitRecorded: compared.recorded,
            },
            comparison: gate.byLook,
            promoted: gate.promoted,
          }
        : {}),
    };
    writeFileSync(path.join(opts.reportDir, 'evaluation.md'), text + '\n');
    writeFileSync(path.join(opts.reportDir, 'evaluation.json'), JSON.stringify(json, null, 2) + '\n');
    const columns = [
      ...candidate.runs.map((r) => ({ name: `candidate ${r.variant.label}`, predicted: r.predicted })),
      ...(baseline?.runs ?? []).map((r) => ({ name: `baseline ${r.variant.label}`, predicted: r.predicted })),
    ];
    const rows = predictionRows(samples, dataset.labels, columns, compared?.positions);
    writeFileSync(path.join(opts.reportDir, 'predictions.csv'), stringify(rows, { header: true }));
  }
  const first = candidate.runs[0]!;
  console.log(
    `${first.msPerPhoto.toFixed(1)} ms per photo including decoding (batch ${opts.batch}, ${first.variant.label}); ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s` +
      (opts.reportDir
        ? `; reports in ${opts.reportDir}/evaluation.{md,json}, each photo's answers in predictions.csv`
        : '') +
      '.',
  );
  if (gate && !gate.promoted && opts.requirePromotion) process.exitCode = 1;
}

/** The photos a comparison of these models may use, and what it had to leave out, for the report. */
interface Comparable extends AlikeSamples {
  scored: number;
  alike: AlikeOn;
  /** Whether each model's metadata records its training split. */
  recorded: { candidate: boolean; baseline: boolean };
}

/**
 * The scored photos both models stand alike on (`alikeFor`): what each trained on comes from its recorded split
 * (its metadata's `training.split`, made again over these --data folders); for a candidate without one, from the
 * split flags given, which are to be the ones it was trained with.
 */
async function comparablePhotos(
  samples: Sample[],
  dataset: Dataset,
  roots: string[],
  candidateDir: string,
  baselineDir: string,
  alike: AlikeOn,
): Promise<Comparable> {
  const recorded = async (dir: string) => recordedSplitOf((await readMetadata(dir)).training);
  const candidateSplit = await recorded(candidateDir);
  const baselineSplit = await recorded(baselineDir);
  const models: TrainedOn[] = [
    candidateSplit ? trainedOn(roots, candidateSplit) : trainedIn(dataset.samples),
    ...(baselineSplit ? [trainedOn(roots, baselineSplit)] : []),
  ];
  return {
    ...alikeFor(samples, models, { sources: alike === 'dish-and-source' }),
    scored: samples.length,
    alike,
    recorded: {
      candidate: candidateSplit !== undefined,
      // The same folder on both sides (a view against the model's own) stands alike on every photo.
      baseline: baselineSplit !== undefined || path.resolve(baselineDir) === path.resolve(candidateDir),
    },
  };
}

/** What the comparison left out and why, in a sentence or three for the gate's report. */
function comparableToMarkdown(c: Comparable): string {
  const { photo, dish, source } = c.leftOut;
  const onDish = c.alike === 'dish';
  const leftOutKinds = onDish ? `${dish} of dishes` : `${dish} of dishes and ${source} of sources`;
  const parts = [
    `${c.samples.length} of the ${c.scored} scored photos are compared, those both models stand alike on` +
      (onDish ? ' but for their sources (--alike dish)' : '') +
      (photo + dish + source > 0
        ? `: left out are ${photo} photos a model trained on, and ${leftOutKinds} that one model trained on ` +
          'and the other did not.'
        : '.'),
  ];
  if (onDish)
    parts.push(
      '**A dish left out may be of a source only one model trained on**: a gain there may come from the data ' +
        'that model had, not from how it was trained.',
    );
  if (!c.recorded.candidate)
    parts.push(
      "The candidate's metadata records no training split: what it trained on is taken from the split flags.",
    );
  if (!c.recorded.baseline)
    parts.push(
      "**The baseline's metadata records no training split**: it may have trained on photos, dishes or sources " +
        'compared here, which flatters it.',
    );
  return parts.join(' ');
}

/**
 * The candidate against the baseline on the same photos, look by look, each model through its own view (the
 * candidate in its --crops when one is given): per group and per class, with the verdict. Promoted only when the
 * verdict of every look says so: better where the first look's rule asks, and no worse in the others.
 */
function promotionGate(
  compared: Comparable,
  dataset: Dataset,
  what: string,
  baseline: ScoredModel,
  candidate: ScoredModel,
  opts: EvaluateOptions,
) {
  const crops = candidate.runs[0]!.variant.crops;
  const candidateName = candidate.info.version + (crops ? ` ${cropSetName(crops)}` : '');
  const names = {
    candidate: candidateName,
    baseline:
      baseline.info.version === candidateName ? `${baseline.info.version} (baseline)` : baseline.info.version,
  };
  const bootstrap = { ...DEFAULT_BOOTSTRAP, resamples: opts.resamples };
  const byLook: Record<
    string,
    { groups: Record<string, GroupComparison>; dishes: DishComparison[]; verdict: Verdict }
  > = {};
  const sections: string[] = [];
  for (const base of baseline.runs) {
    const { look } = base.variant;
    const cand = candidate.runs.find((r) => r.variant.look === look)!;
    const pick = (predicted: Int32Array) => Int32Array.from(compared.positions, (i) => predicted[i]!);
    const [baseAnswers, candAnswers] = [pick(base.predicted), pick(cand.predicted)];
    const groups = comparisonsByGroup(
      compared.samples,
      baseAnswers,
      candAnswers,
      dataset.labels,
      bootstrap,
      opts.resample,
    );
    // The first look decides what must improve; further looks of the same photos must only lose nothing.
    const verdict = promotionVerdict(groups, opts.margin / 100, { mustImprove: base === baseline.runs[0] });
    const dishes = dishComparisons(compared.samples, baseAnswers, candAnswers, dataset.labels);
    byLook[look] = { groups, dishes, verdict };
    const perClass = [...MUST_IMPROVE, 'all']
      .filter((g) => g in groups)
      .map((g) => `Per class, ${g}:\n\n${classesTable(groups[g]!, names)}`);
    if (perClass.length === 0) {
      const only = Object.keys(groups)[0]!;
      perClass.push(`Per class, ${only}:\n\n${classesTable(groups[only]!, names)}`);
    }
    const time = (r: Scored) =>
      `${r.msPerPhoto.toFixed(1)} ms per photo (model ${r.modelMsPerPhoto.toFixed(1)} ms)`;
    sections.push(
      [
        `### Candidate ${names.candidate} against baseline ${names.baseline} (${what}, look ${look})`,
        '',
        comparableToMarkdown(compared),
        '',
        `The same ${compared.samples.length} photos through each model's own view; ${INTERVAL_LEVEL * 100} % intervals from ` +
          `${bootstrap.resamples} paired resamples ${resampledWhat(opts.resample)} (seed ${bootstrap.seed}). ${names.baseline}: ` +
          `${time(base)}; ${names.candidate}: ${time(cand)}, decoding included.`,
        '',
        groupsTable(groups, names),
        '',
        ...perClass.flatMap((t) => [t, '']),
        ...(dishes.length > 0
          ? [`Per dish, the dishes left out (${dishes.length}):`, '', dishesTable(dishes, names), '']
          : []),
        verdictToMarkdown(verdict, names),
      ].join('\n'),
    );
  }
  const promoted = Object.values(byLook).every((l) => l.verdict.promoted);
  const overall =
    baseline.runs.length > 1
      ? `\n\n**Over every look: ${promoted ? `promote ${names.candidate}` : `do not promote ${names.candidate}`}.**`
      : '';
  return { byLook, promoted, markdown: sections.join('\n\n') + overall };
}

/** What the bootstrap drew, in the words of the gate's report. */
function resampledWhat(unit: ResampleUnit): string {
  return unit === 'dishes'
    ? 'of dishes, then photos within each dish, within classes (--resample dishes)'
    : 'of photos within classes';
}

/**
 * Recall per class in every variant, over all the photos scored: the shortcut check reads it (a class recognised
 * by its sharpness would be recalled apart in the photo and in its 64 px look), and so does each fault's cost.
 */
function recallByVariant(runs: Scored[]): string {
  const group = (r: Scored) => r.reports['all'] ?? Object.values(r.reports)[0]!;
  const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)} %`);
  const first = group(runs[0]!);
  return [
    `| class | photos | ${runs.map((r) => `recall, ${r.variant.label}`).join(' | ')} |`,
    `|---|---:|${runs.map(() => '---:').join('|')}|`,
    ...first.classes
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c.support > 0)
      .map(
        ({ c, i }) =>
          `| ${c.name} | ${c.support} | ${runs.map((r) => pct(group(r).classes[i]!.recall)).join(' | ')} |`,
      ),
  ].join('\n');
}

/**
 * Accuracy (mean per-class recall) of every group in every variant, one column each, and what each cost per
 * photo in this run: with decoding, and the model alone (more crops, more of the model's time).
 */
function variantsTable(runs: Scored[]): string {
  const groups = Object.keys(runs[0]!.reports);
  const cell = (r: Report) => `${(r.accuracy * 100).toFixed(1)} % (${(r.macroAccuracy * 100).toFixed(1)} %)`;
  return [
    `| photos | ${runs.map((r) => r.variant.label).join(' | ')} |`,
    `|---|${runs.map(() => '---:').join('|')}|`,
    ...groups.map(
      (g) => `| ${g} (${runs[0]!.reports[g]!.total}) | ${runs.map((r) => cell(r.reports[g]!)).join(' | ')} |`,
    ),
    `| ms per photo, decoding included (model alone) | ${runs
      .map((r) => `${r.msPerPhoto.toFixed(1)} (${r.modelMsPerPhoto.toFixed(1)})`)
      .join(' | ')} |`,
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
    .option(
      '--crops <crops...>',
      `score the model on other crops than its view's, one report each: ${CROP_NAMES.join(', ')} or several ` +
        "joined by '+', their probabilities averaged (cover: the centre square; fill: the whole photo, squeezed; " +
        "corners: four squares of 7/8 the centre square's side in its corners; cover+corners: five crops)",
      (value: string, previous: CropSet[] | undefined) => {
        const crops = parseCropSet(value);
        if (typeof crops === 'string') throw new InvalidArgumentError(`--crops ${value}: ${crops}.`);
        return [...(previous ?? []), crops];
      },
    )
    .option(
      '--baseline <dir>',
      'also score this model folder (e.g. model/shipped) on the same photos and compare them photo by photo: ' +
        'per group and class, a paired test, and whether --model should be promoted',
    )
    .addOption(
      new Option(
        '--alike <what>',
        'with --baseline: compare on photos the models stand alike on: dish-and-source (neither trained on the ' +
          'photo, both or neither on its dish and on its source: how they were trained), or dish (the sources ' +
          "not matched: a dish left out from a source only one model trained on counts, as a user's new dish " +
          'from a kitchen in the data meets them: what they were trained on, too)',
      )
        .choices(ALIKE_ON)
        .default('dish-and-source'),
    )
    .option(
      '--margin <points>',
      "with --baseline: how many points of mean per-class recall the unseen dishes' and sources' interval must " +
        'clear for a promotion',
      nonNegative('--margin'),
      0,
    )
    .option(
      '--resamples <n>',
      'with --baseline: paired bootstrap resamples',
      positiveInt('--resamples'),
      2000,
    )
    .addOption(
      new Option(
        '--resample <unit>',
        'with --baseline: what the bootstrap draws within a class: single photos, or dishes and then photos within ' +
          'each dish (photos of one dish are not independent: counted one by one, a dish can pass for its whole ' +
          'source)',
      )
        .choices(RESAMPLE_UNITS)
        .default('photos'),
    )
    .option('--require-promotion', 'with --baseline: exit 1 when the verdict is not to promote')
    .option(
      '--report-dir <dir>',
      'also write evaluation.md, evaluation.json and predictions.csv (each photo and every answer to it) here',
    )
    .option('--batch <n>', 'photos per classify call', positiveInt('--batch'), 1)
    .option('--limit <n>', 'score an evenly spread subset of about n photos', positiveInt('--limit'))
    .option(
      '--sets <name...>',
      'score only the photos of these --data folders (by folder name); the split is still made over all of them',
    )
    .action((opts: EvaluateOptions, command: Command) => {
      if (opts.baseline && (opts.crops?.length ?? 0) > 1)
        command.error('error: --baseline compares one way of scoring --model: give at most one --crops.');
      if (!opts.baseline && command.getOptionValueSource('alike') === 'cli')
        command.error('error: --alike says how --baseline is compared: give --baseline too.');
      if (!opts.baseline && command.getOptionValueSource('resample') === 'cli')
        command.error('error: --resample says how --baseline is compared: give --baseline too.');
      if (!opts.baseline && opts.requirePromotion)
        command.error('error: --require-promotion needs --baseline.');
      return main(opts);
    });
}

if (require.main === module) void runCli('evaluate', buildProgram());
