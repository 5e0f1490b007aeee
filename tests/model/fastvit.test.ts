/**
 * model/train/fastvit.py on a tiny synthetic ONNX graph with every op and pattern FastViT-t4 uses (no ../shared):
 * its PyTorch runner against hand arithmetic (inside --self-test), and its TF.js export against PyTorch on both
 * engines the service may run. Needs Python with PyTorch and python3-onnx; skips without them unless
 * REQUIRE_TORCH=1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initBackend } from '../../model/src/index';
import { findPython } from '../../model/train/finetune';
import { referenceDiff } from '../../model/train/reference-check';

const repo = path.resolve(__dirname, '..', '..');

function pythonWithOnnx(): string | undefined {
  try {
    const python = findPython();
    return spawnSync(python, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0 ? python : undefined;
  } catch {
    return undefined;
  }
}
const python = pythonWithOnnx();
const skip =
  python === undefined && process.env.REQUIRE_TORCH !== '1'
    ? 'PyTorch or onnx is not installed here (apt-get install python3-torch python3-onnx)'
    : false;

let root: string;

describe('fastvit.py (ONNX → PyTorch → TF.js)', { skip }, () => {
  before(async () => {
    assert.ok(python, 'REQUIRE_TORCH=1 but no Python with PyTorch, numpy and onnx was found');
    await initBackend('cpu');
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'fastvit-test-'));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('runs the graph as hand arithmetic does, and exports a network TF.js runs fused to the same numbers', async () => {
    const made = spawnSync(python!, [path.join(repo, 'model/train/fastvit.py'), '--self-test', root], {
      encoding: 'utf8',
    });
    assert.equal(made.status, 0, made.stderr);
    const result = JSON.parse(made.stdout.trim().split('\n').pop()!) as { handDiff: number; network: string };
    assert.ok(result.handDiff < 1e-4, `PyTorch runner vs hand arithmetic: ${result.handDiff}`);

    const diff = await referenceDiff(result.network);
    assert.equal(diff.fusedEngine, 'fused', 'every layer of the export is one the fused engine runs');
    assert.ok(diff.probabilities.fused < 1e-5, `fused: ${diff.probabilities.fused}`);
    assert.ok(diff.probabilities.layers < 1e-5, `layers: ${diff.probabilities.layers}`);
    assert.ok(diff.features! < 1e-4, `pooled features: ${diff.features}`);
  });
});
