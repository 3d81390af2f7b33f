// The webgpu backend's op-by-op runner (--webgpu-runner ops, and a model the compiler does not know): the step
// through tfjs-backend-webgpu, as the tfjs op-by-op runner (../../runner.ts) takes it, with the splits kept on the GPU (each batch gathered
// and normalised there, augmented as the batch says), the loss, accuracy and loss gradient in three programs of
// ours, a one-dispatch SGD update per weight (momentum and weight decay in tfjs ops), and a check for GPU errors
// after every step and evaluation.

import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { NORMALISE, type Batch } from '../../../batches.js';
import type { Split } from '../../../data/cifar.js';
import { INPUT_SHAPE } from '../../../model.js';
import { isPlainSgd, sgdOptions, type Objective } from '../../../step.js';
import tf from '../../../tf.cjs';
import { OpsRunner } from '../../runner.js';
import type { RunnerOptions, RunnerProbe } from '../../types.js';
import { throwIfGpuError } from '../errors.js';
import { gatherWords, residentWords } from '../wgsl/gather.js';
import { CrossEntropyGradProgram, MeanRowsProgram } from './cross_entropy_webgpu.js';
import { GatherNormaliseProgram } from './gather_normalise_webgpu.js';
import { SgdUpdateProgram } from './sgd_update_webgpu.js';

const webgpu = () => tf.backend() as WebGPUBackend;

/** Runs a program of ours on the active webgpu backend; the result as a tensor of `shape`. */
function run<T extends tf.Tensor>(program: WebGPUProgram, inputs: tf.TensorInfo[], shape = program.outputShape, uniforms?: { type: string; data: number[] }[]): T {
  const info = webgpu().runWebGPUProgram(program, inputs, 'float32', uniforms);
  return tf.engine().makeTensorFromTensorInfo({ ...info, shape }) as T;
}

/**
 * The seed's loss (with the recipe's label smoothing) and accuracy in three programs (./cross_entropy_webgpu.ts),
 * the loss with its own gradient.
 */
export const fusedObjective = (smoothing: number): Objective => (logits, labels) => {
  const [n, classes] = logits.shape;
  const acc = run<tf.Scalar>(new MeanRowsProgram(classes, 'accuracy'), [logits, labels], []);
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [l, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([l]);
    return {
      value: run<tf.Scalar>(new MeanRowsProgram(classes, 'loss', smoothing), [l, labels], []),
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) => run<tf.Tensor2D>(new CrossEntropyGradProgram(n, classes, smoothing), [saved[0]!, labels, dy]),
    };
  });
  return { loss: loss(logits) as tf.Scalar, acc };
};

export class WebGpuOpsRunner extends OpsRunner {
  override readonly label = 'ops';
  private readonly resident = new Map<Split, { pixels: tf.Tensor1D; labels: tf.Tensor1D } | null>();
  private table: tf.Tensor1D | null = null;
  /** Programs the last step ran (for `bench`): the backend's runWebGPUProgram, wrapped once to count its calls. */
  private dispatches = { count: 0, lastStep: 0, restore: () => {} };

  private readonly plain: boolean;

  constructor(
    opts: RunnerOptions,
    private readonly maxBufferBytes: number,
    override readonly note: string | null,
  ) {
    super(opts, { webgpuRunner: 'ops' }, fusedObjective(opts.recipe.labelSmoothing));
    this.plain = isPlainSgd(sgdOptions(opts.recipe));
    const backend = webgpu();
    const run = backend.runWebGPUProgram;
    const counter = this.dispatches;
    backend.runWebGPUProgram = (...args) => {
      counter.count++;
      return run.apply(backend, args);
    };
    counter.restore = () => (backend.runWebGPUProgram = run);
  }

  override get probe(): RunnerProbe {
    return { ...super.probe, dispatchesPerStep: this.dispatches.lastStep };
  }

  /** The split on the GPU as bytes, uploaded on first use; null where it does not fit one buffer (then the host path). */
  private residentOf(split: Split): { pixels: tf.Tensor1D; labels: tf.Tensor1D } | null {
    if (!this.resident.has(split)) {
      const words = residentWords(split, this.maxBufferBytes);
      this.resident.set(split, words.pixels ? { pixels: tf.tensor1d(words.pixels, 'int32'), labels: tf.tensor1d(words.labels, 'int32') } : null);
    }
    return this.resident.get(split)!;
  }

  /** The batch gathered and normalised on the GPU from the resident split: a step uploads only its indices. */
  protected override batch(split: Split, batch: Batch): { x: tf.Tensor4D; y: tf.Tensor1D } {
    const on = this.residentOf(split);
    if (!on) return super.batch(split, batch);
    this.table ??= tf.tensor1d(NORMALISE);
    const words = tf.tensor1d(new Int32Array(gatherWords(batch)), 'int32');
    const idx = tf.tensor1d(Int32Array.from(batch.indices), 'int32');
    const x = run<tf.Tensor4D>(new GatherNormaliseProgram([batch.indices.length, ...INPUT_SHAPE]), [on.pixels, words, this.table]);
    const y = tf.gather(on.labels, idx) as tf.Tensor1D;
    tf.dispose([words, idx]);
    return { x, y };
  }

  /**
   * One dispatch per weight: w + (-lr) * g, as tfjs's SGD rounds it (./sgd_update_webgpu.ts); with momentum or weight
   * decay, the op-by-op runner's update in tfjs ops (this runner is the fallback; the compiled one fuses it).
   */
  protected override update(grads: tf.NamedTensorMap, lr: number): void {
    if (!this.plain) return super.update(grads, lr);
    for (const w of this.model.trainableWeights) {
      const v = w.read() as tf.Variable;
      const g = grads[v.name];
      if (!g) continue;
      const flat = (t: tf.Tensor): tf.TensorInfo => ({ dataId: t.dataId, shape: [t.size], dtype: t.dtype });
      const next = run(new SgdUpdateProgram(v.size), [flat(v), flat(g)], v.shape, [{ type: 'float32', data: [lr] }]);
      v.assign(next);
      next.dispose();
    }
  }

  override async step(split: Split, batch: Batch, lr: number): Promise<void> {
    throwIfGpuError();
    const before = this.dispatches.count;
    await super.step(split, batch, lr);
    this.dispatches.lastStep = this.dispatches.count - before;
  }

  override async numbers(): Promise<Float32Array> {
    const values = await super.numbers();
    throwIfGpuError();
    return values;
  }

  override async evaluate(split: Split, batchSize: number, onBatch?: (done: number, batches: number) => void) {
    const r = await super.evaluate(split, batchSize, onBatch);
    throwIfGpuError();
    return r;
  }

  override async dispose(): Promise<void> {
    await super.dispose();
    this.dispatches.restore();
    for (const r of this.resident.values()) if (r) tf.dispose([r.pixels, r.labels]);
    this.resident.clear();
    this.table?.dispose();
    this.table = null;
  }
}
