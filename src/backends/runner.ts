// The plain way to run the recipe on one device (cpu, tensorflow, webgpu, and wasm on one thread): each batch is
// gathered and normalised on the host (a backend may do it its own way: webgpu on the GPU), stepped; per-batch
// numbers stay on the device, and evaluation reads its sums and predictions once at the end, asynchronously
// (WebGPU cannot read synchronously in Node).

import { IMAGE_BYTES, type Split } from '../data/cifar.js';
import { lossAndGrads, makeBatch, seedObjective, type Objective } from '../step.js';
import * as tf from '../tf.js';
import type { EvalResult, Runner } from './types.js';

export class DeviceRunner implements Runner {
  private x = new Float32Array(0);
  private y = new Int32Array(0);

  /**
   * `threads`: what to record for rounding (wasm on one thread: 1), else undefined. `objective`: the loss and
   * accuracy as this backend computes them (webgpu: fused programs).
   */
  constructor(readonly threads: number | undefined = undefined, protected readonly objective: Objective = seedObjective) {}

  /** Host buffers for a batch of `n`, grown as needed and reused. */
  private buffers(n: number): { x: Float32Array; y: Int32Array } {
    if (this.y.length < n) {
      this.x = new Float32Array(n * IMAGE_BYTES);
      this.y = new Int32Array(n);
    }
    return { x: this.x, y: this.y };
  }

  /** The images `indices` of `split` as a normalised batch and its labels, tensors the caller disposes. */
  protected batch(split: Split, indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor1D } {
    const b = this.buffers(indices.length);
    return makeBatch(split, indices, b.x, b.y);
  }

  async step(model: tf.LayersModel, optimizer: tf.Optimizer, split: Split, indices: ArrayLike<number>) {
    const { x, y } = this.batch(split, indices);
    const { loss, acc, grads } = lossAndGrads(model, x, y, this.objective);
    this.update(model, optimizer, grads);
    tf.dispose([x, y, ...Object.values(grads)]);
    return { loss, acc };
  }

  /** Applies the gradients (by variable name); a backend may do it its own way (webgpu: one dispatch a weight). */
  protected update(_model: tf.LayersModel, optimizer: tf.Optimizer, grads: tf.NamedTensorMap): void {
    optimizer.applyGradients(grads);
  }

  /** Loss and accuracy over a split in order, in batches of `batchSize`, read from the device once at the end. */
  async evaluate(model: tf.LayersModel, split: Split, batchSize: number): Promise<EvalResult> {
    const batches = Math.ceil(split.count / batchSize);
    let lossSum = tf.scalar(0);
    let accSum = tf.scalar(0);
    const preds: tf.Tensor1D[] = [];
    for (let b = 0; b < batches; b++) {
      const start = b * batchSize;
      const { x, y } = this.batch(split, Array.from({ length: Math.min(batchSize, split.count - start) }, (_, i) => start + i));
      const next = tf.tidy(() => {
        const logits = model.apply(x, { training: false }) as tf.Tensor2D;
        preds.push(tf.keep(tf.argMax(logits, 1) as tf.Tensor1D));
        const o = this.objective(logits, y);
        return { lossSum: tf.add(lossSum, o.loss) as tf.Scalar, accSum: tf.add(accSum, o.acc) as tf.Scalar };
      });
      tf.dispose([x, y, lossSum, accSum]);
      ({ lossSum, accSum } = next);
    }
    const all = tf.concat(preds);
    const [predictions, loss, acc] = await Promise.all([all.data(), lossSum.data(), accSum.data()]);
    tf.dispose([all, lossSum, accSum, ...preds]);
    return { loss: loss[0]! / batches, acc: acc[0]! / batches, predictions: Uint8Array.from(predictions as Int32Array) };
  }

  async dispose(): Promise<void> {}
}
