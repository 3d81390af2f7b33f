// Using a trained model on the user's own images: class probabilities, best first. The images arrive already
// in the training data's layout (src/data/image.ts), so they are normalised exactly as training did.

import tf from './tf.cjs';
import tfl from './tfl.cjs';
import { IMAGE_BYTES, type Split } from './data/cifar.js';
import { BatchBuffers, inOrder } from './batches.js';
import { batchTensors } from './step.js';

export interface ClassScore {
  index: number;
  name: string;
  probability: number;
}

/** What the model says of one image: its `top` classes, best first, and the whole of its output. */
export interface Prediction {
  top: ClassScore[];
  /** The softmax of the logits, a value a class, in the model's class order. */
  probabilities: number[];
  /** The network's output, before the softmax. */
  logits: number[];
}

/** The `top` most probable classes for each 32x32x3 HWC image, with all probabilities and logits, in batches of `batchSize`. */
export async function predictTop(model: tfl.LayersModel, images: Uint8Array[], classNames: string[], top: number, batchSize = 128): Promise<Prediction[]> {
  const split: Split = { images: new Uint8Array(images.length * IMAGE_BYTES), labels: new Uint16Array(images.length), count: images.length };
  images.forEach((img, i) => split.images.set(img, i * IMAGE_BYTES));
  const buffers = new BatchBuffers();
  const results: Prediction[] = [];
  for (let start = 0; start < images.length; start += batchSize) {
    const n = Math.min(batchSize, images.length - start);
    const b = buffers.fill(split, inOrder(start, n));
    const { x, y } = batchTensors(b.x, b.y, n);
    const logits = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor2D);
    const probs = tf.tidy(() => tf.softmax(logits));
    const [l, p] = (await Promise.all([logits.data(), probs.data()])) as [Float32Array, Float32Array];
    const k = probs.shape[1]!;
    tf.dispose([x, y, logits, probs]);
    for (let i = 0; i < n; i++) {
      const row = Array.from(p.subarray(i * k, (i + 1) * k), (probability, index) => ({ index, name: classNames[index] ?? String(index), probability }));
      const probabilities = row.map((c) => c.probability);
      row.sort((a, c) => c.probability - a.probability || a.index - c.index);
      results.push({ top: row.slice(0, top), probabilities, logits: Array.from(l.subarray(i * k, (i + 1) * k)) });
    }
  }
  return results;
}
