/**
 * Milliseconds per photo of candidate networks on wasm, as the service runs them (one photo per call, at a view
 * of the network's own input size as model v4 has it, with and without test-time flip): the latency column of the model card's trade-off table.
 * The networks take turns round by round in one process, so a busy machine slows them alike and their ratios
 * stay fair; each cell is the median over rounds of each round's median.
 *
 *   npx tsx bench/networks.ts [--rounds 5] [--runs 15] <name>=<network dir> …
 *
 * A network dir holds model.json + weights.bin as model/train/finetune.py exports them; `--export-untrained`
 * there makes one from a base at any input size, untrained (the timing does not depend on the weights).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { FOOD11_LABELS, initBackend, loadClassifier, writeMetadata, type Classifier } from '../model/src';
import { positiveInt } from '../model/cli/arguments';
import { median, timeRuns } from '../model/train/latency';
import { loadAverage, mib } from './format';

async function modelFolder(networkDir: string, testTimeFlip: boolean): Promise<string> {
  const topology = JSON.parse(await fs.readFile(path.join(networkDir, 'model.json'), 'utf8')) as {
    modelTopology: { config: { layers: { config: { batch_input_shape?: number[] } }[] } };
  };
  const inputSize = topology.modelTopology.config.layers[0]?.config.batch_input_shape?.[1] ?? 0;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-network-'));
  await fs.symlink(path.resolve(networkDir), path.join(dir, 'network'));
  await writeMetadata(dir, {
    schemaVersion: 2,
    name: 'bench',
    version: '0',
    labels: [...FOOD11_LABELS],
    view: { size: inputSize, crop: 'cover' },
    network: {
      path: 'network',
      architecture: path.basename(networkDir),
      inputSize,
      scaling: '[-1,1]',
      testTimeFlip,
    },
    base: { id: 'bench', source: networkDir, licence: 'n/a' },
  });
  return dir;
}

async function main(opts: { rounds: number; runs: number }, specs: string[]): Promise<void> {
  const backend = await initBackend('wasm');
  const entries: { name: string; flip: boolean; classifier: Classifier; rounds: number[]; bytes: number }[] =
    [];
  for (const spec of specs) {
    const [name, dir] = spec.includes('=')
      ? (spec.split('=', 2) as [string, string])
      : [path.basename(spec), spec];
    const weights = await fs.stat(path.join(dir, 'weights.bin')).catch(() => null);
    if (!weights)
      throw new Error(`${spec}: no ${path.join(dir, 'weights.bin')} (model.json + weights.bin expected)`);
    const bytes = weights.size;
    for (const flip of [false, true]) {
      entries.push({
        name,
        flip,
        classifier: await loadClassifier({ modelDir: await modelFolder(dir, flip) }),
        rounds: [],
        bytes,
      });
    }
  }
  const photoFor = (size: number) => new Uint8Array(size * size * 3).map((_, i) => (i * 31) % 256);
  for (let round = 0; round < opts.rounds; round++) {
    for (const entry of entries) {
      // wasm compiles twice (a baseline tier, then the optimised one): warm-up calls reach the second.
      const photo = photoFor(entry.classifier.view.size);
      const times = await timeRuns(opts.runs, round === 0 ? 20 : 3, () => entry.classifier.classify([photo]));
      entry.rounds.push(median(times));
    }
  }
  console.log(
    `TF.js ${backend}, batch 1, ${opts.rounds} rounds × ${opts.runs} runs, load average ${loadAverage(os.loadavg(), ' ')}`,
  );
  console.log('| network | input | weights | ms per photo | with test-time flip |');
  console.log('|---|---|---|---|---|');
  for (let i = 0; i < entries.length; i += 2) {
    const [plain, flip] = [entries[i]!, entries[i + 1]!];
    console.log(
      `| ${plain.name} | ${plain.classifier.info.inputSize} px | ${mib(plain.bytes, 1)} | ` +
        `${median(plain.rounds).toFixed(1)} | ${median(flip.rounds).toFixed(1)} |`,
    );
  }
  for (const entry of entries) entry.classifier.dispose();
}

const program = new Command('bench-networks')
  .argument('<networks...>', 'name=<network dir> (model.json + weights.bin)')
  .option('--rounds <n>', 'interleaved rounds', positiveInt('--rounds'), 5)
  .option('--runs <n>', 'timed calls per network per round', positiveInt('--runs'), 15)
  .action((specs: string[], opts: { rounds: number; runs: number }) => main(opts, specs));
program.parseAsync().catch((err: Error) => {
  console.error(`bench/networks: ${err.message}`);
  process.exit(1);
});
