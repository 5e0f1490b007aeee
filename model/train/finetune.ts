import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { WeightsDtype } from '../src';
import { DatasetError } from './dataset';

/**
 * The PyTorch step seen from Node: finds a Python that has PyTorch, runs finetune.py (beside this file, in the
 * source tree and in dist/ alike), and reads the record it leaves in the output folder.
 */

const FINETUNE = path.join(__dirname, 'finetune.py');

/** $PYTHON, else Debian's /usr/bin/python3 (where python3-torch installs), else python3 on the PATH: one with torch. */
export function findPython(explicit?: string): string {
  const candidates = explicit ? [explicit] : [process.env.PYTHON, '/usr/bin/python3', 'python3'];
  for (const py of candidates.filter((p): p is string => Boolean(p))) {
    const probe = spawnSync(py, ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    if (probe.status === 0) return py;
  }
  throw new DatasetError(
    'Training needs Python 3 with PyTorch and numpy: `apt-get install python3-torch` (Debian; then it runs with ' +
      '/usr/bin/python3), or `pip install torch numpy`; set PYTHON to choose the interpreter.',
  );
}

/** Runs finetune.py with these arguments, echoing its progress lines; resolves when it exits 0. */
export function runFinetune(python: string, args: string[], threads?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [FINETUNE, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        // glibc otherwise hands the training's large, short-lived tensors back to the kernel every step: measured
        // here, that spent most of PyTorch's time in the kernel and halved its speed.
        MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '33554432',
        MALLOC_TRIM_THRESHOLD_: process.env.MALLOC_TRIM_THRESHOLD_ ?? '17179869184',
        MALLOC_TOP_PAD_: process.env.MALLOC_TOP_PAD_ ?? '1073741824',
        ...(threads ? { OMP_NUM_THREADS: String(threads) } : {}),
      },
    });
    createInterface({ input: child.stdout! }).on('line', (line) => console.log(`finetune: ${line}`));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`finetune.py ended with ${signal ?? `exit code ${code}`}.`)),
    );
  });
}

/** What finetune.py writes to `<out>/training.json` beside the exported network. */
export interface TrainingRecord {
  recipe: Record<string, unknown>;
  inputSize: number;
  testTimeFlip: boolean;
  weightsDtype: WeightsDtype;
  history: unknown[];
  trainPhotos: number;
}

export function readTrainingRecord(outDir: string): TrainingRecord {
  return JSON.parse(readFileSync(path.join(outDir, 'training.json'), 'utf8')) as TrainingRecord;
}
