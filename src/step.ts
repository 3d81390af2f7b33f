// Batches and one SGD step of the seed's recipe: normalised pixels in, cross-entropy on the logits, its
// gradient, the update. Shared by the backends' runners (src/backends/), prediction and the benchmark.

import * as tf from './tf.js';
import { IMAGE_BYTES, NUM_CLASSES, type Split } from './data/cifar.js';
import { INPUT_SHAPE } from './model.js';

/** Pixels to the seed's `(x/255 - 0.5)/0.5`, i.e. x/127.5 - 1, as a lookup table. */
export const NORMALISE = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);

/**
 * Fills `out` with the normalised images of `indices` (HWC) and `labelsOut` with their labels. Normalising in
 * JS with a table costs ~0.3 ms per batch of 64 and needs no extra device op.
 */
export function fillBatch(split: Split, indices: ArrayLike<number>, out: Float32Array, labelsOut: Int32Array): void {
  const n = indices.length;
  for (let b = 0; b < n; b++) {
    const src = indices[b]! * IMAGE_BYTES;
    const dst = b * IMAGE_BYTES;
    for (let k = 0; k < IMAGE_BYTES; k++) out[dst + k] = NORMALISE[split.images[src + k]!]!;
    labelsOut[b] = split.labels[indices[b]!]!;
  }
}

/** fillBatch, then the batch as tensors. */
export function makeBatch(split: Split, indices: ArrayLike<number>, out: Float32Array, labelsOut: Int32Array): { x: tf.Tensor4D; y: tf.Tensor1D } {
  fillBatch(split, indices, out, labelsOut);
  const n = indices.length;
  return {
    x: tf.tensor4d(out.subarray(0, n * IMAGE_BYTES), [n, ...INPUT_SHAPE] as [number, number, number, number]),
    y: tf.tensor1d(labelsOut.subarray(0, n), 'int32'),
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
 * as tensors the caller owns. Shared by the one-thread step and the data-parallel workers (src/backends/wasm/parallel.ts).
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
 * One SGD step: forward, backward, update. Returns the batch's loss and accuracy as device scalars the
 * caller owns; every other tensor is freed.
 */
export function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, x: tf.Tensor4D, y: tf.Tensor1D): { loss: tf.Scalar; acc: tf.Scalar } {
  const { loss, acc, grads } = lossAndGrads(model, x, y);
  optimizer.applyGradients(grads);
  tf.dispose(grads);
  return { loss, acc };
}
