import * as tf from '@tensorflow/tfjs-core';
import { layersModelFromArtifacts, readArtifactsDir, type LayersArtifacts } from './artifacts';
import { compileFusedGraph } from './fused-graph';
import { silentLog, type LogFn } from './log';
import { findFunctionalConfig, inboundLayerNames, prunedConfig } from './topology';

/**
 * The shipped network (a TF.js layers model: convolutions, global average pooling, one softmax layer) as
 * something that runs: images scaled to [-1, 1] at its input size in, class probabilities out.
 */
export interface Network {
  /** 'fused': plain ops with ReLU6 fused into each convolution (the fast path); 'layers': TF.js layers. */
  readonly engine: 'fused' | 'layers';
  readonly inputSize: number;
  readonly classes: number;
  /** Caller disposes the result; x stays the caller's. */
  probabilities(x: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

interface Tail {
  /** The layer the pooling reads: the fused graph's output. */
  features: string;
  dense: string;
}

/** The network must end in GlobalAveragePooling2D → Dense(softmax), as model/train/finetune.py exports it. */
function findTail(artifacts: LayersArtifacts): Tail {
  const config = findFunctionalConfig(artifacts.modelTopology);
  const byName = new Map(config.layers.map((l) => [l.name, l]));
  const dense = byName.get(config.output_layers[0]?.[0] ?? '');
  const pool = dense && byName.get(inboundLayerNames(dense)[0] ?? '');
  const features = pool && inboundLayerNames(pool)[0];
  if (
    config.output_layers.length !== 1 ||
    dense?.class_name !== 'Dense' ||
    dense.config['activation'] !== 'softmax' ||
    pool?.class_name !== 'GlobalAveragePooling2D' ||
    !features
  ) {
    throw new Error(
      'The network must end in GlobalAveragePooling2D followed by a softmax Dense layer ' +
        '(as model/train/finetune.py exports it).',
    );
  }
  return { features, dense: dense.name };
}

async function layersNetwork(
  artifacts: LayersArtifacts,
  inputSize: number,
  classes: number,
): Promise<Network> {
  const model = await layersModelFromArtifacts(artifacts);
  return {
    engine: 'layers',
    inputSize,
    classes,
    probabilities: (x) => model.predict(x) as tf.Tensor2D,
    dispose: () => model.dispose(),
  };
}

/**
 * The convolutions up to the pooling on the fused engine, then the mean and the softmax layer as plain ops; or
 * undefined when the graph holds a layer the fused runner does not know. The decoded weights stay the caller's.
 */
function fusedNetwork(
  artifacts: LayersArtifacts,
  decoded: tf.NamedTensorMap,
  tail: Tail,
  inputSize: number,
  classes: number,
): Network | undefined {
  const graph = compileFusedGraph(
    prunedConfig(artifacts.modelTopology, [tail.features], inputSize),
    decoded,
    [tail.features],
  );
  if (!graph) return undefined;
  const kernel = decoded[`${tail.dense}/kernel`]!.clone() as tf.Tensor2D;
  const bias = decoded[`${tail.dense}/bias`]!.clone() as tf.Tensor1D;
  return {
    engine: 'fused',
    inputSize,
    classes,
    probabilities: (x) =>
      tf.tidy(() => {
        const [features] = graph.run(x);
        return tf.softmax(tf.add(tf.matMul(tf.mean(features!, [1, 2]), kernel), bias)) as tf.Tensor2D;
      }),
    dispose: () => {
      graph.dispose();
      tf.dispose([kernel, bias]);
    },
  };
}

/**
 * Loads `<dir>/model.json` + weights. Prefers the fused engine (the same function in far fewer kernels: on wasm
 * separate activation kernels cost a large share of a MobileNet's time); falls back to TF.js layers when the
 * graph holds a layer the fused runner does not know, or the backend lacks a fused kernel.
 */
export async function loadNetwork(
  dir: string,
  opts: { engine?: 'fused' | 'layers'; log?: LogFn } = {},
): Promise<Network> {
  const log = opts.log ?? silentLog;
  const artifacts = await readArtifactsDir(dir);
  const tail = findTail(artifacts);
  const input = findFunctionalConfig(artifacts.modelTopology).layers[0];
  const inputSize = (input?.config['batch_input_shape'] as (number | null)[] | undefined)?.[1];
  if (!inputSize) throw new Error(`${dir}/model.json: the input layer names no image size.`);
  const bias = artifacts.weightSpecs.find((s) => s.name === `${tail.dense}/bias`);
  const hasKernel = artifacts.weightSpecs.some((s) => s.name === `${tail.dense}/kernel`);
  if (!bias || !hasKernel) throw new Error(`${dir}: no weights for the classifier layer '${tail.dense}'.`);
  const classes = bias.shape[0] ?? 0;

  if (opts.engine !== 'layers') {
    const decoded = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
    let fused: Network | undefined;
    try {
      fused = fusedNetwork(artifacts, decoded, tail, inputSize, classes);
    } finally {
      tf.dispose(decoded);
    }
    if (fused) {
      // A backend lacking a fused kernel fails here, at load, not on the first photo.
      try {
        tf.dispose(tf.tidy(() => fused.probabilities(tf.zeros([1, inputSize, inputSize, 3]))));
        return fused;
      } catch (err) {
        fused.dispose();
        log('fused engine unavailable on this backend; running TF.js layers', {
          reason: (err as Error).message,
        });
      }
    }
  }
  return layersNetwork(artifacts, inputSize, classes);
}
