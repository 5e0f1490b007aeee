/**
 * model/train/fastvit.py on a tiny synthetic ONNX graph with every op and pattern FastViT-t4 uses (no ../shared):
 * its PyTorch runner against hand arithmetic (inside --self-test), and its TF.js export against PyTorch on both
 * engines the service may run; and `npm run train --base <model.onnx>`, which fine-tunes that graph whole under a
 * new softmax layer and writes a model folder the service loads. Needs Python with PyTorch and python3-onnx; skips without them unless
 * REQUIRE_TORCH=1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initBackend, loadClassifier, readMetadata } from '../../model/src/index';
import { findPython } from '../../model/train/finetune';
import { referenceDiff } from '../../model/train/reference-check';
import { writeFolderDataset } from '../fixtures/model/shape-photos';
import { modelCli } from '../helpers/model-cli';
import { networkWeights } from '../helpers/network-weights';

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

  /** npm run train on the tiny graph and the shapes data set, at an 8 px view, 2 short epochs. */
  const trainTiny = (graph: string, data: string, out: string, extra: string[]) =>
    modelCli('train', [
      ...['--data', data, '--base', graph, '--out', out, '--cache-dir', path.join(root, 'cache')],
      ...['--view-size', '8', '--feature-copies', '0', '--epochs', '2', '--batch', '8'],
      ...['--validation-percent', '30', '--threads', '1', ...extra],
    ]);

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

  // The graph the first test wrote (root/tiny.onnx, 8 px): fine-tuned whole, as `--base fastvit_t4_food101` is.
  it('fine-tunes an ONNX FastViT whole with npm run train, and TF.js runs the export as PyTorch does', async () => {
    const graph = path.join(root, 'tiny.onnx');
    const data = path.join(root, 'shapes');
    await writeFolderDataset(data, 12);
    const out = path.join(root, 'model');
    const result = await trainTiny(graph, data, out, [
      ...['--input-size', '8', '--freeze-blocks', '0', '--latency-runs', '2', '--base-licence', 'MIT'],
      ...['--probe-head', '40', '--backbone-lr', '0.05'],
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /"msg": "network".*"architecture": "FastViTClassifier"/);
    assert.match(result.stdout, /"msg": "probe head"/);

    const meta = await readMetadata(out);
    assert.equal(meta.network.architecture, 'fastvit_custom');
    assert.equal(meta.network.inputSize, 8);
    assert.equal(meta.base.licence, 'MIT');
    const classifier = await loadClassifier({ modelDir: out, engine: 'fused' });
    assert.equal(classifier.info.inputSize, 8);
    classifier.dispose();

    const diff = await referenceDiff(path.join(out, 'network'));
    assert.equal(diff.fusedEngine, 'fused');
    assert.ok(diff.probabilities.fused < 1e-5, `fused: ${diff.probabilities.fused}`);
    assert.ok(diff.probabilities.layers < 1e-5, `layers: ${diff.probabilities.layers}`);

    // The body trained too, not only the new layer: its first convolution moved from the graph's weights.
    const untrained = path.join(root, 'untrained');
    const exported = spawnSync(
      python!,
      [path.join(repo, 'model/train/fastvit.py'), '--export', graph, untrained, '--input-size', '8'],
      { encoding: 'utf8' },
    );
    assert.equal(exported.status, 0, exported.stderr);
    const [before, after] = await Promise.all([
      networkWeights(untrained),
      networkWeights(path.join(out, 'network')),
    ]);
    // The first convolution after the fixed normalisation layer (fv_normalise).
    const first = [...before.keys()].find((name) => /kernel/.test(name) && !/normalise/.test(name));
    assert.ok(first, 'the export has a trained convolution');
    const [was, now] = [before.get(first)!, after.get(first)!];
    assert.equal(was.length, now.length);
    assert.ok(
      was.some((v, i) => Math.abs(v - now[i]!) > 1e-4),
      'the first convolution kept the graph weights',
    );
  });

  it('refuses what the FastViT graph cannot do, before any training', async () => {
    const run = (extra: string[]) =>
      trainTiny(path.join(root, 'tiny.onnx'), path.join(root, 'shapes'), path.join(root, 'refused'), extra);
    const size = await run(['--input-size', '16', '--freeze-blocks', '0']);
    assert.notEqual(size.code, 0);
    assert.match(size.stderr + size.stdout, /runs at 8 px only/);
    const frozen = await run(['--input-size', '8', '--freeze-blocks', '2']);
    assert.notEqual(frozen.code, 0);
    assert.match(frozen.stderr + frozen.stdout, /--freeze-blocks is for MobileNetV2/);
    const notGraph = path.join(root, 'not-a-graph.onnx');
    await fs.writeFile(notGraph, 'not a graph');
    const bad = await trainTiny(notGraph, path.join(root, 'shapes'), path.join(root, 'refused'), [
      ...['--input-size', '8', '--freeze-blocks', '0'],
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /not-a-graph\.onnx is not an ONNX graph this runner reads/);
  });
});
