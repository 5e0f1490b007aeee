import * as tf from '@tensorflow/tfjs';
import { seededRandom, shuffleInPlace } from './prng';

/** A small classifier on cached backbone features; hidden = 0 gives softmax regression. */
export interface HeadConfig {
  hidden: number;
  inputDropout: number;
  dropout: number;
  l2: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** 'cosine' decays the learning rate to zero over the run, so a wide head settles at the end instead of taking
   * full-size steps up to the last batch. */
  schedule: 'constant' | 'cosine';
  /** Weight each class by the inverse of its frequency so a rare class counts as much as a common one. */
  balanceClasses: boolean;
  seed: number;
}

export const DEFAULT_HEAD: HeadConfig = {
  hidden: 128,
  inputDropout: 0,
  dropout: 0.5,
  l2: 1e-4,
  epochs: 20,
  batchSize: 256,
  learningRate: 1e-3,
  schedule: 'constant',
  balanceClasses: true,
  seed: 1,
};

/** Rows of features, one per example, in one flat array. */
export interface FeatureMatrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

export interface TrainedHead {
  config: HeadConfig;
  numClasses: number;
  /** Standardisation already folded into the first layer: the head takes raw backbone features. */
  model: tf.Sequential;
}

function glorot(fanIn: number, fanOut: number, random: () => number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const w = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < w.length; i++) w[i] = (random() * 2 - 1) * limit;
  return w;
}

function columnStats(x: FeatureMatrix): { mean: Float32Array; std: Float32Array } {
  const mean = new Float64Array(x.cols);
  const sq = new Float64Array(x.cols);
  for (let r = 0; r < x.rows; r++) {
    const o = r * x.cols;
    for (let c = 0; c < x.cols; c++) {
      const v = x.data[o + c]!;
      mean[c] = mean[c]! + v;
      sq[c] = sq[c]! + v * v;
    }
  }
  const m = new Float32Array(x.cols);
  const s = new Float32Array(x.cols);
  for (let c = 0; c < x.cols; c++) {
    m[c] = mean[c]! / x.rows;
    // A floor keeps dead channels (all zero after ReLU) from blowing up.
    s[c] = Math.sqrt(Math.max(sq[c]! / x.rows - m[c]! * m[c]!, 0)) + 1e-3;
  }
  return { mean: m, std: s };
}

/** The learning rate for step `step` (1-based) of `totalSteps`. */
export function learningRateAt(
  config: Pick<HeadConfig, 'learningRate' | 'schedule'>,
  step: number,
  totalSteps: number,
): number {
  if (config.schedule === 'constant') return config.learningRate;
  return config.learningRate * 0.5 * (1 + Math.cos((Math.PI * (step - 1)) / Math.max(totalSteps, 1)));
}

export interface EpochReport {
  epoch: number;
  loss: number;
  trainAccuracy: number;
}

export async function trainHead(
  x: FeatureMatrix,
  y: Int32Array,
  numClasses: number,
  config: HeadConfig,
  onEpoch?: (r: EpochReport) => void,
): Promise<TrainedHead> {
  const random = seededRandom(config.seed);
  const { mean, std } = columnStats(x);
  const counts = new Array<number>(numClasses).fill(0);
  y.forEach((c) => counts[c]!++);
  const present = counts.filter((c) => c > 0).length;
  const classWeight = counts.map((c) => (config.balanceClasses && c > 0 ? x.rows / (present * c) : 1));

  const layers: { w: tf.Variable; b: tf.Variable }[] = [];
  const sizes = config.hidden > 0 ? [x.cols, config.hidden, numClasses] : [x.cols, numClasses];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push({
      w: tf.variable(tf.tensor2d(glorot(sizes[i]!, sizes[i + 1]!, random), [sizes[i]!, sizes[i + 1]!])),
      b: tf.variable(tf.zeros([sizes[i + 1]!])),
    });
  }
  const meanT = tf.tensor1d(mean);
  const stdT = tf.tensor1d(std);
  const weightT = tf.tensor1d(classWeight);
  const optimizer = tf.train.adam(config.learningRate);
  // TF.js optimizers take no schedule; Adam reads this field on every step, so setting it is how one is applied.
  const setLearningRate = (lr: number) =>
    ((optimizer as unknown as { learningRate: number }).learningRate = lr);
  const order = Array.from({ length: x.rows }, (_, i) => i);
  const totalSteps = config.epochs * Math.ceil(x.rows / config.batchSize);
  let step = 0;

  const forward = (input: tf.Tensor2D, training: boolean): tf.Tensor2D => {
    let h: tf.Tensor2D = input.sub(meanT).div(stdT);
    const drop = (t: tf.Tensor2D, rate: number): tf.Tensor2D => {
      if (!training || rate <= 0) return t;
      const keep = tf
        .randomUniform(t.shape, 0, 1, 'float32', config.seed * 100003 + step * 7 + 1)
        .greaterEqual(rate);
      return t.mul(keep.toFloat()).div(1 - rate);
    };
    h = drop(h, config.inputDropout);
    layers.forEach((l, i) => {
      h = h.matMul(l.w).add(l.b);
      if (i + 1 < layers.length) h = drop(h.relu(), config.dropout);
    });
    return h;
  };

  for (let epoch = 1; epoch <= config.epochs; epoch++) {
    shuffleInPlace(order, random);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < x.rows; start += config.batchSize) {
      const idx = order.slice(start, start + config.batchSize);
      const batch = new Float32Array(idx.length * x.cols);
      idx.forEach((r, i) => batch.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols));
      const labels = Int32Array.from(idx, (r) => y[r]!);
      step++;
      setLearningRate(learningRateAt(config, step, totalSteps));
      const [loss, hits] = tf.tidy(() => {
        const xb = tf.tensor2d(batch, [idx.length, x.cols]);
        const yb = tf.tensor1d(labels, 'int32');
        const onehot = tf.oneHot(yb, numClasses).toFloat();
        const w = weightT.gather(yb);
        let hit: tf.Tensor | undefined;
        const cost = optimizer.minimize(() => {
          const logits = forward(xb, true);
          // Kept past minimize's own scope, which disposes every intermediate.
          hit = tf.keep(logits.argMax(1).equal(yb).sum());
          const ce = tf.losses.softmaxCrossEntropy(onehot, logits, w);
          const reg = layers.reduce((acc, l) => acc.add(l.w.square().sum()), tf.scalar(0));
          return ce.add(reg.mul(config.l2)) as tf.Scalar;
        }, true)!;
        const result: [number, number] = [cost.dataSync()[0]!, hit!.dataSync()[0]!];
        hit!.dispose();
        return result;
      });
      lossSum += loss * idx.length;
      correct += hits;
    }
    onEpoch?.({ epoch, loss: lossSum / x.rows, trainAccuracy: correct / x.rows });
  }

  // Fold the standardisation into the first layer so the saved head is a plain Dense stack on raw features.
  const folded = tf.tidy(() => {
    const w0 = layers[0]!.w.div(stdT.expandDims(1));
    const b0 = layers[0]!.b.sub(meanT.div(stdT).expandDims(0).matMul(layers[0]!.w).squeeze([0]));
    return [w0, b0, ...layers.slice(1).flatMap((l) => [l.w.clone(), l.b.clone()])];
  });
  const model = tf.sequential();
  layers.forEach((_, i) => {
    const last = i + 1 === layers.length;
    model.add(
      tf.layers.dense({
        units: sizes[i + 1]!,
        activation: last ? 'softmax' : 'relu',
        ...(i === 0 ? { inputShape: [x.cols] } : {}),
        name: last ? 'food11_probs' : `hidden_${i}`,
      }),
    );
  });
  model.setWeights(folded);
  tf.dispose([...folded, meanT, stdT, weightT, ...layers.flatMap((l) => [l.w, l.b])]);
  optimizer.dispose();
  return { config, numClasses, model };
}

/** Class probabilities for every row, batched to bound memory. */
export function predictHead(model: tf.LayersModel, x: FeatureMatrix, batchSize = 1024): Float32Array {
  const out = new Float32Array(x.rows * (model.outputs[0]!.shape[1] as number));
  let offset = 0;
  for (let start = 0; start < x.rows; start += batchSize) {
    const n = Math.min(batchSize, x.rows - start);
    const probs = tf.tidy(() =>
      (
        model.predict(
          tf.tensor2d(x.data.subarray(start * x.cols, (start + n) * x.cols), [n, x.cols]),
        ) as tf.Tensor
      ).dataSync(),
    );
    out.set(probs, offset);
    offset += probs.length;
  }
  return out;
}
