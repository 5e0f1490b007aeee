import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import sharp from 'sharp';
import {
  CLEAN_BACKBONE,
  DEFAULT_BACKBONE_CACHE_DIR,
  NPM_BACKBONE,
  TEACHABLE_MACHINE_MOBILENET_V2_035_URL,
  initBackend,
  loadBackbone,
  saveLayersModel,
  type BackboneSpec,
} from '../src';
import { DatasetError, loadDataset, type Sample } from '../train/dataset';
import { VARIANTS, type Variant } from '../train/decode';
import { ensureFeatures, type ExtractionJob } from '../train/extract';
import { DEFAULT_HEAD, predictHead, trainHead, type FeatureMatrix, type HeadConfig } from '../train/head';
import { confusionMatrix, reportFromConfusion, reportToMarkdown, type Report } from '../train/metrics';
import { argmaxRows } from '../train/predictions';
import { writeHeadIntoModel } from '../train/model-dir';
import { modelMsPerPhoto } from '../train/latency';
import { runCli } from './run';

/** Layers the shipped heads read, per backbone kind: chosen by the experiments in model/README.md. */
export const DEFAULT_LAYERS: Record<'layers' | 'nsfwjs', string[]> = {
  layers: CLEAN_BACKBONE.layers,
  nsfwjs: NPM_BACKBONE.layers,
};

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0.`);
  return n;
};
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0.`);
  return n;
};

function parseAugment(v: string): Variant[] {
  if (v === 'none') return [];
  const list = v.split(',').map((s) => s.trim()) as Variant[];
  const bad = list.filter((x) => !VARIANTS.includes(x) || x === 'plain');
  if (bad.length)
    throw new InvalidArgumentError(
      `unknown augmentation ${bad.join(', ')}; use flip, lowres, lowres-flip, crop or none.`,
    );
  return list;
}

/** --base: 'npm' (the backbone inside nsfwjs), an http(s):// or file:// URL, or a local folder / model.json. */
export function resolveBase(base: string): { kind: 'layers' | 'nsfwjs'; url?: string } {
  if (base === 'npm' || base === 'none' || base.startsWith('nsfwjs')) return { kind: 'nsfwjs' };
  if (/^(https?|file):\/\//i.test(base)) return { kind: 'layers', url: base };
  if (!existsSync(base)) {
    throw new DatasetError(
      `--base ${base}: no such file or folder (give a model.json, its folder, a URL, or 'npm').`,
    );
  }
  const json = statSync(base).isDirectory() ? path.join(base, 'model.json') : base;
  if (!existsSync(json)) throw new DatasetError(`--base ${base}: no model.json there.`);
  return { kind: 'layers', url: pathToFileURL(path.resolve(json)).href };
}

interface TrainOptions {
  data: string[];
  base: string;
  source?: string;
  backboneId?: string;
  layers?: string;
  inputSize?: number;
  out: string;
  headId?: string;
  seed: number;
  validationPercent: number;
  augment: Variant[];
  hidden: number;
  epochs: number;
  dropout: number;
  inputDropout: number;
  l2: number;
  learningRate: number;
  lrSchedule: HeadConfig['schedule'];
  balance: boolean;
  testTimeFlip: boolean;
  workers: number;
  latencyRuns: number;
  cacheDir: string;
  backboneCacheDir: string;
  modelVersion: string;
  reportDir?: string;
}

function matrixOf(rows: Float32Array[], cols: number): FeatureMatrix {
  const data = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => data.set(r, i * cols));
  return { data, rows: rows.length, cols };
}

/** Photos larger than the low-resolution set get its look as an extra training view; 64 px photos already have it. */
async function largerThanLowres(files: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) {
    const m = await sharp(f).metadata();
    if (Math.min(m.width ?? 0, m.height ?? 0) > 96) out.push(f);
  }
  return out;
}

async function main(opts: TrainOptions): Promise<void> {
  const started = Date.now();
  const base = resolveBase(opts.base);
  const template = base.kind === 'nsfwjs' ? NPM_BACKBONE : CLEAN_BACKBONE;
  const source =
    base.kind === 'nsfwjs'
      ? NPM_BACKBONE.source
      : (opts.source ??
        (base.url && /^https?:/i.test(base.url) ? base.url : TEACHABLE_MACHINE_MOBILENET_V2_035_URL));
  const spec: BackboneSpec = {
    ...template,
    id: opts.backboneId ?? template.id,
    source,
    layers: opts.layers ? opts.layers.split(',').map((s) => s.trim()) : DEFAULT_LAYERS[base.kind],
    inputSize: opts.inputSize ?? template.inputSize,
  };
  const headId = opts.headId ?? (base.kind === 'nsfwjs' ? 'npm' : 'clean');
  const resize = 'cover' as const;

  const dataset = loadDataset(opts.data, { validationPercent: opts.validationPercent });
  const train = dataset.samples.filter((s) => s.split === 'train');
  const validation = dataset.samples.filter((s) => s.split === 'validation');
  if (train.length === 0)
    throw new DatasetError('No training photos found (all were held out for validation).');
  const present = new Set(train.map((s) => s.label));
  const missing = dataset.labels.filter((l) => !present.has(l.index)).map((l) => l.id);

  const backend = await initBackend('wasm');
  const backbone = await loadBackbone(spec, { url: base.url, cacheDir: opts.backboneCacheDir });
  console.log(
    `Backbone ${spec.id} (${backbone.loadedFrom}), digest ${backbone.digest.slice(0, 12)}…, ` +
      `${backbone.featureDim} features from ${spec.layers.join(' + ')} at ${spec.inputSize} px; TF.js ${backend}.`,
  );
  console.log(
    `Data: ${dataset.layout} layout, ${train.length} training and ${validation.length} validation photos, ` +
      `${dataset.labels.length} labels` +
      (missing.length ? ` (no training photos for ${missing.join(', ')})` : '') +
      '.',
  );

  // One job per data folder and view, over all its photos, so a folder's cached features stay valid whatever other
  // folders are trained alongside it; held-out photos' extra views also serve test-time-flip scoring.
  const views: Variant[] = [
    'plain',
    ...new Set([...opts.augment, ...(opts.testTimeFlip ? ['flip' as const] : [])]),
  ];
  const jobs: ExtractionJob[] = [];
  for (const root of opts.data) {
    const files = dataset.samples.filter((s) => s.root === root).map((s) => s.path);
    const large = views.some((v) => v.startsWith('lowres')) ? await largerThanLowres(files) : [];
    for (const variant of views) {
      const wanted = variant.startsWith('lowres') ? large : files;
      if (wanted.length > 0) jobs.push({ variant, files: wanted });
    }
  }

  const bar = new cliProgress.SingleBar(
    {
      format: 'features  [{bar}] {percentage}% | {value}/{total} photos | {eta_formatted} left',
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  const features = await ensureFeatures(backbone, resize, jobs, {
    featureCacheDir: opts.cacheDir,
    workers: opts.workers,
    request: { spec, url: base.url, backboneCacheDir: opts.backboneCacheDir },
    onStart: (pending, cached) => {
      console.log(`Features: ${cached} cached, ${pending} to extract (${opts.workers} worker(s)).`);
      if (pending > 0) bar.start(pending, 0);
    },
    onProgress: (n) => bar.increment(n),
  });
  bar.stop();

  const rows: Float32Array[] = [];
  const labels: number[] = [];
  for (const variant of new Set(['plain' as Variant, ...opts.augment])) {
    const byFile = features.get(variant) ?? new Map<string, Float32Array>();
    const wanted = train.filter((s) => byFile.has(s.path));
    for (const s of wanted) {
      rows.push(byFile.get(s.path)!);
      labels.push(s.label);
    }
  }
  const config: HeadConfig = {
    ...DEFAULT_HEAD,
    hidden: opts.hidden,
    epochs: opts.epochs,
    dropout: opts.dropout,
    inputDropout: opts.inputDropout,
    l2: opts.l2,
    learningRate: opts.learningRate,
    schedule: opts.lrSchedule,
    balanceClasses: opts.balance,
    seed: opts.seed,
  };
  const epochBar = new cliProgress.SingleBar(
    { format: 'head      [{bar}] epoch {value}/{total} | loss {loss} | train accuracy {acc}' },
    cliProgress.Presets.shades_classic,
  );
  epochBar.start(config.epochs, 0, { loss: '-', acc: '-' });
  const head = await trainHead(
    matrixOf(rows, backbone.featureDim),
    Int32Array.from(labels),
    dataset.labels.length,
    config,
    (r) =>
      epochBar.update(r.epoch, { loss: r.loss.toFixed(3), acc: `${(r.trainAccuracy * 100).toFixed(1)} %` }),
  );
  epochBar.stop();

  // Validation per data folder, since a 64 px set and a full-resolution set say different things.
  const reports: Record<string, Report> = {};
  const plain = features.get('plain')!;
  const groups = new Map<string, Sample[]>();
  for (const s of validation) {
    const key = path.basename(path.resolve(s.root));
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  if (groups.size > 1) groups.set('all', validation);
  // Scored as the classifier runs the head: with test-time flip, the mean of the photo's and its mirror's
  // probabilities (the flip view is exactly the classifier's mirror, see decode.ts).
  const flipped = opts.testTimeFlip ? features.get('flip')! : undefined;
  const probabilitiesOf = (samples: Sample[], view: Map<string, Float32Array>) =>
    predictHead(
      head.model,
      matrixOf(
        samples.map((s) => view.get(s.path)!),
        backbone.featureDim,
      ),
    );
  for (const [key, samples] of groups) {
    const probs = probabilitiesOf(samples, plain);
    if (flipped) {
      const mirrored = probabilitiesOf(samples, flipped);
      for (let i = 0; i < probs.length; i++) probs[i] = (probs[i]! + mirrored[i]!) / 2;
    }
    const predicted = argmaxRows(probs, dataset.labels.length);
    reports[key] = reportFromConfusion(
      confusionMatrix(
        samples.map((s) => s.label),
        predicted,
        dataset.labels.length,
      ),
      dataset.labels,
    );
  }

  const msPerPhoto =
    opts.latencyRuns > 0
      ? await modelMsPerPhoto(backbone, head.model, opts.testTimeFlip, opts.latencyRuns)
      : undefined;

  const written = await writeHeadIntoModel(opts.out, {
    headId,
    labels: dataset.labels,
    resize,
    modelVersion: opts.modelVersion,
    save: (dir) => saveLayersModel(head.model, dir),
    entry: {
      backbone: { ...spec, digest: backbone.digest, featureDim: backbone.featureDim },
      testTimeFlip: opts.testTimeFlip,
      accuracy: Object.fromEntries(Object.entries(reports).map(([k, r]) => [`validation:${k}`, r.accuracy])),
      ...(msPerPhoto ? { msPerPhoto: Number(msPerPhoto.toFixed(1)) } : {}),
      version: opts.modelVersion,
      trainedAt: new Date().toISOString(),
    },
  });

  console.log('');
  const markdown = Object.entries(reports)
    .map(([key, r]) => reportToMarkdown(r, `Validation: ${key} — head '${headId}'`))
    .join('\n');
  console.log(markdown);
  if (opts.reportDir) {
    mkdirSync(opts.reportDir, { recursive: true });
    writeFileSync(path.join(opts.reportDir, 'validation.md'), markdown);
    writeFileSync(
      path.join(opts.reportDir, 'validation.json'),
      JSON.stringify(
        { head: headId, backbone: spec, digest: backbone.digest, config, msPerPhoto, reports },
        null,
        2,
      ) + '\n',
    );
  }
  console.log(
    `Summary: head '${headId}' (${config.hidden > 0 ? `MLP ${backbone.featureDim}→${config.hidden}→` : 'linear →'}` +
      `${dataset.labels.length}) trained on ${rows.length} feature rows (${train.length} photos` +
      `${opts.augment.length ? ` + ${opts.augment.join(', ')} views` : ''}), seed ${opts.seed}; ` +
      Object.entries(reports)
        .map(
          ([k, r]) =>
            `validation ${k}: ${(r.accuracy * 100).toFixed(1)} % (macro ${(r.macroAccuracy * 100).toFixed(1)} %)`,
        )
        .join('; ') +
      (msPerPhoto ? `; model ${msPerPhoto.toFixed(1)} ms/photo (wasm, one photo per call, median)` : '') +
      `. Wrote ${written.headDir} (${(written.headBytes / 1024).toFixed(0)} KiB) and ${written.metadataFile} ` +
      `in ${((Date.now() - started) / 1000).toFixed(0)} s.`,
  );
  backbone.dispose();
}

export function buildProgram(): Command {
  return new Command('train')
    .description('Train a food classifier head on cached backbone features and write it into a model folder.')
    .requiredOption(
      '--data <dir...>',
      'photos: <dir>/<Class>/*.jpg folders, or Food-11 training/ validation/ evaluation/',
    )
    .option(
      '--base <url|path|npm>',
      "backbone: http(s):// or file:// URL, a model folder / model.json, or 'npm'",
      process.env.BACKBONE_URL ?? TEACHABLE_MACHINE_MOBILENET_V2_035_URL,
    )
    .option(
      '--source <url>',
      'the backbone URL to record in the metadata (default: --base when it is http(s), else Teachable Machine’s)',
    )
    .option('--backbone-id <id>', 'name of the backbone features in the metadata')
    .option('--layers <names>', 'comma-separated backbone layers, pooled and concatenated')
    .option('--input-size <px>', 'square input size', int('--input-size'))
    .option(
      '--out <dir>',
      'model folder to write the head and metadata.json into',
      path.join('model', 'shipped'),
    )
    .option('--head-id <id>', "head name in the metadata (default 'clean', or 'npm' for --base npm)")
    .option('--seed <n>', 'seed for initialisation, shuffling and dropout', int('--seed'), 1)
    .option(
      '--validation-percent <p>',
      'share of folder-layout photos held out (by file-name hash)',
      num('--validation-percent'),
      15,
    )
    .addOption(
      new Option('--augment <list>', 'extra training views: flip, lowres, lowres-flip, crop, or none')
        .default(['flip', 'lowres'])
        .argParser(parseAugment),
    )
    .option(
      '--hidden <units>',
      'hidden units of the MLP head (0: softmax regression)',
      int('--hidden'),
      DEFAULT_HEAD.hidden,
    )
    .option('--epochs <n>', 'training epochs', int('--epochs'), DEFAULT_HEAD.epochs)
    .option('--dropout <rate>', 'dropout after the hidden layer', num('--dropout'), DEFAULT_HEAD.dropout)
    .option(
      '--input-dropout <rate>',
      'dropout on the features',
      num('--input-dropout'),
      DEFAULT_HEAD.inputDropout,
    )
    .option('--l2 <lambda>', 'L2 weight penalty', num('--l2'), DEFAULT_HEAD.l2)
    .option('--learning-rate <lr>', 'Adam learning rate', num('--learning-rate'), DEFAULT_HEAD.learningRate)
    .addOption(
      new Option('--lr-schedule <kind>', 'learning rate over the run')
        .choices(['constant', 'cosine'])
        .default(DEFAULT_HEAD.schedule),
    )
    .option('--no-balance', 'do not weight classes by inverse frequency')
    .option('--test-time-flip', 'average with the mirrored photo at run time (twice the compute)', false)
    .option(
      '--workers <n>',
      'feature-extraction processes',
      int('--workers'),
      Math.min(2, os.availableParallelism()),
    )
    .option(
      '--latency-runs <n>',
      'time the model on single photos this many times (median; 0: skip)',
      int('--latency-runs'),
      15,
    )
    .option('--cache-dir <dir>', 'feature cache', path.join('.cache', 'features'))
    .option(
      '--backbone-cache-dir <dir>',
      'fetched backbones (default: BACKBONE_CACHE_DIR or the service default)',
      process.env.BACKBONE_CACHE_DIR ?? DEFAULT_BACKBONE_CACHE_DIR,
    )
    .option('--model-version <v>', 'version recorded in the metadata', '1')
    .option('--report-dir <dir>', 'also write validation.md and validation.json here')
    .action((opts: TrainOptions) => main(opts));
}

if (require.main === module) void runCli('train', buildProgram());
