// One SGD step of the seed's recipe: cross-entropy on the logits, its gradient, the update. Shared by the
// training loop (src/train.ts), the data-parallel workers (src/parallel.ts) and the benchmark.

import * as tf from '@tensorflow/tfjs';
import { NUM_CLASSES } from './data/cifar.js';

/** Mean softmax cross-entropy over the batch, as PyTorch's CrossEntropyLoss. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, NUM_CLASSES), logits) as tf.Scalar;
}

export function accuracy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
}

/**
 * The batch's mean loss, its accuracy, and the loss's gradient for each trainable weight (by variable name),
 * as tensors the caller owns. Shared by the one-thread step and the data-parallel workers (src/parallel.ts).
 */
export function lossAndGrads(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D): { loss: tf.Scalar; acc: tf.Scalar; grads: tf.NamedTensorMap } {
  return tf.tidy(() => {
    let acc: tf.Scalar | undefined;
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor2D;
      acc = tf.keep(accuracy(logits, y));
      return crossEntropy(logits, y);
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
