/**
 * Runs a MobileNet-style functional graph as plain TF.js ops, with every BatchNormalization folded into the
 * convolution before it and every ReLU/ReLU6 fused into that convolution. On wasm the separate BatchNorm kernels
 * cost about as much as the convolutions themselves (tf.profile of MobileNetV2-0.35 at 224 px: FusedBatchNorm 39 ms
 * of ~90 ms), so folding them is the largest speed-up available without touching the weights' meaning.
 * Layers it does not know make it decline (returns undefined) and the caller uses TF.js layers instead.
 */
import * as tf from '@tensorflow/tfjs';
import type { FunctionalConfig } from './topology';

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
  | { kind: 'add'; inputs: string[]; out: string }
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

function inboundNames(layer: { inbound_nodes?: unknown[] }): string[] {
  const nodes = layer.inbound_nodes ?? [];
  if (nodes.length > 1) throw new Unsupported('shared layer');
  const names: string[] = [];
  const walk = (v: unknown): void => {
    if (!Array.isArray(v)) return;
    if (typeof v[0] === 'string' && typeof v[1] === 'number') names.push(v[0]);
    else v.forEach(walk);
  };
  walk(nodes);
  return names;
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number')
    return [v[0], v[1]];
  throw new Unsupported('expected a pair');
}

function reluActivation(n: Node): Activation | undefined {
  const c = n.config;
  if (n.cls === 'ReLU') {
    if ((c['negative_slope'] ?? 0) !== 0 || (c['threshold'] ?? 0) !== 0) return undefined;
    const max = c['max_value'];
    return max === 6 ? 'relu6' : max == null ? 'relu' : undefined;
  }
  if (n.cls === 'Activation') {
    const a = c['activation'];
    return a === 'relu' || a === 'relu6' || a === 'linear' ? a : undefined;
  }
  return undefined;
}

function weight(weights: tf.NamedTensorMap, name: string): tf.Tensor {
  const t = weights[name];
  if (!t) throw new Error(`The model lacks the weight '${name}'; is it a complete export?`);
  return t;
}

/** BatchNormalization in inference as y = x·scale + shift, per channel. */
function bnAffine(n: Node, weights: tf.NamedTensorMap): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  const axis = n.config['axis'];
  if (!(
    axis === -1 ||
    axis === 3 ||
    (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3))
  )) {
    throw new Unsupported('batch norm over another axis');
  }
  const eps = (n.config['epsilon'] as number | undefined) ?? 1e-3;
  return tf.tidy(() => {
    const mean = weight(weights, `${n.name}/moving_mean`) as tf.Tensor1D;
    const variance = weight(weights, `${n.name}/moving_variance`) as tf.Tensor1D;
    const gamma = n.config['scale'] === false ? tf.onesLike(mean) : weight(weights, `${n.name}/gamma`);
    const beta = n.config['center'] === false ? tf.zerosLike(mean) : weight(weights, `${n.name}/beta`);
    const scale = gamma.div(variance.add(eps).sqrt()) as tf.Tensor1D;
    const shift = beta.sub(mean.mul(scale)) as tf.Tensor1D;
    return { scale, shift };
  });
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
  const nodes: Node[] = [];
  try {
    for (const l of config.layers) {
      nodes.push({ name: l.name, cls: l.class_name, config: l.config, inputs: inboundNames(l) });
    }
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  const consumers = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const requested = new Set(outputs);
  /** The one layer reading `name`, when `name` itself is not wanted as an output. */
  const soleConsumer = (name: string): Node | undefined => {
    const cs = consumers.get(name) ?? [];
    return cs.length === 1 && !requested.has(name) ? cs[0] : undefined;
  };

  const ops: Op[] = [];
  const absorbed = new Set<string>();
  const owned: tf.Tensor[] = [];
  const own = <T extends tf.Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  try {
    for (const n of nodes) {
      if (absorbed.has(n.name)) continue;
      const input = n.inputs[0] as string;
      switch (n.cls) {
        case 'InputLayer':
          ops.push({ kind: 'input', out: n.name });
          break;
        case 'Conv2D':
        case 'DepthwiseConv2D': {
          const c = n.config;
          if (c['data_format'] && c['data_format'] !== 'channels_last')
            throw new Unsupported('channels_first');
          if (pair(c['dilation_rate'] ?? 1).some((d) => d !== 1)) throw new Unsupported('dilation');
          let activation = (c['activation'] ?? 'linear') as string;
          if (activation !== 'linear' && activation !== 'relu' && activation !== 'relu6') {
            throw new Unsupported(`activation ${activation}`);
          }
          const depthwise = n.cls === 'DepthwiseConv2D';
          let filter = weight(
            weights,
            `${n.name}/${depthwise ? 'depthwise_kernel' : 'kernel'}`,
          ) as tf.Tensor4D;
          let bias = c['use_bias'] === false ? undefined : (weight(weights, `${n.name}/bias`) as tf.Tensor1D);
          let out = n.name;
          const bn = activation === 'linear' ? soleConsumer(out) : undefined;
          if (bn?.cls === 'BatchNormalization') {
            const { scale, shift } = bnAffine(bn, weights);
            const [, , inC, outC] = filter.shape;
            const folded = tf.tidy(() => {
              const f = filter.mul(
                depthwise ? scale.reshape([1, 1, inC, outC]) : scale.reshape([1, 1, 1, outC]),
              );
              const b = bias ? bias.mul(scale).add(shift) : shift.clone();
              return { f: f as tf.Tensor4D, b: b as tf.Tensor1D };
            });
            tf.dispose([scale, shift]);
            filter = own(folded.f);
            bias = own(folded.b);
            absorbed.add(bn.name);
            out = bn.name;
          } else {
            filter = own(filter.clone());
            if (bias) bias = own(bias.clone());
          }
          const next = activation === 'linear' ? soleConsumer(out) : undefined;
          const fusedAct = next && reluActivation(next);
          if (next && fusedAct) {
            activation = fusedAct;
            absorbed.add(next.name);
            out = next.name;
          }
          const padding = c['padding'];
          if (padding !== 'same' && padding !== 'valid') throw new Unsupported(`padding ${String(padding)}`);
          ops.push({
            kind: depthwise ? 'depthwise' : 'conv',
            input,
            out,
            filter,
            bias,
            strides: pair(c['strides'] ?? 1),
            pad: padding,
            activation: activation as Activation,
          });
          break;
        }
        case 'BatchNormalization': {
          const { scale, shift } = bnAffine(n, weights);
          ops.push({ kind: 'affine', input, out: n.name, scale: own(scale), shift: own(shift) });
          break;
        }
        case 'ReLU':
        case 'Activation': {
          const activation = reluActivation(n);
          if (!activation) throw new Unsupported(`${n.cls} ${JSON.stringify(n.config)}`);
          ops.push({ kind: 'activation', input, out: n.name, activation });
          break;
        }
        case 'ZeroPadding2D': {
          const p = n.config['padding'];
          const [[t, b], [l, r]] =
            typeof p === 'number'
              ? [
                  [p, p],
                  [p, p],
                ]
              : Array.isArray(p) && Array.isArray(p[0])
                ? [pair(p[0]), pair(p[1])]
                : [pair(p), pair(p)];
          ops.push({
            kind: 'pad',
            input,
            out: n.name,
            paddings: [
              [0, 0],
              [t, b],
              [l, r],
              [0, 0],
            ],
          });
          break;
        }
        case 'Add':
          ops.push({ kind: 'add', inputs: n.inputs, out: n.name });
          break;
        case 'Dropout':
          ops.push({ kind: 'identity', input, out: n.name });
          break;
        default:
          throw new Unsupported(n.cls);
      }
    }
  } catch (err) {
    tf.dispose(owned);
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  // A requested layer folded into another op would have no tensor of its own; soleConsumer prevents that.
  const produced = new Set(ops.map((o) => o.out));
  for (const name of outputs)
    if (!produced.has(name)) throw new Error(`Internal: output '${name}' was folded away.`);

  const readsOf = (op: Op): string[] =>
    op.kind === 'input' ? [] : op.kind === 'add' ? op.inputs : [op.input];
  const lastUse = new Map<string, number>();
  ops.forEach((op, i) => readsOf(op).forEach((name) => lastUse.set(name, i)));

  return {
    run(x) {
      const values = new Map<string, tf.Tensor4D>();
      const get = (name: string): tf.Tensor4D => {
        const v = values.get(name);
        if (!v) throw new Error(`Internal: '${name}' is not computed yet.`);
        return v;
      };
      ops.forEach((op, i) => {
        let y: tf.Tensor4D;
        switch (op.kind) {
          case 'input':
            y = x;
            break;
          case 'conv':
            y = tf.fused.conv2d({
              x: get(op.input),
              filter: op.filter,
              strides: op.strides,
              pad: op.pad,
              bias: op.bias,
              activation: op.activation,
            });
            break;
          case 'depthwise':
            y = tf.fused.depthwiseConv2d({
              x: get(op.input),
              filter: op.filter,
              strides: op.strides,
              pad: op.pad,
              bias: op.bias,
              activation: op.activation,
            });
            break;
          case 'affine':
            y = tf.tidy(() => get(op.input).mul(op.scale).add(op.shift) as tf.Tensor4D);
            break;
          case 'activation':
            y =
              op.activation === 'relu6'
                ? tf.relu6(get(op.input))
                : op.activation === 'relu'
                  ? tf.relu(get(op.input))
                  : get(op.input).clone();
            break;
          case 'pad':
            y = tf.pad(get(op.input), op.paddings);
            break;
          case 'add':
            y = tf.addN(op.inputs.map(get)) as tf.Tensor4D;
            break;
          case 'identity':
            y = get(op.input).clone();
            break;
        }
        values.set(op.out, y);
        // Free what no later op reads, so peak memory stays that of a few layers, not the whole net.
        for (const name of readsOf(op)) {
          if (lastUse.get(name) === i && !requested.has(name)) {
            const v = values.get(name);
            if (v && v !== x) v.dispose();
            values.delete(name);
          }
        }
      });
      const result = outputs.map(get);
      for (const [name, v] of values) if (!requested.has(name) && v !== x) v.dispose();
      return result;
    },
    dispose() {
      tf.dispose(owned);
    },
  };
}
