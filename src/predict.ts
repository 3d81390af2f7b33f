// Using a trained model on the user's own images: class probabilities, best first. The images arrive already
// in the training data's layout (src/data/image.ts), so they are normalised exactly as training did.

import * as tf from './tf.js';
import { IMAGE_BYTES, type Split } from './data/cifar.js';
import { makeBatch } from './step.js';

export interface ClassScore {
  index: number;
  name: string;
  probability: number;
}

/** The `top` most probable classes for each 32x32x3 HWC image, in batches of `batchSize`. */
export async function predictTop(model: tf.LayersModel, images: Uint8Array[], classNames: string[], top: number, batchSize = 128): Promise<ClassScore[][]> {
  const split: Split = { images: new Uint8Array(images.length * IMAGE_BYTES), labels: new Uint8Array(images.length), count: images.length };
  images.forEach((img, i) => split.images.set(img, i * IMAGE_BYTES));
  const xb = new Float32Array(Math.min(batchSize, images.length) * IMAGE_BYTES);
  const yb = new Int32Array(Math.min(batchSize, images.length));
  const results: ClassScore[][] = [];
  for (let start = 0; start < images.length; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, images.length - start) }, (_, i) => start + i);
    const { x, y } = makeBatch(split, idx, xb, yb);
    const probs = tf.tidy(() => tf.softmax(model.apply(x, { training: false }) as tf.Tensor2D));
    const p = (await probs.data()) as Float32Array;
    const k = probs.shape[1]!;
    tf.dispose([x, y, probs]);
    for (let b = 0; b < idx.length; b++) {
      const row = Array.from(p.subarray(b * k, (b + 1) * k), (probability, index) => ({ index, name: classNames[index] ?? String(index), probability }));
      row.sort((a, c) => c.probability - a.probability || a.index - c.index);
      results.push(row.slice(0, top));
    }
  }
  return results;
}
