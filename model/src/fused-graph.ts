/**
 * Runs a MobileNet-style functional graph as plain TF.js ops, with every BatchNormalization folded into the
 * convolution before it and every ReLU/ReLU6 fused into that convolution. On wasm the separate BatchNorm kernels
 * cost about as much as the convolutions themselves (tf.profile of MobileNetV2-0.35 at 224 px: FusedBatchNorm 39 ms
 * of ~90 ms), so folding them is the largest speed-up available without touching the weights' meaning.
 * Besides MobileNetV2's layers it runs FastViT's (model/train/fastvit.py: a squeeze-excite gate is AveragePooling2D and
 * Multiply) and a two-branch network's Concatenate. Layers it does not know make it decline (returns undefined) and
 * the caller uses TF.js layers instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { inboundLayerNames, type FunctionalConfig } from './topology';

type Activation = 'linear' | 'relu' | 'relu6';

type Op =
  | { kind: 'input'; out: string }
  | {
      kind: 'conv' | 'depthwise';
      input: string;
      out: string;
      filter: tf.Tensor4D;
      bias?: tf.Tensor1D;
      strides: [number, number];
      pad: 'same' | 'valid';
      activation: Activation;
    }
  | { kind: 'affine'; input: string; out: string; scale: tf.Tensor1D; shift: tf.Tensor1D }
  | { kind: 'activation'; input: string; out: string; activation: Activation }
  | { kind: 'pad'; input: string; out: string; paddings: [number, number][] }
  | { kind: 'add' | 'multiply'; inputs: string[]; out: string }
  | { kind: 'concat'; inputs: string[]; out: string }
  | {
      kind: 'avgpool';
      input: string;
      out: string;
      poolSize: [number, number];
      strides: [number, number];
      pad: 'same' | 'valid';
    }
  | { kind: 'identity'; input: string; out: string };

interface Node {
  name: string;
  cls: string;
  config: Record<string, unknown>;
  inputs: string[];
}

export interface FusedGraph {
  /** Outputs in the requested order; intermediates are disposed as soon as nothing needs them. */
  run(x: tf.Tensor4D): tf.Tensor4D[];
  dispose(): void;
}

class Unsupported extends Error {}

/**
 * The layers as nodes in the export's (topological) order, or undefined when one is shared: a layer applied twice
 * has two outputs under one name, and the ops below name each value by its layer.
 */
function graphNodes(config: FunctionalConfig): Node[] | undefined {
  if (config.layers.some((layer) => (layer.inbound_nodes ?? []).length > 1)) return undefined;
  return config.layers.map((layer) => ({
    name: layer.name,
    cls: layer.class_name,
    config: layer.config,
    inputs: inboundLayerNames(layer),
  }));
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number')
    return [v[0], v[1]];
  throw new Unsupported('expected a pair');
}

function reluActivation(node: Node): Activation | undefined {
  const config = node.config;
  if (node.cls === 'ReLU') {
    if ((config['negative_slope'] ?? 0) !== 0 || (config['threshold'] ?? 0) !== 0) return undefined;
    const max = config['max_value'];
    return max === 6 ? 'relu6' : max == null ? 'relu' : undefined;
  }
  if (node.cls === 'Activation') {
    const activation = config['activation'];
    return activation === 'relu' || activation === 'relu6' || activation === 'linear'
      ? activation
      : undefined;
  }
  return undefined;
}

function weight(weights: tf.NamedTensorMap, name: string): tf.Tensor {
  const t = weights[name];
  if (!t) throw new Error(`The model lacks the weight '${name}'; is it a complete export?`);
  return t;
}

/** BatchNormalization in inference as y = x·scale + shift, per channel. */
function bnAffine(node: Node, weights: tf.NamedTensorMap): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  const axis = node.config['axis'];
  if (!(
    axis === -1 ||
    axis === 3 ||
    (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3))
  )) {
    throw new Unsupported('batch norm over another axis');
  }
  const eps = (node.config['epsilon'] as number | undefined) ?? 1e-3;
  return tf.tidy(() => {
    const mean = weight(weights, `${node.name}/moving_mean`) as tf.Tensor1D;
    const variance = weight(weights, `${node.name}/moving_variance`) as tf.Tensor1D;
    const gamma = node.config['scale'] === false ? tf.onesLike(mean) : weight(weights, `${node.name}/gamma`);
    const beta = node.config['center'] === false ? tf.zerosLike(mean) : weight(weights, `${node.name}/beta`);
    const scale = tf.div(gamma, tf.sqrt(tf.add(variance, eps))) as tf.Tensor1D;
    const shift = tf.sub(beta, tf.mul(mean, scale)) as tf.Tensor1D;
    return { scale, shift };
  });
}

/** A convolution's filter and bias with the batch norm after it multiplied in: new tensors, the inputs untouched. */
function foldBatchNorm(
  conv: { filter: tf.Tensor4D; bias?: tf.Tensor1D; depthwise: boolean },
  batchNorm: Node,
  weights: tf.NamedTensorMap,
): { filter: tf.Tensor4D; bias: tf.Tensor1D } {
  const { scale, shift } = bnAffine(batchNorm, weights);
  const [, , inC, outC] = conv.filter.shape;
  const folded = tf.tidy(() => ({
    filter: tf.mul(
      conv.filter,
      conv.depthwise ? tf.reshape(scale, [1, 1, inC, outC]) : tf.reshape(scale, [1, 1, 1, outC]),
    ) as tf.Tensor4D,
    bias: (conv.bias ? tf.add(tf.mul(conv.bias, scale), shift) : shift.clone()) as tf.Tensor1D,
  }));
  tf.dispose([scale, shift]);
  return folded;
}

/** What planning an op may use besides the node: the weights, the graph's shape, and the tensors the graph keeps. */
interface Planning {
  weights: tf.NamedTensorMap;
  /** The one layer reading `name`, when `name` itself is not wanted as an output: a layer that can be fused in. */
  soleConsumer(name: string): Node | undefined;
  /** Layers fused into an op before them, which get no op of their own. */
  absorbed: Set<string>;
  /** Registers a tensor the compiled graph owns (disposed with it, or at once when compiling gives up). */
  own<T extends tf.Tensor>(t: T): T;
}

/**
 * A Conv2D or DepthwiseConv2D as one fused op: a batch norm right after it folded into its weights, and a ReLU or
 * ReLU6 after that (or after the convolution) fused in as its activation.
 */
function convolutionOp(node: Node, plan: Planning): Op {
  const config = node.config;
  if (config['data_format'] && config['data_format'] !== 'channels_last')
    throw new Unsupported('channels_first');
  if (pair(config['dilation_rate'] ?? 1).some((d) => d !== 1)) throw new Unsupported('dilation');
  const padding = config['padding'];
  if (padding !== 'same' && padding !== 'valid') throw new Unsupported(`padding ${String(padding)}`);
  let activation = (config['activation'] ?? 'linear') as string;
  if (activation !== 'linear' && activation !== 'relu' && activation !== 'relu6') {
    throw new Unsupported(`activation ${activation}`);
  }
  const depthwise = node.cls === 'DepthwiseConv2D';
  const kernel = weight(
    plan.weights,
    `${node.name}/${depthwise ? 'depthwise_kernel' : 'kernel'}`,
  ) as tf.Tensor4D;
  const kernelBias =
    config['use_bias'] === false ? undefined : (weight(plan.weights, `${node.name}/bias`) as tf.Tensor1D);
  let filter: tf.Tensor4D;
  let bias: tf.Tensor1D | undefined;
  let out = node.name;
  const batchNorm = activation === 'linear' ? plan.soleConsumer(out) : undefined;
  if (batchNorm?.cls === 'BatchNormalization') {
    const folded = foldBatchNorm({ filter: kernel, bias: kernelBias, depthwise }, batchNorm, plan.weights);
    filter = plan.own(folded.filter);
    bias = plan.own(folded.bias);
    plan.absorbed.add(batchNorm.name);
    out = batchNorm.name;
  } else {
    filter = plan.own(kernel.clone());
    bias = kernelBias && plan.own(kernelBias.clone());
  }
  const next = activation === 'linear' ? plan.soleConsumer(out) : undefined;
  const fusedActivation = next && reluActivation(next);
  if (next && fusedActivation) {
    activation = fusedActivation;
    plan.absorbed.add(next.name);
    out = next.name;
  }
  return {
    kind: depthwise ? 'depthwise' : 'conv',
    input: node.inputs[0] as string,
    out,
    filter,
    bias,
    strides: pair(config['strides'] ?? 1),
    pad: padding,
    activation: activation as Activation,
  };
}

/** ZeroPadding2D's padding, in any of the forms Keras writes it, as tf.pad's NHWC paddings. */
function zeroPaddingOp(node: Node): Op {
  const padding = node.config['padding'];
  const [[top, bottom], [left, right]] =
    typeof padding === 'number'
      ? [
          [padding, padding],
          [padding, padding],
        ]
      : Array.isArray(padding) && Array.isArray(padding[0])
        ? [pair(padding[0]), pair(padding[1])]
        : [pair(padding), pair(padding)];
  return {
    kind: 'pad',
    input: node.inputs[0] as string,
    out: node.name,
    paddings: [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ],
  };
}

/** The op computing a node, or Unsupported for a layer this runner does not know. */
function opFor(node: Node, plan: Planning): Op {
  const input = node.inputs[0] as string;
  switch (node.cls) {
    case 'InputLayer':
      return { kind: 'input', out: node.name };
    case 'Conv2D':
    case 'DepthwiseConv2D':
      return convolutionOp(node, plan);
    case 'BatchNormalization': {
      const { scale, shift } = bnAffine(node, plan.weights);
      return { kind: 'affine', input, out: node.name, scale: plan.own(scale), shift: plan.own(shift) };
    }
    case 'ReLU':
    case 'Activation': {
      const activation = reluActivation(node);
      if (!activation) throw new Unsupported(`${node.cls} ${JSON.stringify(node.config)}`);
      return { kind: 'activation', input, out: node.name, activation };
    }
    case 'ZeroPadding2D':
      return zeroPaddingOp(node);
    case 'Add':
      return { kind: 'add', inputs: node.inputs, out: node.name };
    // A squeeze-excite gate (N×1×1×C) times its feature map, broadcast as Keras' Multiply does.
    case 'Multiply':
      return { kind: 'multiply', inputs: node.inputs, out: node.name };
    // Two backbones' feature maps side by side before one pooling (a two-branch network).
    case 'Concatenate': {
      const axis = node.config['axis'] ?? -1;
      if (axis !== -1 && axis !== 3) throw new Unsupported(`concatenate on axis ${String(axis)}`);
      return { kind: 'concat', inputs: node.inputs, out: node.name };
    }
    case 'AveragePooling2D': {
      const padding = node.config['padding'] ?? 'valid';
      if (padding !== 'same' && padding !== 'valid') throw new Unsupported(`padding ${String(padding)}`);
      if (node.config['data_format'] && node.config['data_format'] !== 'channels_last')
        throw new Unsupported('channels_first');
      const poolSize = pair(node.config['pool_size'] ?? 2);
      return {
        kind: 'avgpool',
        input,
        out: node.name,
        poolSize,
        strides: node.config['strides'] == null ? poolSize : pair(node.config['strides']),
        pad: padding,
      };
    }
    case 'Dropout':
      return { kind: 'identity', input, out: node.name };
    default:
      throw new Unsupported(node.cls);
  }
}

/** The ops in order with the tensors they own, or undefined (nothing left allocated) for an unknown layer. */
function planOps(
  nodes: Node[],
  weights: tf.NamedTensorMap,
  requested: Set<string>,
): { ops: Op[]; owned: tf.Tensor[] } | undefined {
  const consumers = new Map<string, Node[]>();
  for (const node of nodes) {
    for (const input of node.inputs) consumers.set(input, [...(consumers.get(input) ?? []), node]);
  }
  const owned: tf.Tensor[] = [];
  const plan: Planning = {
    weights,
    soleConsumer: (name) => {
      const readers = consumers.get(name) ?? [];
      return readers.length === 1 && !requested.has(name) ? readers[0] : undefined;
    },
    absorbed: new Set(),
    own: (t) => {
      owned.push(t);
      return t;
    },
  };
  const ops: Op[] = [];
  try {
    for (const node of nodes) if (!plan.absorbed.has(node.name)) ops.push(opFor(node, plan));
  } catch (err) {
    tf.dispose(owned);
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  return { ops, owned };
}

const readsOf = (op: Op): string[] => (op.kind === 'input' ? [] : 'inputs' in op ? op.inputs : [op.input]);

function runOp(op: Op, x: tf.Tensor4D, read: (name: string) => tf.Tensor4D): tf.Tensor4D {
  switch (op.kind) {
    case 'input':
      return x;
    case 'conv':
    case 'depthwise': {
      const fusedConvolution = op.kind === 'conv' ? tf.fused.conv2d : tf.fused.depthwiseConv2d;
      return fusedConvolution({
        x: read(op.input),
        filter: op.filter,
        strides: op.strides,
        pad: op.pad,
        bias: op.bias,
        activation: op.activation,
      });
    }
    case 'affine':
      return tf.tidy(() => tf.add(tf.mul(read(op.input), op.scale), op.shift) as tf.Tensor4D);
    case 'activation':
      return op.activation === 'relu6'
        ? tf.relu6(read(op.input))
        : op.activation === 'relu'
          ? tf.relu(read(op.input))
          : read(op.input).clone();
    case 'pad':
      return tf.pad(read(op.input), op.paddings);
    case 'add':
      return tf.addN(op.inputs.map(read)) as tf.Tensor4D;
    case 'multiply':
      return tf.tidy(() => op.inputs.map(read).reduce((a, b) => tf.mul(a, b)) as tf.Tensor4D);
    case 'concat':
      return tf.concat(op.inputs.map(read), 3);
    case 'avgpool':
      return tf.avgPool(read(op.input), op.poolSize, op.strides, op.pad);
    case 'identity':
      return read(op.input).clone();
  }
}

/** Runs the ops in order, freeing each value after the last op that reads it, unless it is an output. */
function runner(ops: Op[], outputs: string[]): FusedGraph['run'] {
  const requested = new Set(outputs);
  const lastUse = new Map<string, number>();
  ops.forEach((op, i) => readsOf(op).forEach((name) => lastUse.set(name, i)));
  return (x) => {
    const values = new Map<string, tf.Tensor4D>();
    const read = (name: string): tf.Tensor4D => {
      const value = values.get(name);
      if (!value) throw new Error(`Internal: '${name}' is not computed yet.`);
      return value;
    };
    ops.forEach((op, i) => {
      values.set(op.out, runOp(op, x, read));
      // Free what no later op reads, so peak memory stays that of a few layers, not the whole net.
      for (const name of readsOf(op)) {
        if (lastUse.get(name) === i && !requested.has(name)) {
          const value = values.get(name);
          if (value && value !== x) value.dispose();
          values.delete(name);
        }
      }
    });
    const result = outputs.map(read);
    for (const [name, value] of values) if (!requested.has(name) && value !== x) value.dispose();
    return result;
  };
}

/**
 * Compiles the (already pruned) functional config with its decoded weights, or returns undefined when it holds a
 * layer this runner does not know. The weights map stays the caller's; the graph owns copies of what it needs.
 */
export function compileFusedGraph(
  config: FunctionalConfig,
  weights: tf.NamedTensorMap,
  outputs: string[],
): FusedGraph | undefined {
  const nodes = graphNodes(config);
  const planned = nodes && planOps(nodes, weights, new Set(outputs));
  if (!planned) return undefined;
  // A requested layer folded into another op would have no tensor of its own; soleConsumer prevents that.
  const produced = new Set(planned.ops.map((op) => op.out));
  for (const name of outputs)
    if (!produced.has(name)) throw new Error(`Internal: output '${name}' was folded away.`);
  return {
    run: runner(planned.ops, outputs),
    dispose: () => tf.dispose(planned.owned),
  };
}
