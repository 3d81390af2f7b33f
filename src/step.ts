// One SGD step of the recipe in TensorFlow.js ops: the batch as tensors, the logits, cross-entropy and its
// gradient, and the update. The runners that run op by op share it (src/backends/runner.ts, the wasm threads in
// src/backends/wasm/parallel.ts); prediction uses the tensors of a batch.

import * as tf from './tf.js';
import { IMAGE_BYTES, NUM_CLASSES } from './data/cifar.js';
import { INPUT_SHAPE } from './model.js';

/** The first `n` images of `x` (normalised, NHWC) and labels of `y` as tensors the caller disposes. */
export function batchTensors(x: Float32Array, y: Int32Array, n: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return {
    x: tf.tensor4d(x.subarray(0, n * IMAGE_BYTES), [n, ...INPUT_SHAPE] as [number, number, number, number]),
    y: tf.tensor1d(y.subarray(0, n), 'int32'),
  };
}

/** Mean softmax cross-entropy over the batch, as PyTorch's CrossEntropyLoss. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, NUM_CLASSES), logits) as tf.Scalar;
}

export function accuracy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
}

/** The batch's mean loss (differentiable) and accuracy from the logits; a backend may compute them its own way. */
export type Objective = (logits: tf.Tensor2D, labels: tf.Tensor1D) => { loss: tf.Scalar; acc: tf.Scalar };

/** The seed's: PyTorch's CrossEntropyLoss and the fraction of first-maximum hits, in TensorFlow.js ops. */
export const seedObjective: Objective = (logits, labels) => ({ loss: crossEntropy(logits, labels), acc: accuracy(logits, labels) });

/**
 * The batch's mean loss, its accuracy, and the loss's gradient for each trainable weight (by variable name),
 * as tensors the caller owns.
 */
export function lossAndGrads(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, objective: Objective = seedObjective): { loss: tf.Scalar; acc: tf.Scalar; grads: tf.NamedTensorMap } {
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

/**
 * The SGD update of each trainable weight from its gradient (by variable name), as tfjs's SGDOptimizer computes
 * it: w + (-lr) * g, the product rounded before the sum (so the seed's numbers are unchanged to the last bit).
 */
export function applySgd(model: tf.LayersModel, grads: tf.NamedTensorMap, lr: number): void {
  tf.tidy(() => {
    const c = tf.scalar(-lr);
    for (const w of model.trainableWeights) {
      const v = w.read() as tf.Variable;
      const g = grads[v.name];
      if (g) v.assign(tf.add(tf.mul(c, g), v));
    }
  });
}
