import { randomFillSync } from 'node:crypto';
import path from 'node:path';
import { initBackend, loadClassifier } from '../model/src/index';
import { median, timeRuns } from '../model/train/latency';
import { childOutput } from './child-output';
import { memoryBreakdown } from './proc-usage';

/**
 * Inference time per image of the shipped model, per TF.js backend and per batch size, as wall time and as CPU
 * time, and on wasm the memory each batch size leaves resident. Each backend runs in its own process: TF.js keeps
 * one backend per process, and a fresh process is what a worker thread of the service starts from.
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
  /** wall time per image, by batch size: median over rounds of each round's median */
  perImageMs?: Record<string, number>;
  /** CPU time per image, by batch size (this process's, all threads): what a core actually did */
  cpuPerImageMs?: Record<string, number>;
  /** wasm memory resident after running each batch size (it never shrinks): what a batch size costs in RSS */
  wasmHeapBytes?: Record<string, number>;
  runs?: Record<string, number>;
}

/** Batch 1 (one photo per pass) against the batches adaptive batching could form (issue 24). */
export const BATCH_SIZES = [1, 2, 4, 8];

/** One measurement in this process: used as the child's entry point. */
async function measure(backend: string): Promise<InferenceRow> {
  const ran = await initBackend(backend as 'wasm' | 'cpu' | 'tensorflow');
  const started = performance.now();
  const classifier = await loadClassifier();
  const loadMs = performance.now() - started;
  const { size } = classifier.view;
  const image = () => randomFillSync(new Uint8Array(size * size * 3));
  // The cpu backend is tens of times slower: fewer rounds keep it to a minute.
  const rounds = ran === 'cpu' ? 1 : 5;
  const imagesPerRound = ran === 'cpu' ? 8 : 24;
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const wasmHeapBytes: Record<string, number> = {};
  const runsBy: Record<string, number> = {};
  // Smallest batch first, so each size's wasm memory is read before a larger one grows it.
  for (const batch of BATCH_SIZES) {
    const images = Array.from({ length: batch }, image);
    // wasm code is compiled twice: a quick baseline first, the optimised tier later in the background, so a
    // few warm-up calls would time the baseline; a long-running worker runs the optimised code.
    await timeRuns(ran === 'cpu' ? 1 : Math.ceil(20 / batch), 0, () => classifier.classify(images));
    if (ran === 'wasm') wasmHeapBytes[String(batch)] = memoryBreakdown(process.pid).wasm;
    wall[String(batch)] = [];
    cpu[String(batch)] = [];
  }
  // Round by round, every batch size in turn, so a busy machine slows them alike.
  for (let round = 0; round < rounds; round++) {
    for (const batch of BATCH_SIZES) {
      const images = Array.from({ length: batch }, image);
      const calls = Math.max(1, Math.round(imagesPerRound / batch));
      const before = process.cpuUsage();
      const times = await timeRuns(calls, 0, () => classifier.classify(images));
      const used = process.cpuUsage(before);
      wall[String(batch)]!.push(median(times) / batch);
      cpu[String(batch)]!.push((used.user + used.system) / 1000 / (calls * batch));
      runsBy[String(batch)] = (runsBy[String(batch)] ?? 0) + calls;
    }
  }
  const medians = (by: Record<string, number[]>) =>
    Object.fromEntries(Object.entries(by).map(([batch, values]) => [batch, median(values)]));
  const { info } = classifier;
  classifier.dispose();
  return {
    backend,
    ran,
    model: `${info.name} ${info.version}: ${info.architecture} at ${info.inputSize} px (${info.engine})`,
    inputSize: size,
    loadMs,
    perImageMs: medians(wall),
    cpuPerImageMs: medians(cpu),
    ...(ran === 'wasm' ? { wasmHeapBytes } : {}),
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
