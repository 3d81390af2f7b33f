// One SGD step of the recipe in TensorFlow.js ops: the batch as tensors, the logits, cross-entropy and its
// gradient, and the update (plain, or with PyTorch's momentum, Nesterov and weight decay). The runners that run op by op share it (src/backends/runner.ts, the wasm threads in
// src/backends/wasm/parallel.ts); prediction uses the tensors of a batch.

import tf from './tf.cjs';
import tfl from './tfl.cjs';
import { IMAGE_BYTES } from './data/cifar.js';
import { INPUT_SHAPE } from './model.js';
import type { Recipe } from './recipe.js';

/** The first `n` images of `x` (normalised, NHWC) and labels of `y` as tensors the caller disposes. */
export function batchTensors(x: Float32Array, y: Int32Array, n: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return {
    x: tf.tensor4d(x.subarray(0, n * IMAGE_BYTES), [n, ...INPUT_SHAPE] as [number, number, number, number]),
    y: tf.tensor1d(y.subarray(0, n), 'int32'),
  };
}

/**
 * Mean softmax cross-entropy over the batch, as PyTorch's CrossEntropyLoss; `smoothing` e as its label_smoothing:
 * the targets (1 - e) * one_hot + e / classes, which is what tf.losses.softmaxCrossEntropy's labelSmoothing makes.
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing = 0): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, logits.shape[1]), logits, undefined, smoothing) as tf.Scalar;
}

export function accuracy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
}

/**
 * For each row, how many classes outrank its label: a larger logit, or an equal one of a lower index (argMax's and
 * tf.topk's order on ties). 0 is a top-1 hit, under k a top-k one: what `eval`'s top-5 counts.
 */
export function labelRank(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const classes = logits.shape[1];
    const own = tf.sum(tf.mul(logits, tf.oneHot(labels, classes)), 1, true); // the label's logit: the rest add zeros
    const before = tf.less(tf.expandDims(tf.range(0, classes, 1, 'int32'), 0), tf.expandDims(labels, 1));
    const outrank = tf.logicalOr(tf.greater(logits, own), tf.logicalAnd(tf.equal(logits, own), before));
    return tf.sum(tf.cast(outrank, 'int32'), 1) as tf.Tensor1D;
  });
}

/** The batch's mean loss (differentiable) and accuracy from the logits; a backend may compute them its own way. */
export type Objective = (logits: tf.Tensor2D, labels: tf.Tensor1D) => { loss: tf.Scalar; acc: tf.Scalar };

/** The seed's: PyTorch's CrossEntropyLoss and the fraction of first-maximum hits, in TensorFlow.js ops. */
export const lessonObjective: Objective = (logits, labels) => ({ loss: crossEntropy(logits, labels), acc: accuracy(logits, labels) });

/** The recipe's objective: the seed's, with its label smoothing where it has one. */
export const objectiveOf = (smoothing: number): Objective => (smoothing === 0 ? lessonObjective : (logits, labels) => ({ loss: crossEntropy(logits, labels, smoothing), acc: accuracy(logits, labels) }));

/**
 * The batch's mean loss, its accuracy, and the loss's gradient for each trainable weight (by variable name),
 * as tensors the caller owns.
 */
export function lossAndGrads(model: tfl.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, objective: Objective = lessonObjective): { loss: tf.Scalar; acc: tf.Scalar; grads: tf.NamedTensorMap } {
  return tf.tidy(() => {
    let acc: tf.Scalar | undefined;
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor2D;
      const o = objective(logits, y);
      acc = tf.keep(o.acc);
      return o.loss;
    }, vars);
    return { loss: value, acc: acc!, grads };
  });
}

/** The optimiser's hyperparameters: PyTorch's torch.optim.SGD with dampening 0 (the learning rate comes per step). */
export interface SgdOptions {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

export const sgdOptions = (r: Recipe): SgdOptions => ({ momentum: r.momentum, nesterov: r.nesterov, weightDecay: r.weightDecay });

/** The seed's plain SGD (no momentum, no weight decay): its update is applySgd's, bit for bit, on every backend. */
export const isPlainSgd = (o: SgdOptions): boolean => o.momentum === 0 && o.weightDecay === 0;

/**
 * The SGD update of each trainable weight from its gradient (by variable name), as tfjs's SGDOptimizer computes
 * it: w + (-lr) * g, the product rounded before the sum (so the seed's numbers are unchanged to the last bit).
 */
export function applySgd(model: tfl.LayersModel, grads: tf.NamedTensorMap, lr: number): void {
  tf.tidy(() => {
    const c = tf.scalar(-lr);
    for (const w of model.trainableWeights) {
      const v = w.read() as tf.Variable;
      const g = grads[v.name];
      if (g) v.assign(tf.add(tf.mul(c, g), v));
    }
  });
}

/**
 * PyTorch's SGD on a model's trainable weights (issue #21), per weight w with gradient g:
 *   g = g + weightDecay * w;  buf = momentum * buf + g;  g = nesterov ? g + momentum * buf : buf;  w = w + (-lr) * g
 * with buf starting at zero (PyTorch starts it at the first gradient: the same numbers, as 0 * m + g = g). Without
 * momentum and weight decay it is applySgd's update, bit for bit. The momentum buffers live where the weights do and
 * are saved with the checkpoint (state() and the runner's optimizerState), so a resumed run continues exactly.
 */
export class Sgd {
  private readonly buffers: tf.Variable[] | null;

  /** `state`: the momentum buffers, every weight's concatenated in model.trainableWeights order (a checkpoint's). */
  constructor(
    private readonly model: tfl.LayersModel,
    private readonly opts: SgdOptions,
    state?: Float32Array | null,
  ) {
    let off = 0;
    this.buffers = opts.momentum > 0
      ? model.trainableWeights.map((w) => {
          const size = (w.shape as number[]).reduce((a, b) => a * b, 1);
          const init = state ? state.subarray(off, off + size) : new Float32Array(size);
          off += size;
          return tf.variable(tf.tensor(init, w.shape as number[]), false);
        })
      : null;
  }

  apply(grads: tf.NamedTensorMap, lr: number): void {
    const { momentum, nesterov, weightDecay } = this.opts;
    if (isPlainSgd(this.opts)) return applySgd(this.model, grads, lr);
    tf.tidy(() => {
      const c = tf.scalar(-lr);
      const m = tf.scalar(momentum);
      const wd = tf.scalar(weightDecay);
      this.model.trainableWeights.forEach((w, i) => {
        const v = w.read() as tf.Variable;
        let g = grads[v.name];
        if (!g) return;
        if (weightDecay !== 0) g = tf.add(g, tf.mul(wd, v));
        const buf = this.buffers?.[i];
        if (buf) {
          const b = tf.add(tf.mul(m, buf), g);
          buf.assign(b);
          g = nesterov ? tf.add(g, tf.mul(m, b)) : b;
        }
        v.assign(tf.add(tf.mul(c, g), v));
      });
    });
  }

  /** The momentum buffers, concatenated in model.trainableWeights order, or null without momentum. */
  async state(): Promise<Float32Array | null> {
    if (!this.buffers) return null;
    return concatFloats(await Promise.all(this.buffers.map(async (b) => (await b.data()) as Float32Array)));
  }

  dispose(): void {
    if (this.buffers) tf.dispose(this.buffers);
  }
}

/** Float32Arrays end to end. */
export function concatFloats(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
