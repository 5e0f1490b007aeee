/**
 * Accuracy of softmax-regression heads on subsets of the cached clean-backbone features (which layers to read):
 * the cut-point rows of the model card's trade-off table. It only reads the feature cache the training CLI filled
 * (run `npm run train` with the same --data, --base and the six default layers first).
 * Run: npx tsx model/train/layer-ablation.ts --data <dir...> --base <model dir> [--subsets out_relu;block_12_add,block_13_expand_relu]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { CLEAN_BACKBONE, initBackend, loadBackbone } from '../src';
import { loadDataset } from './dataset';
import { ensureFeatures } from './extract';
import { DEFAULT_HEAD, predictHead, trainHead, type FeatureMatrix } from './head';
import { confusionMatrix, reportFromConfusion } from './metrics';
import { argmaxRows } from './predictions';

/** The shipped head's six layers. */
const SIX = CLEAN_BACKBONE.layers;

async function main(opts: {
  data: string[];
  base: string;
  subsets: string;
  epochs: string;
  cacheDir: string;
}) {
  await initBackend('wasm');
  const url = pathToFileURL(path.resolve(opts.base, 'model.json')).href;
  const backbone = await loadBackbone({ ...CLEAN_BACKBONE, layers: SIX }, { url });
  const dims = await Promise.all(
    SIX.map(async (l) => {
      const b = await loadBackbone({ ...CLEAN_BACKBONE, layers: [l] }, { url });
      b.dispose();
      return b.featureDim;
    }),
  );
  const dataset = loadDataset(opts.data, { validationPercent: 15 });
  const features = await ensureFeatures(
    backbone,
    'cover',
    opts.data.map((root) => ({
      variant: 'plain' as const,
      files: dataset.samples.filter((s) => s.root === root).map((s) => s.path),
    })),
    { featureCacheDir: opts.cacheDir, workers: 1, request: { spec: backbone.spec, url } },
  );
  const plain = features.get('plain')!;
  for (const subset of opts.subsets.split(';')) {
    const layers = subset.split(',');
    const cols: number[] = [];
    let offset = 0;
    SIX.forEach((l, i) => {
      if (layers.includes(l)) for (let c = 0; c < dims[i]!; c++) cols.push(offset + c);
      offset += dims[i]!;
    });
    const matrix = (samples: typeof dataset.samples): FeatureMatrix => {
      const data = new Float32Array(samples.length * cols.length);
      samples.forEach((s, r) => {
        const row = plain.get(s.path)!;
        cols.forEach((c, j) => (data[r * cols.length + j] = row[c]!));
      });
      return { data, rows: samples.length, cols: cols.length };
    };
    const train = dataset.samples.filter((s) => s.split === 'train');
    const head = await trainHead(
      matrix(train),
      Int32Array.from(train, (s) => s.label),
      dataset.labels.length,
      {
        ...DEFAULT_HEAD,
        hidden: 0,
        epochs: Number(opts.epochs),
      },
    );
    const parts = opts.data.map((root) => {
      const val = dataset.samples.filter((s) => s.split === 'validation' && s.root === root);
      const predicted = argmaxRows(predictHead(head.model, matrix(val)), dataset.labels.length);
      const r = reportFromConfusion(
        confusionMatrix(
          val.map((s) => s.label),
          predicted,
          dataset.labels.length,
        ),
        dataset.labels,
      );
      return `${path.basename(root)} ${(r.accuracy * 100).toFixed(1)} %`;
    });
    console.log(`${layers.join('+')} (${cols.length} features): validation ${parts.join(', ')}`);
    head.model.dispose();
  }
  backbone.dispose();
}

new Command('layer-ablation')
  .requiredOption('--data <dir...>', 'the folders the head was trained on')
  .requiredOption('--base <dir>', 'clean backbone folder (model.json + weights)')
  .option(
    '--subsets <list>',
    'semicolon-separated layer lists',
    `out_relu;block_12_add,block_13_expand_relu;${SIX.join(',')}`,
  )
  .option('--epochs <n>', 'epochs per head', '15')
  .option('--cache-dir <dir>', 'feature cache', path.join('.cache', 'features'))
  .action(main)
  .parseAsync()
  .catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
