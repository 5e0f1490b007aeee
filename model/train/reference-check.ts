/**
 * How far TF.js is from PyTorch on a network a Python exporter wrote with a reference.json beside it (inputs as
 * RGB bytes at the view size, PyTorch's probabilities and, optionally, its pooled features): the check that an
 * export means what was trained, on both engines the service may run.
 *
 *   npx tsx model/train/reference-check.ts [--backend wasm] <network dir> …
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { layersModelFromArtifacts, readArtifactsDir } from '../src/artifacts';
import { initBackend, type BackendName } from '../src/backend';
import { loadNetwork, type Network } from '../src/network';
import { findFunctionalConfig, inboundLayerNames } from '../src/topology';

export interface Reference {
  viewSize: number;
  inputs: string[];
  probabilities: number[][];
  features?: number[][];
}

export interface ReferenceDiff {
  /** Which engine loadNetwork chose when asked for the fused one ('layers' when the fused runner declined). */
  fusedEngine: Network['engine'];
  /** Max |PyTorch − TF.js| over the reference's probabilities, per engine. */
  probabilities: Record<Network['engine'], number>;
  /** Max |PyTorch − TF.js| over the pooled features (the input of the softmax layer), TF.js layers. */
  features?: number;
}

function inputTensor(reference: Reference): tf.Tensor4D {
  const size = reference.viewSize;
  const bytes = reference.inputs.map((b) => new Uint8Array(Buffer.from(b, 'base64')));
  const pixels = new Float32Array(bytes.length * size * size * 3);
  bytes.forEach((b, i) => pixels.set(b, i * size * size * 3));
  // The service's scaling (classifier.ts): the view as it is when it is the input size, x / 127.5 − 1.
  return tf.tidy(() => tf.tensor4d(pixels, [bytes.length, size, size, 3]).div(127.5).sub(1) as tf.Tensor4D);
}

function maxAbsDiff(want: number[][], got: tf.Tensor2D): number {
  const rows = got.arraySync();
  let worst = 0;
  want.forEach((row, i) => row.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - rows[i]![c]!)))));
  return worst;
}

export async function referenceDiff(dir: string): Promise<ReferenceDiff> {
  const reference = JSON.parse(await fs.readFile(path.join(dir, 'reference.json'), 'utf8')) as Reference;
  const x = inputTensor(reference);
  const probabilities = { fused: NaN, layers: NaN };
  let fusedEngine: Network['engine'] = 'layers';
  try {
    for (const engine of ['fused', 'layers'] as const) {
      const network = await loadNetwork(dir, { engine });
      if (engine === 'fused') fusedEngine = network.engine;
      const p = network.probabilities(x);
      probabilities[engine] = maxAbsDiff(reference.probabilities, p);
      p.dispose();
      network.dispose();
    }
    let features: number | undefined;
    if (reference.features) {
      const artifacts = await readArtifactsDir(dir);
      const model = await layersModelFromArtifacts(artifacts);
      const config = findFunctionalConfig(artifacts.modelTopology);
      const dense = config.output_layers[0]![0];
      const pool = inboundLayerNames(config.layers.find((l) => l.name === dense)!)[0]!;
      const sub = tf.model({
        inputs: model.inputs,
        outputs: model.getLayer(pool).output as tf.SymbolicTensor,
      });
      const f = sub.predict(x) as tf.Tensor2D;
      features = maxAbsDiff(reference.features, f);
      f.dispose();
      model.dispose();
    }
    return { fusedEngine, probabilities, features };
  } finally {
    x.dispose();
  }
}

async function main(argv: string[]): Promise<void> {
  let backend: BackendName = 'wasm';
  const dirs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--backend') backend = argv[++i] as BackendName;
    else dirs.push(argv[i]!);
  }
  const used = await initBackend(backend);
  for (const dir of dirs) console.log(JSON.stringify({ dir, backend: used, ...(await referenceDiff(dir)) }));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`reference-check: ${err.message}`);
    process.exit(1);
  });
}
