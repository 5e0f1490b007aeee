import { randomFillSync } from 'node:crypto';
import path from 'node:path';
import { initBackend, loadClassifier } from '../model/src/index';
import { median, timeRuns } from '../model/train/latency';
import { childOutput } from './child-output';

/**
 * Inference time per image of the shipped model, per TF.js backend and per batch size. Each backend runs in its own process: TF.js keeps one backend per process, and a fresh process
 * is what a worker thread of the service starts from.
 */

export interface InferenceRow {
  backend: string;
  /** The backend that really ran (differs when one was unavailable), or the reason it could not. */
  ran?: string;
  error?: string;
  /** The network and the view it takes, as the model reports them. */
  model?: string;
  inputSize?: number;
  loadMs?: number;
  perImageMs?: Record<string, number>;
  runs?: Record<string, number>;
}

export const BATCH_SIZES = [1, 8];

/** One measurement in this process: used as the child's entry point. */
async function measure(backend: string): Promise<InferenceRow> {
  const ran = await initBackend(backend as 'wasm' | 'cpu' | 'tensorflow');
  const started = performance.now();
  const classifier = await loadClassifier();
  const loadMs = performance.now() - started;
  const { size } = classifier.view;
  const image = () => randomFillSync(new Uint8Array(size * size * 3));
  // The cpu backend is tens of times slower: fewer runs keep it to a minute.
  const runs = ran === 'cpu' ? 3 : 15;
  // wasm code is compiled twice: a quick baseline first, the optimised tier later in the background, so a
  // few warm-up calls would time the baseline; a long-running worker runs the optimised code.
  const warmup = ran === 'cpu' ? 1 : 20;
  const perImageMs: Record<string, number> = {};
  const runsBy: Record<string, number> = {};
  for (const batch of BATCH_SIZES) {
    const images = Array.from({ length: batch }, image);
    const times = await timeRuns(runs, warmup, () => classifier.classify(images));
    perImageMs[String(batch)] = median(times) / batch;
    runsBy[String(batch)] = runs;
  }
  const { info } = classifier;
  classifier.dispose();
  return {
    backend,
    ran,
    model: `${info.name} ${info.version}: ${info.architecture} at ${info.inputSize} px (${info.engine})`,
    inputSize: size,
    loadMs,
    perImageMs,
    runs: runsBy,
  };
}

/** Runs one measurement in a child process and returns its row (or the error that stopped it). */
export async function benchInference(backend: string): Promise<InferenceRow> {
  const { code, out, err } = await childOutput(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'inference.ts'), backend],
    { ...process.env, BENCH_INFERENCE_CHILD: '1' },
  );
  const last = out.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as InferenceRow;
  } catch {
    return { backend, error: `exit ${code}: ${(err || out).trim().split('\n').slice(-2).join(' ')}` };
  }
}

if (process.env.BENCH_INFERENCE_CHILD === '1' && require.main === module) {
  const [backend = 'wasm'] = process.argv.slice(2);
  measure(backend).then(
    (row) => {
      console.log(JSON.stringify(row));
      process.exit(0);
    },
    (err: Error) => {
      console.log(JSON.stringify({ backend, error: err.message.split('\n')[0] }));
      process.exit(0);
    },
  );
}
