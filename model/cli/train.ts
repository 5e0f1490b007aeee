import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  initBackend,
  loadClassifier,
  readArtifactsFromUrl,
  writeArtifactsDir,
  writeMetadata,
  CROP_MODES,
  WEIGHTS_DTYPES,
  type ClassLabel,
  type CropMode,
  type ModelMetadataInput,
  type View,
  type WeightsDtype,
} from '../src';
import {
  DatasetError,
  loadDataset,
  namesSource,
  recordSplit,
  sourceOf,
  type Dataset,
  type RecordedSplit,
  type Sample,
  type SplitOptions,
} from '../train/dataset';
import { dishBreadth, dishBreadthToMarkdown } from '../train/dish-breadth';
import { findPython, readTrainingRecord, runFinetune, type TrainingRecord } from '../train/finetune';
import { reportToMarkdown, type Report } from '../train/classification-metrics';
import { medianMsPerPhoto } from '../train/latency';
import { hashPhotos, nearTwins, nearTwinsToMarkdown } from '../train/near-duplicates';
import { predictSamples, reportsByGroup } from '../train/scoring';
import { buildTensorCache } from '../train/tensor-cache';
import { fraction, namedFactors, nonNegative, positiveInt, wholeNumber, wholeNumberUpTo } from './arguments';
import { runCli } from './run-cli';

/**
 * `npm run train`: photos → the service's preprocessing → tensor cache → the whole network fine-tuned in PyTorch
 * (model/train/finetune.py) → TF.js model → scored through the classifier the service runs → a model folder
 * (metadata.json + network/) that MODEL_DIR can point at, or that replaces model/shipped.
 */

const MODEL_NAME = 'gourmetgram-food11';
const BALANCES = ['class-source', 'none'] as const;
type Balance = (typeof BALANCES)[number];
/** MobileNetV2's inverted-residual blocks: what --freeze-blocks counts (finetune.py's SCHEDULE). */
const MOBILENET_V2_BLOCKS = 17;

interface TrainOptions {
  data: string[];
  /** Required unless --split-only. */
  base?: string;
  baseId?: string;
  baseSource?: string;
  baseLicence: string;
  out: string;
  inputSize: number;
  viewSize: number;
  /** A quality from --view-jpeg, or false/undefined for none. */
  viewJpeg?: number | false;
  crop: CropMode;
  epochs: number;
  batch: number;
  lr: number;
  backboneLr: number;
  augment: number;
  faults: number;
  balance: Balance;
  sourceWeight?: Record<string, number>;
  freezeBlocks: number;
  featureCopies: number;
  dropout: number;
  testTimeFlip: boolean;
  weightsDtype: WeightsDtype;
  seed: number;
  validationPercent: number;
  validationDishes: number;
  maxPerClass?: number;
  validationSources?: string[];
  smallInputSize?: number;
  smallEpochs: number;
  epochPhotos?: number;
  probeHead: number;
  evalPhotos?: number;
  initFrom?: string;
  cacheDir: string;
  python?: string;
  threads?: number;
  limitSteps?: number;
  latencyRuns: number;
  modelVersion: string;
  reportDir?: string;
  splitOnly: boolean;
  nearDuplicates: boolean;
}

/** The network --base names, as finetune.py reads it: a TF.js layers model's folder, or FastViT's ONNX graph. */
interface Base {
  /** The folder of a TF.js model.json, or the path of an ONNX graph. */
  dir: string;
  source: string;
  kind: 'tfjs' | 'onnx';
}

/**
 * --base: a local TF.js layers MobileNetV2 (folder or model.json) is used where it lies; an http(s):// URL is
 * downloaded once into the output folder, since the trainer reads files. FastViT's ONNX graph (model.onnx, or a
 * folder holding it and no model.json: ../shared/data/backbones/fastvit_t4_food101) is read by fastvit.py.
 */
async function resolveBase(base: string, out: string): Promise<Base> {
  if (/^https?:\/\//i.test(base)) {
    const dir = path.join(out, 'base');
    if (!existsSync(path.join(dir, 'model.json'))) {
      console.log(`Downloading the base network from ${base} …`);
      await writeArtifactsDir(dir, await readArtifactsFromUrl(base, { timeoutMs: 120_000 }));
    }
    return { dir, source: base, kind: 'tfjs' };
  }
  const local = base.startsWith('file://') ? new URL(base).pathname : base;
  if (!existsSync(local)) {
    throw new DatasetError(
      `--base ${base}: no such file or folder (give a TF.js model.json, its folder, or a URL).`,
    );
  }
  const isDir = statSync(local).isDirectory();
  if (!isDir && local.endsWith('.onnx')) return { dir: local, source: base, kind: 'onnx' };
  const dir = isDir ? local : path.dirname(local);
  if (existsSync(path.join(dir, 'model.json'))) return { dir, source: base, kind: 'tfjs' };
  if (isDir && existsSync(path.join(dir, 'model.onnx')))
    return { dir: path.join(dir, 'model.onnx'), source: base, kind: 'onnx' };
  throw new DatasetError(`--base ${base}: no model.json (TF.js) or model.onnx (FastViT) there.`);
}

/** The name of the folder the base's files are in (mobilenet_v2_1.0_224_quant, fastvit_t4_food101). */
function baseFolderName(base: Base): string {
  return path.basename(base.kind === 'onnx' ? path.dirname(path.resolve(base.dir)) : base.dir);
}

/** The architecture the metadata names: mobilenet_v2_<width> or fastvit_<variant>, from the base's folder name. */
function architectureOf(base: Base): string {
  const name = baseFolderName(base);
  return base.kind === 'onnx'
    ? `fastvit_${name.match(/fastvit_([a-z0-9]+)/i)?.[1] ?? 'custom'}`
    : `mobilenet_v2_${name.match(/mobilenet_v2_([0-9.]+)/)?.[1] ?? 'custom'}`;
}

/** The view every photo is brought to, in training and then in the service: --view-size, --crop, --view-jpeg. */
function viewOf(opts: TrainOptions): View {
  return {
    size: opts.viewSize,
    crop: opts.crop,
    ...(typeof opts.viewJpeg === 'number' ? { jpegQuality: opts.viewJpeg } : {}),
  };
}

/** finetune.py's command line: the cache it reads, the base it starts from, where it writes, and the recipe. */
function finetuneArgs(opts: TrainOptions, cacheDir: string, baseDir: string): string[] {
  const args = [
    ['--cache', cacheDir],
    ['--base', baseDir],
    ['--out', opts.out],
    ['--input-size', opts.inputSize],
    ['--epochs', opts.epochs],
    ['--batch', opts.batch],
    ['--lr', opts.lr],
    ['--backbone-lr', opts.backboneLr],
    ['--augment', opts.augment],
    ['--faults', opts.faults],
    ['--balance', opts.balance],
    ['--freeze-blocks', opts.freezeBlocks],
    ['--feature-copies', opts.featureCopies],
    ['--dropout', opts.dropout],
    ['--weights-dtype', opts.weightsDtype],
    ['--seed', opts.seed],
    ...(opts.smallInputSize
      ? [
          ['--small-input-size', opts.smallInputSize],
          ['--small-epochs', opts.smallEpochs],
        ]
      : []),
    ...Object.entries(opts.sourceWeight ?? {}).map(([source, factor]) => [
      '--source-weight',
      `${source}=${factor}`,
    ]),
    ...(opts.epochPhotos ? [['--epoch-photos', opts.epochPhotos]] : []),
    ...(opts.probeHead ? [['--probe-head', opts.probeHead]] : []),
    ...(opts.evalPhotos ? [['--eval-photos', opts.evalPhotos]] : []),
    ...(opts.initFrom ? [['--init-from', opts.initFrom]] : []),
    ...(opts.threads ? [['--threads', opts.threads]] : []),
    ...(opts.limitSteps ? [['--limit-steps', opts.limitSteps]] : []),
  ].flatMap(([option, value]) => [String(option), String(value)]);
  if (opts.testTimeFlip) args.push('--test-time-flip');
  return args;
}

/** The model folder's metadata.json for what finetune.py exported; scoring adds accuracy and msPerPhoto. */
function modelMetadata(
  opts: TrainOptions,
  labels: ClassLabel[],
  base: Base,
  record: TrainingRecord,
  view: View,
  split: RecordedSplit,
): ModelMetadataInput {
  const architecture = architectureOf(base);
  return {
    schemaVersion: 2,
    name: MODEL_NAME,
    version: opts.modelVersion,
    labels: labels.map((l) => ({ ...l })),
    view,
    network: {
      path: 'network',
      architecture,
      inputSize: record.inputSize,
      scaling: '[-1,1]',
      testTimeFlip: record.testTimeFlip,
      weightsDtype: record.weightsDtype,
    },
    base: {
      id: opts.baseId ?? baseFolderName(base),
      source: opts.baseSource ?? base.source,
      licence: opts.baseLicence,
    },
    trainedAt: new Date().toISOString(),
    // The split is recorded so that a later model's promotion gate can leave out the photos this one trained on.
    training: {
      ...record.recipe,
      base: base.source,
      trainPhotos: record.trainPhotos,
      data: opts.data,
      split,
    },
  };
}

/** How many photos train and validate, and how many of those are dishes and sources left out whole. */
function splitToMarkdown(dataset: Dataset): string {
  const count = (keep: (s: Sample) => boolean) => dataset.samples.filter(keep).length;
  return [
    '### The split',
    '',
    `${count((s) => s.split === 'train')} photos train; ${count((s) => s.split === 'validation')} validate, ` +
      `${count((s) => s.unseenDish === true)} of them of dishes left out whole and ` +
      `${count((s) => s.unseenSource === true)} of sources left out whole.`,
    '',
  ].join('\n');
}

/**
 * The validation photos scored the way the service classifies them (photo bytes → preprocessPhoto → the exported
 * TF.js network), one report per data folder, and the model's time per photo.
 */
async function scoreValidation(
  modelDir: string,
  dataset: Dataset,
  latencyRuns: number,
): Promise<{ reports: Record<string, Report>; msPerPhoto: number; backend: string }> {
  const backend = await initBackend('wasm');
  const classifier = await loadClassifier({ modelDir });
  const validation = dataset.samples.filter((s) => s.split === 'validation');
  const { predicted } = await predictSamples(classifier, validation, { batch: 16 });
  const reports = reportsByGroup(validation, predicted, dataset.labels);
  const msPerPhoto = await medianMsPerPhoto(classifier, latencyRuns);
  classifier.dispose();
  return { reports, msPerPhoto, backend };
}

/**
 * --source-weight's names as the split names its sources (a last part such as 'Puridech' matches 'full/Puridech'),
 * each one a source of training photos: a misspelt name would otherwise change nothing and say nothing.
 */
function sourceWeightsFor(
  dataset: Dataset,
  weights: Record<string, number>,
  balance: Balance,
): Record<string, number> {
  if (balance !== 'class-source')
    throw new InvalidArgumentError(
      '--source-weight weighs the class-source sampler: not with --balance none.',
    );
  const training = [...new Set(dataset.samples.filter((s) => s.split === 'train').map(sourceOf))].sort();
  const resolved: Record<string, number> = {};
  for (const [name, factor] of Object.entries(weights)) {
    const matches = training.filter((source) => namesSource(name, source));
    if (matches.length !== 1)
      throw new InvalidArgumentError(
        `--source-weight ${name}: ${matches.length === 0 ? 'no training photo comes from it' : `names ${matches.join(' and ')}`} ` +
          `(sources with training photos: ${training.join(', ')}).`,
      );
    resolved[matches[0]!] = factor;
  }
  return resolved;
}

async function main(opts: TrainOptions): Promise<void> {
  const started = Date.now();
  // Said before the tensor cache is built, which takes minutes; finetune.py would refuse them only then.
  if (opts.featureCopies > 0 && opts.freezeBlocks === 0) {
    throw new InvalidArgumentError(
      "--feature-copies stores the frozen layers' output: give --freeze-blocks too (or --feature-copies 0).",
    );
  }
  if (opts.featureCopies > 0 && (opts.smallInputSize || opts.probeHead || opts.initFrom)) {
    throw new InvalidArgumentError(
      '--small-input-size, --probe-head and --init-from train the whole network on fresh views: give --feature-copies 0.',
    );
  }
  if (opts.initFrom && !existsSync(opts.initFrom))
    throw new InvalidArgumentError(
      `--init-from ${opts.initFrom}: no such run (its folder or checkpoint.pt).`,
    );
  if (opts.smallInputSize && (opts.smallEpochs <= 0 || opts.smallEpochs >= opts.epochs)) {
    throw new InvalidArgumentError(
      `--small-epochs must be 1 to ${opts.epochs - 1} (--epochs ${opts.epochs}): the last epochs run at --input-size.`,
    );
  }
  const splitOptions: SplitOptions = {
    validationPercent: opts.validationPercent,
    validationDishPercent: opts.validationDishes,
    ...(opts.maxPerClass ? { maxPerClass: opts.maxPerClass } : {}),
    ...(opts.validationSources ? { validationSources: opts.validationSources } : {}),
  };
  if (!opts.base && !opts.splitOnly) {
    throw new InvalidArgumentError(
      '--base <model> is required: the ImageNet MobileNetV2 (or FastViT) to fine-tune (or give --split-only).',
    );
  }
  const dataset = loadDataset(opts.data, splitOptions);
  if (dataset.samples.every((s) => s.split !== 'train'))
    throw new DatasetError('No training photos in --data.');
  const sourceWeight = opts.sourceWeight && sourceWeightsFor(dataset, opts.sourceWeight, opts.balance);
  // Said before hours of training: a class trained on two dishes will miss a user's third.
  const dishes = dishBreadth(dataset.samples, dataset.labels);
  let splitMarkdown = splitToMarkdown(dataset) + '\n' + dishBreadthToMarkdown(dishes);
  if (opts.nearDuplicates) {
    const hashes = await hashPhotos(
      dataset.samples.map((s) => s.path),
      path.join(opts.cacheDir, 'photo-hashes.json'),
      { log: (msg) => console.log(msg) },
    );
    splitMarkdown += '\n' + nearTwinsToMarkdown(dataset.samples, nearTwins(dataset.samples, hashes));
  }
  console.log(splitMarkdown);
  if (opts.splitOnly) return;
  mkdirSync(opts.out, { recursive: true });
  const base = await resolveBase(opts.base!, opts.out);
  const python = findPython(opts.python);
  const view = viewOf(opts);

  const cache = await buildTensorCache({
    samples: dataset.samples,
    view,
    classes: dataset.labels.length,
    root: opts.cacheDir,
    log: (message) => console.log(message),
  });
  const how = cache.reused ? ', reused' : cache.pixelsFrom ? `, pixels shared with ${cache.pixelsFrom}` : '';
  console.log(`Tensor cache ${cache.dir} (${cache.index.count} photos${how}).`);
  await runFinetune(
    python,
    finetuneArgs({ ...opts, ...(sourceWeight ? { sourceWeight } : {}) }, cache.dir, base.dir),
    opts.threads,
  );

  const record = readTrainingRecord(opts.out);
  const metadata = modelMetadata(
    opts,
    dataset.labels,
    base,
    record,
    view,
    recordSplit(dataset, splitOptions),
  );
  await writeMetadata(opts.out, metadata);
  const { reports, msPerPhoto, backend } = await scoreValidation(opts.out, dataset, opts.latencyRuns);
  const accuracy = Object.fromEntries(
    Object.entries(reports).map(([set, report]) => [`validation:${set}`, report.accuracy]),
  );
  await writeMetadata(opts.out, { ...metadata, accuracy, msPerPhoto: Math.round(msPerPhoto * 10) / 10 });

  const markdown = Object.entries(reports)
    .map(([set, report]) =>
      reportToMarkdown(report, `${set} (validation split) — model ${opts.modelVersion}`),
    )
    .join('\n');
  const scored = [splitMarkdown, markdown].join('\n');
  if (opts.reportDir) {
    mkdirSync(opts.reportDir, { recursive: true });
    writeFileSync(path.join(opts.reportDir, 'training.md'), scored);
    const json = {
      metadata: { ...metadata, accuracy, msPerPhoto },
      history: record.history,
      dishes,
      reports,
    };
    writeFileSync(path.join(opts.reportDir, 'training.json'), JSON.stringify(json, null, 2) + '\n');
  }
  console.log('\n' + markdown);
  console.log(
    `Model written to ${opts.out}: ` +
      Object.entries(reports)
        .map(([set, report]) => `${set} ${(report.accuracy * 100).toFixed(1)} %`)
        .join(', ') +
      ` on the validation split; ${msPerPhoto.toFixed(1)} ms per photo (TF.js ${backend}, batch 1); ` +
      `${Math.round((Date.now() - started) / 60_000)} min.`,
  );
}

function buildProgram(): Command {
  return new Command('train')
    .description(
      'Fine-tune a whole MobileNetV2 on labelled photos (PyTorch, model/train/finetune.py) and write a model folder ' +
        'the service loads (metadata.json + network/).',
    )
    .requiredOption(
      '--data <dir...>',
      'photos: <dir>/<Class>/*.jpg folders, or Food-11 training/ validation/',
    )
    .option(
      '--base <model>',
      'the network to fine-tune: ImageNet MobileNetV2 as a TF.js layers model (a folder, its model.json, or an ' +
        "http(s):// URL), or FastViT's ONNX graph (model.onnx or its folder; fastvit_t4_food101); required to train",
    )
    .option('--base-id <id>', 'name of the base network in the metadata (default: its folder name)')
    .option('--base-source <url>', 'where the base weights are published, for the metadata (default: --base)')
    .option('--base-licence <text>', 'licence of the base weights, for the metadata', 'Apache-2.0')
    .option('--out <dir>', 'model folder to write (resumes from its checkpoint.pt)', 'runs/model')
    .option('--input-size <px>', "the network's input side", positiveInt('--input-size'), 224)
    .option(
      '--view-size <px>',
      'the square every photo is brought to first (64: the 64 px look)',
      positiveInt('--view-size'),
      224,
    )
    .option(
      '--view-jpeg <quality>',
      "a JPEG round trip at this quality in the view (75 made model v3's 64 px look); default none",
      positiveInt('--view-jpeg'),
    )
    .option('--no-view-jpeg', 'no JPEG round trip in the view (the default)')
    .addOption(new Option('--crop <mode>', 'square crop of the view').choices(CROP_MODES).default('cover'))
    .option('--epochs <n>', 'passes over the training photos', positiveInt('--epochs'), 8)
    .option('--batch <n>', 'photos per step', positiveInt('--batch'), 64)
    .option('--lr <x>', 'peak learning rate of the new classifier layer', nonNegative('--lr'), 2e-3)
    .option(
      '--backbone-lr <x>',
      'peak learning rate of the pretrained layers',
      nonNegative('--backbone-lr'),
      5e-4,
    )
    .option(
      '--augment <x>',
      'augmentation strength (mirror, zoom, shift, colour); 0 = none',
      nonNegative('--augment'),
      1,
    )
    .option(
      '--faults <share>',
      'share of training views given phone-photo faults (tilt, 64 px look, blur, low light, noise, JPEG)',
      fraction('--faults'),
      0.5,
    )
    .addOption(
      new Option(
        '--balance <how>',
        'class-source: every class drawn equally, sources by √photos; none: as they come',
      )
        .choices(BALANCES)
        .default('class-source'),
    )
    .option(
      '--source-weight <source=factor...>',
      "with --balance class-source: draw a source's photos this many times as often within each of its classes " +
        "(e.g. photos=2; a source as the split names it, 'photos' or 'full/Puridech', or its last part)",
      namedFactors('--source-weight'),
    )
    .option(
      '--freeze-blocks <n>',
      'the stem and the first n of the 17 inverted-residual blocks keep their ImageNet weights',
      wholeNumberUpTo('--freeze-blocks', MOBILENET_V2_BLOCKS),
      10,
    )
    .option(
      '--feature-copies <k>',
      'with --freeze-blocks: the frozen layers run once on k augmented views of each photo (0: every step)',
      wholeNumber('--feature-copies'),
      2,
    )
    .option('--dropout <x>', 'dropout before the classifier layer', nonNegative('--dropout'), 0.2)
    .option(
      '--test-time-flip',
      'average each prediction with the mirrored photo’s (twice the compute)',
      false,
    )
    .addOption(
      new Option('--weights-dtype <dtype>', 'how the weights are stored')
        .choices(WEIGHTS_DTYPES)
        .default('float32'),
    )
    .option('--seed <n>', 'random seed', wholeNumber('--seed'), 1)
    .option(
      '--validation-percent <p>',
      'held-out share, chosen by a hash of the file name',
      nonNegative('--validation-percent'),
      15,
    )
    .option(
      '--validation-dishes <p>',
      'share of the dishes (the file name before its last "__") left out of training whole, for validation',
      nonNegative('--validation-dishes'),
      15,
    )
    .option(
      '--max-per-class <n>',
      'at most n photos of a class from each --data folder (chosen by hash)',
      positiveInt('--max-per-class'),
    )
    .option(
      '--validation-sources <source...>',
      'sources left out of training whole and scored as "unseen sources" (full/Liang-yc, or Liang-yc)',
    )
    .option(
      '--small-input-size <px>',
      'the first --small-epochs epochs at this smaller input side (cheaper), the rest at --input-size',
      positiveInt('--small-input-size'),
    )
    .option('--small-epochs <n>', 'epochs at --small-input-size', wholeNumber('--small-epochs'), 0)
    .option(
      '--epoch-photos <n>',
      'photos drawn an epoch (default: as many as there are training photos)',
      positiveInt('--epoch-photos'),
    )
    .option(
      '--probe-head <n>',
      'fit the new classifier layer on the frozen network’s features of n photos before fine-tuning (0: no)',
      wholeNumber('--probe-head'),
      0,
    )
    .option(
      '--eval-photos <n>',
      'score each epoch on n validation photos, evenly spread (the final network is scored on all)',
      positiveInt('--eval-photos'),
    )
    .option(
      '--init-from <run>',
      "start from an earlier run's weights (its --out folder or checkpoint.pt; same network and classes) with a new " +
        'schedule; its split may leave out less, never anything it trained on',
    )
    .option('--cache-dir <dir>', 'tensor cache root', '.cache/tensors')
    .option('--python <path>', 'Python with PyTorch (default: $PYTHON, /usr/bin/python3, python3)')
    .option('--threads <n>', 'PyTorch threads (default: every core)', positiveInt('--threads'))
    .option('--limit-steps <n>', 'stop each epoch after n steps (smoke tests)', positiveInt('--limit-steps'))
    .option('--latency-runs <n>', 'single-photo runs timed for msPerPhoto', positiveInt('--latency-runs'), 30)
    .option('--model-version <v>', 'version recorded in the metadata', '4')
    .option('--report-dir <dir>', 'also write training.md and training.json here')
    .option(
      '--split-only',
      'say how the photos split and how many dishes each class trains on, and stop (no PyTorch; nothing is ' +
        "written but --near-duplicates' hash cache)",
      false,
    )
    .option(
      '--near-duplicates',
      'also say which validation photos have a near twin in training (a copy, crop or re-shot of the same plate), ' +
        'by perceptual hashes cached in --cache-dir (minutes the first time)',
      false,
    )
    .action((opts: TrainOptions) => main(opts));
}

if (require.main === module) void runCli('train', buildProgram());
