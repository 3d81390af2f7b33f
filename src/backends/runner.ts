// The plain way to run the recipe on one device, op by op through TensorFlow.js (cpu, tensorflow, wasm on one
// thread, and webgpu's fallback): each batch is built on the host by the batch stage (a backend may build it its
// own way: webgpu gathers it on the GPU), stepped, and updated in place in the model's variables. Per-step numbers
// stay on the device until the training loop takes them; evaluation reads its sums and predictions once at the
// end, asynchronously (WebGPU cannot read synchronously in Node).

import { BatchBuffers, inOrder, type Batch } from '../batches.js';
import type { Split } from '../data/cifar.js';
import { Sgd, batchTensors, labelRank, lossAndGrads, objectiveOf, sgdOptions, type Objective } from '../step.js';
import tf from '../tf.cjs';
import tfl from '../tfl.cjs';
import type { EvalResult, Runner, RunnerOptions, RunnerProbe, Settings } from './types.js';

export class OpsRunner implements Runner {
  readonly note: string | null = null;
  /** `1 thread` where the settings say so (wasm on one thread), else nothing to say. */
  readonly label: string | null;
  private readonly buffers = new BatchBuffers();
  /** Each step's loss and accuracy, on the device, until numbers() takes them. */
  private pending: tf.Scalar[] = [];

  protected readonly model: tfl.LayersModel;
  private readonly sgd: Sgd;

  /**
   * `opts`: the model, the recipe and a resumed run's optimiser state; `settings`: what the results depend on (wasm
   * on one thread: {threads: 1}); `objective`: the loss and accuracy as this backend computes them.
   */
  protected readonly objective: Objective;

  constructor(
    opts: RunnerOptions,
    readonly settings: Settings = {},
    objective: Objective = objectiveOf(opts.recipe.labelSmoothing),
  ) {
    this.objective = objective;
    this.model = opts.model;
    this.sgd = new Sgd(opts.model, sgdOptions(opts.recipe), opts.optimizerState);
    this.label = settings.threads === 1 ? '1 thread' : null;
  }

  /** The batch as tensors the caller disposes: built on the host here; a backend may build it its own way. */
  protected batch(split: Split, batch: Batch): { x: tf.Tensor4D; y: tf.Tensor1D } {
    const b = this.buffers.fill(split, batch);
    return batchTensors(b.x, b.y, b.n);
  }

  async step(split: Split, batch: Batch, lr: number): Promise<void> {
    const { x, y } = this.batch(split, batch);
    const { loss, acc, grads } = lossAndGrads(this.model, x, y, this.objective);
    this.update(grads, lr);
    tf.dispose([x, y, ...Object.values(grads)]);
    this.pending.push(loss, acc);
  }

  /** Applies the gradients (by variable name); a backend may do it its own way (webgpu: one dispatch a weight). */
  protected update(grads: tf.NamedTensorMap, lr: number): void {
    this.sgd.apply(grads, lr);
  }

  optimizerState(): Promise<Float32Array | null> {
    return this.sgd.state();
  }

  numbers(): Promise<Float32Array> {
    if (this.pending.length === 0) return Promise.resolve(new Float32Array(0));
    const taken = this.pending;
    this.pending = [];
    const stacked = tf.stack(taken);
    tf.dispose(taken);
    return stacked.data().then((v) => v as Float32Array).finally(() => stacked.dispose());
  }

  /** Loss and accuracy over a split in order, in batches of `batchSize`, read from the device once at the end. */
  async evaluate(split: Split, batchSize: number, onBatch?: (done: number, batches: number) => void): Promise<EvalResult> {
    const batches = Math.ceil(split.count / batchSize);
    let lossSum = tf.scalar(0);
    let accSum = tf.scalar(0);
    const preds: tf.Tensor1D[] = [];
    const ranks: tf.Tensor1D[] = [];
    const outs: tf.Tensor2D[] = [];
    for (let b = 0; b < batches; b++) {
      const start = b * batchSize;
      const { x, y } = this.batch(split, inOrder(start, Math.min(batchSize, split.count - start)));
      const next = tf.tidy(() => {
        const logits = this.model.apply(x, { training: false }) as tf.Tensor2D;
        preds.push(tf.keep(tf.argMax(logits, 1) as tf.Tensor1D));
        ranks.push(tf.keep(labelRank(logits, y)));
        outs.push(tf.keep(logits));
        const o = this.objective(logits, y);
        return { lossSum: tf.add(lossSum, o.loss) as tf.Scalar, accSum: tf.add(accSum, o.acc) as tf.Scalar };
      });
      tf.dispose([x, y, lossSum, accSum]);
      ({ lossSum, accSum } = next);
      onBatch?.(b + 1, batches);
    }
    const all = tf.concat(preds);
    const allRanks = tf.concat(ranks);
    const allLogits = tf.concat(outs);
    const [predictions, rank, logits, loss, acc] = await Promise.all([all.data(), allRanks.data(), allLogits.data(), lossSum.data(), accSum.data()]);
    tf.dispose([all, allRanks, allLogits, lossSum, accSum, ...preds, ...ranks, ...outs]);
    return { loss: loss[0]! / batches, acc: acc[0]! / batches, predictions: Uint16Array.from(predictions as Int32Array), ranks: Uint16Array.from(rank as Int32Array), logits: logits as Float32Array };
  }

  /** The model's own variables are trained: nothing to write back. */
  async sync(): Promise<void> {}

  /** What bench and the tests look into: the batch as this runner builds it (a subclass adds what it counts). */
  get probe(): RunnerProbe {
    return { batch: (split, batch) => this.readBatch(split, batch) };
  }

  protected async readBatch(split: Split, batch: Batch): Promise<{ x: Float32Array; y: Int32Array }> {
    const { x, y } = this.batch(split, batch);
    const out = { x: (await x.data()) as Float32Array, y: (await y.data()) as Int32Array };
    tf.dispose([x, y]);
    return out;
  }

  async dispose(): Promise<void> {
    tf.dispose(this.pending);
    this.pending = [];
    this.sgd.dispose();
  }
}
