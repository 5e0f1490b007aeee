/**
 * Milliseconds per photo (wasm, one photo per call, median) of the clean backbone at several input sizes and cut
 * points: the latency column of the model card's trade-off table.
 * Run: npx tsx model/train/bench-inputs.ts --url <model.json URL> [--sizes 160,192,224] [--runs 30]
 */
import { Command } from 'commander';
import { CLEAN_BACKBONE, initBackend, loadBackbone } from '../src';
import { timeExtraction } from '../src/bench-backbones';

const CUTS: Record<string, string[]> = {
  'out_relu only': ['out_relu'],
  'six layers (shipped)': CLEAN_BACKBONE.layers,
  'cut at block_13_expand_relu': ['block_12_add', 'block_13_expand_relu'],
};

async function main(opts: { url: string; sizes: string; runs: string }): Promise<void> {
  const backend = await initBackend('wasm');
  for (const size of opts.sizes.split(',').map(Number)) {
    for (const [name, layers] of Object.entries(CUTS)) {
      const backbone = await loadBackbone({ ...CLEAN_BACKBONE, layers, inputSize: size }, { url: opts.url });
      const t = await timeExtraction(backbone, 1, Number(opts.runs));
      console.log(
        `${backend} ${size}px ${name}: ${t.medianMsPerPhoto.toFixed(1)} ms/photo (median of ${t.runs})`,
      );
      backbone.dispose();
    }
  }
}

new Command('bench-inputs')
  .requiredOption('--url <url>', 'clean backbone model.json (file:// or http(s)://)')
  .option('--sizes <list>', 'input sizes', '160,192,224')
  .option('--runs <n>', 'timed runs per configuration', '30')
  .action(main)
  .parseAsync()
  .catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
