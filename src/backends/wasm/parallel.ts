// Data-parallel SGD steps and evaluation for the wasm backend. tfjs's threaded wasm build does not run in Node
// (WASM_HAS_MULTITHREAD_SUPPORT is false there), so one wasm backend uses one core. Here each step's batch
// is cut into shards: worker threads, each with its own wasm backend and a copy of the network, compute the
// gradient of their shard while the main thread computes its own; the main thread then averages the
// gradients, weighted by shard size, and applies the update. The network has no batch statistics, so this is
// the same step as on one thread, up to float rounding (the tests compare it with the one-thread step).
//
// Measured on this 2-core machine: two wasm processes side by side each run a batch-64 step at ~430 ms
// against ~390 ms alone, so shards can nearly halve the step; with two shards of 32 it went from 357-416 ms
// to 264-273 ms, averaging the gradients included (README "Performance"). Evaluation batches are shared out
// the same way.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { IMAGE_BYTES, type Split } from '../../data/cifar.js';
import { AlexnetError } from '../../errors.js';
import { INPUT_SHAPE } from '../../model.js';
import { accuracy, crossEntropy, fillBatch, lossAndGrads } from '../../step.js';
import * as tf from '../../tf.js';
import type { EvalResult, Runner } from '../types.js';


/** `step`: gradient of a shard at these weights. `weights` then `eval`s: the shards' losses and predictions. */
export type WorkerRequest =
  | { type: 'step'; weights: Float32Array; x: Float32Array; y: Int32Array }
  | { type: 'weights'; weights: Float32Array } // no reply
  | { type: 'eval'; x: Float32Array; y: Int32Array };
// Float32Array weights: every trainable weight, in model.trainableWeights order, concatenated. x: the shard's
// normalised images, NHWC; y: their labels.
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; grads: Float32Array; loss: number; acc: number }
  | { type: 'evaluated'; loss: number; acc: number; predictions: Int32Array }
  | { type: 'error'; message: string };

/**
 * The worker's file: beside this module, or, where this module is bundled into the CLI (the devpack of
 * ../shared/device/pack.sh keeps each worker entry at its own path), at its place below the bundle.
 */
const WORKER_FILE = (): URL =>
  [new URL('./parallel-worker.js', import.meta.url), new URL('./backends/wasm/parallel-worker.js', import.meta.url)].find((u) => existsSync(fileURLToPath(u))) ??
  new URL('./parallel-worker.js', import.meta.url);

/** Shard sizes for `n` images over `k` threads: as equal as possible, larger first, no empty shard. */
export function shardSizes(n: number, k: number): number[] {
  const shards = Math.max(1, Math.min(k, n));
  const base = Math.floor(n / shards);
  return Array.from({ length: shards }, (_, i) => base + (i < n % shards ? 1 : 0));
}

export class DataParallel implements Runner {
  private x = new Float32Array(0);
  private y = new Int32Array(0);

  private constructor(private readonly workers: Worker[]) {}

  /** For training or evaluating `model` on `threads` (> 1) threads: the started workers. */
  static async forModel(model: tf.LayersModel, threads: number): Promise<DataParallel> {
    return DataParallel.start(threads, model.trainableWeights.map((w) => w.shape as number[]));
  }

  /** Starts `threads - 1` workers (the main thread is the other one) for a network whose weights have `shapes`. */
  static async start(threads: number, shapes: number[][]): Promise<DataParallel> {
    const workers = Array.from({ length: threads - 1 }, () => new Worker(WORKER_FILE(), { workerData: { shapes } }));
    try {
      await Promise.all(workers.map((w) => reply(w)));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new DataParallel(workers);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** One SGD step on the images `indices` of `split`: the same update as trainStep on the whole batch. */
  async step(model: tf.LayersModel, optimizer: tf.Optimizer, split: Split, indices: ArrayLike<number>): Promise<{ loss: tf.Scalar; acc: tf.Scalar }> {
    const n = indices.length;
    if (this.y.length < n) {
      this.x = new Float32Array(n * IMAGE_BYTES);
      this.y = new Int32Array(n);
    }
    fillBatch(split, indices, this.x, this.y);
    return this.stepOn(model, optimizer, this.x, this.y, n);
  }

  /**
   * One SGD step on the first `n` images of `x` (normalised, NHWC) with labels `y`. Returns the batch's mean
   * loss and accuracy as scalars the caller owns.
   */
  async stepOn(model: tf.LayersModel, optimizer: tf.Optimizer, x: Float32Array, y: Int32Array, n: number): Promise<{ loss: tf.Scalar; acc: tf.Scalar }> {
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    let weights: Float32Array | undefined; // read only when a worker gets a shard
    const { sizes, pending, x0, y0 } = this.shareOut(x, y, n, (xw, yw) => ({ type: 'step', weights: (weights ??= flatWeights(vars)), x: xw, y: yw }));
    const n0 = sizes[0]!;
    const own = lossAndGrads(model, x0, y0);
    tf.dispose([x0, y0]);
    if (pending.length === 0) {
      optimizer.applyGradients(own.grads);
      tf.dispose(own.grads);
      return { loss: own.loss, acc: own.acc };
    }
    const results = (await Promise.all(pending)) as Extract<WorkerReply, { type: 'result' }>[];
    // The batch mean of loss, accuracy and gradient: each shard's mean weighted by its share of the batch.
    let loss = (own.loss.dataSync()[0]! * n0) / n;
    let acc = (own.acc.dataSync()[0]! * n0) / n;
    const combined: tf.NamedTensorMap = {};
    let off = 0;
    for (const v of vars) {
      // Plain loops: Float32Array.from with a map function took ~100 ms for these 576,778 values.
      const mine = own.grads[v.name]!.dataSync() as Float32Array;
      const sum = new Float32Array(mine.length);
      const w0 = n0 / n;
      for (let k = 0; k < sum.length; k++) sum[k] = mine[k]! * w0;
      results.forEach((r, i) => {
        const g = r.grads;
        const w = sizes[i + 1]! / n;
        for (let k = 0; k < sum.length; k++) sum[k] += g[off + k]! * w;
      });
      combined[v.name] = tf.tensor(sum, v.shape);
      off += v.size;
    }
    results.forEach((r, i) => {
      loss += (r.loss * sizes[i + 1]!) / n;
      acc += (r.acc * sizes[i + 1]!) / n;
    });
    tf.dispose([own.loss, own.acc, ...Object.values(own.grads)]);
    optimizer.applyGradients(combined);
    tf.dispose(Object.values(combined));
    return { loss: tf.scalar(loss), acc: tf.scalar(acc) };
  }

  /**
   * Loss, accuracy and predictions over a split in order, in batches of `batchSize`, each batch shared out as
   * in `step`: the same numbers as train.ts's evaluate (a mean over batches of each batch's mean), up to
   * rounding.
   */
  async evaluate(model: tf.LayersModel, split: Split, batchSize: number): Promise<EvalResult> {
    const weights = flatWeights(model.trainableWeights.map((w) => w.read() as tf.Variable));
    this.workers.forEach((w) => w.postMessage({ type: 'weights', weights } satisfies WorkerRequest));
    const xb = new Float32Array(batchSize * IMAGE_BYTES);
    const yb = new Int32Array(batchSize);
    const predictions = new Uint8Array(split.count);
    const batches = Math.ceil(split.count / batchSize);
    let lossSum = 0;
    let accSum = 0;
    for (let b = 0; b < batches; b++) {
      const start = b * batchSize;
      const n = Math.min(batchSize, split.count - start);
      fillBatch(split, Array.from({ length: n }, (_, i) => start + i), xb, yb);
      const { sizes, starts, pending, x0, y0 } = this.shareOut(xb, yb, n, (xw, yw) => ({ type: 'eval', x: xw, y: yw }));
      const own = evalBatch(model, x0, y0);
      tf.dispose([x0, y0]);
      const shards = [own, ...((await Promise.all(pending)) as Extract<WorkerReply, { type: 'evaluated' }>[])];
      shards.forEach((r, s) => {
        lossSum += (r.loss * sizes[s]!) / n;
        accSum += (r.acc * sizes[s]!) / n;
        predictions.set(r.predictions, start + starts[s]!);
      });
    }
    return { loss: lossSum / batches, acc: accSum / batches, predictions };
  }

  /**
   * Cuts the first `n` images of `x` (normalised, NHWC) and labels `y` into shards, workers first so they
   * compute while the main thread does its own: shard s > 0 goes to worker s - 1 as `request(x, y)`. Returns
   * the shards' sizes and starts, the workers' pending replies, and shard 0 as tensors the caller disposes.
   */
  private shareOut(x: Float32Array, y: Int32Array, n: number, request: (x: Float32Array, y: Int32Array) => WorkerRequest) {
    const sizes = shardSizes(n, this.threads);
    const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const pending = sizes.slice(1).map((size, i) => {
      const at = starts[i + 1]!;
      const xw = x.slice(at * IMAGE_BYTES, (at + size) * IMAGE_BYTES);
      const yw = y.slice(at, at + size);
      return this.ask(i, request(xw, yw), [xw.buffer, yw.buffer]);
    });
    const n0 = sizes[0]!;
    const x0 = tf.tensor4d(x.subarray(0, n0 * IMAGE_BYTES), [n0, ...INPUT_SHAPE] as [number, number, number, number]);
    const y0 = tf.tensor1d(y.subarray(0, n0), 'int32');
    return { sizes, starts, pending, x0, y0 };
  }

  /** Sends a request to worker `i` and waits for its reply. */
  private ask(i: number, request: WorkerRequest, transfer: ArrayBufferLike[]): Promise<WorkerReply> {
    const worker = this.workers[i]!;
    const answer = reply(worker);
    worker.postMessage(request, transfer as ArrayBuffer[]);
    return answer;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export interface BatchEval {
  loss: number; // the batch's mean loss
  acc: number;
  predictions: Int32Array; // predicted class per image
}

/** Evaluates one batch and reads the results (each shard is read anyway, to be combined on the host). */
export function evalBatch(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D): BatchEval {
  const [loss, acc, pred] = tf.tidy(() => {
    const logits = model.apply(x, { training: false }) as tf.Tensor2D;
    return [crossEntropy(logits, y), accuracy(logits, y), tf.argMax(logits, 1)];
  });
  const out = { loss: loss.dataSync()[0]!, acc: acc.dataSync()[0]!, predictions: pred.dataSync() as Int32Array };
  tf.dispose([loss, acc, pred]);
  return out;
}

/** Every trainable weight, concatenated in order: what a worker needs to mirror the model. */
function flatWeights(vars: tf.Variable[]): Float32Array {
  const weights = new Float32Array(vars.reduce((s, v) => s + v.size, 0));
  let off = 0;
  for (const v of vars) {
    weights.set(v.dataSync() as Float32Array, off);
    off += v.size;
  }
  return weights;
}

/** The worker's next message; an error message, a crash or an exit becomes a BACKEND error. */
function reply(worker: Worker): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      cleanup();
      reject(new AlexnetError('BACKEND', `a wasm training thread failed: ${why}`, 'run with --threads 1 to train on one thread'));
    };
    const onMessage = (m: WorkerReply) => {
      if (m.type === 'error') return fail(m.message);
      cleanup();
      resolve(m);
    };
    const onError = (e: Error) => fail(e.message);
    const onExit = (code: number) => fail(`it exited with code ${code}`);
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
