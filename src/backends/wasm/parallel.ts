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
//
// The weights go to the workers, and their gradients come back, through shared memory (one SharedArrayBuffer
// for the weights, one per worker for its gradient), and the main thread sums them into its own gradient on
// the wasm heap: copying and allocating ~9 MB a step made the averaging take 5 to 41 ms (garbage collection of
// the copies; issue #28, Intel Xeon, 2 cores, 2026-12-06), a buffer of its own and new tensors 9-11 ms, and
// this ~5 (the same machine, 2026-12-07). The sums are the same, in the same order.

import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BatchBuffers, inOrder, type Batch } from '../../batches.js';
import { IMAGE_BYTES, type Split } from '../../data/cifar.js';
import { AlexnetError } from '../../errors.js';
import { Sgd, accuracy, batchTensors, crossEntropy, labelRank, lossAndGrads, objectiveOf, sgdOptions } from '../../step.js';
import tf from '../../tf.cjs';
import tfl from '../../tfl.cjs';
import type { EvalResult, Runner, RunnerOptions, RunnerProbe } from '../types.js';
import { heap } from './kernels/util.js';

/**
 * `step`: the gradient of a shard at the weights in shared memory, written into the worker's gradient buffer.
 * `weights` (the shared weights changed) then `eval`s: the shards' losses and predictions.
 */
export type WorkerRequest =
  | { type: 'step'; x: Float32Array; y: Int32Array }
  | { type: 'weights' } // no reply
  | { type: 'eval'; x: Float32Array; y: Int32Array };
// x: the shard's normalised images, NHWC; y: their labels.
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; loss: number; acc: number }
  | { type: 'evaluated'; loss: number; acc: number; predictions: Int32Array; ranks: Int32Array; logits: Float32Array }
  | { type: 'error'; message: string };

/**
 * What a worker is started with: the network's topology (model.toJSON), which it rebuilds, its weights' shapes,
 * and the shared memory: every trainable weight in model.trainableWeights order, concatenated (`weights`, which
 * the main thread writes), and the worker's own buffer of the same layout for its gradient (`grads`).
 */
export interface WorkerData {
  topology: string;
  /** The recipe's label smoothing: the loss each shard's gradient is of. */
  labelSmoothing: number;
  shapes: number[][];
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
}

/**
 * The worker's file: beside this module, or, where this module is bundled into the CLI (an esbuild bundle that
 * keeps each worker entry at its own path), at its place below the bundle.
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
  private readonly buffers = new BatchBuffers();
  /** Each step's loss and accuracy, read on the host (the shards' are combined there), until numbers() takes them. */
  private pending: number[] = [];

  private readonly sgd: Sgd;

  private constructor(
    private readonly model: tfl.LayersModel,
    private readonly workers: Worker[],
    /** The weights the workers read, and each worker's gradient (WorkerData). */
    private readonly shared: { weights: Float32Array; grads: Float32Array[] },
    opts: RunnerOptions,
  ) {
    this.sgd = new Sgd(model, sgdOptions(opts.recipe), opts.optimizerState);
    this.smoothing = opts.recipe.labelSmoothing;
  }

  private readonly smoothing: number;

  /** Starts `threads - 1` workers (the main thread is the other one), each with its own copy of the model's network. */
  static async start(opts: RunnerOptions, threads: number): Promise<DataParallel> {
    const model = opts.model;
    const total = model.trainableWeights.reduce((s, w) => s + tf.util.sizeFromShape(w.shape as number[]), 0);
    const weights = new SharedArrayBuffer(4 * total);
    const grads = Array.from({ length: threads - 1 }, () => new SharedArrayBuffer(4 * total));
    const base = { topology: JSON.stringify(model.toJSON(null, false)), labelSmoothing: opts.recipe.labelSmoothing, shapes: model.trainableWeights.map((w) => w.shape as number[]), weights };
    const workers = grads.map((g) => new Worker(WORKER_FILE(), { workerData: { ...base, grads: g } satisfies WorkerData }));
    try {
      await Promise.all(workers.map(async (w) => expect(await reply(w), 'ready')));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new DataParallel(model, workers, { weights: new Float32Array(weights), grads: grads.map((g) => new Float32Array(g)) }, opts);
  }

  get settings() {
    return { threads: this.workers.length + 1 };
  }

  get label(): string {
    return `${this.workers.length + 1} threads`;
  }

  get note(): string | null {
    return this.workers.length > 0 ? `threads: ${this.workers.length + 1} (each batch is shared out among them; --threads 1 for one)` : null;
  }

  /** One SGD step on `batch`: the same update as one thread's on the whole batch, up to rounding. */
  async step(split: Split, batch: Batch, lr: number): Promise<void> {
    const { x, y, n } = this.buffers.fill(split, batch);
    const vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    if (this.workers.length > 0 && n > 1) this.shareWeights(vars);
    const { sizes, pending, x0, y0 } = this.shareOut(x, y, n, (xw, yw) => ({ type: 'step', x: xw, y: yw }));
    const n0 = sizes[0]!;
    const own = lossAndGrads(this.model, x0, y0, objectiveOf(this.smoothing));
    tf.dispose([x0, y0]);
    const results = await Promise.all(pending.map(async (p) => expect(await p, 'result')));
    // The batch mean of loss, accuracy and gradient: each shard's mean weighted by its share of the batch, summed
    // into the main thread's own gradient where it lies on the wasm heap (the threads idle meanwhile: see the top).
    let loss = (own.loss.dataSync()[0]! * n0) / n;
    let acc = (own.acc.dataSync()[0]! * n0) / n;
    let off = 0;
    for (const v of vars) {
      const sum = onHeap(own.grads[v.name]!);
      // With no shard but the main thread's (a batch of one), n0 = n and the gradient is already the mean.
      for (let i = 0; i < results.length; i++) scaleAndAdd(sum, i === 0 ? n0 / n : 1, this.shared.grads[i]!, off, sizes[i + 1]! / n);
      off += v.size;
    }
    results.forEach((r, i) => {
      loss += (r.loss * sizes[i + 1]!) / n;
      acc += (r.acc * sizes[i + 1]!) / n;
    });
    this.sgd.apply(own.grads, lr); // on the main thread's model: the workers get the weights with each shard
    tf.dispose([own.loss, own.acc, ...Object.values(own.grads)]);
    this.pending.push(loss, acc);
  }

  async numbers(): Promise<Float32Array> {
    const taken = Float32Array.from(this.pending);
    this.pending = [];
    return taken;
  }

  /**
   * Loss, accuracy and predictions over a split in order, in batches of `batchSize`, each batch shared out as
   * in `step`: the same numbers as one thread's evaluation (a mean over batches of each batch's mean), up to
   * rounding.
   */
  async evaluate(split: Split, batchSize: number, onBatch?: (done: number, batches: number) => void): Promise<EvalResult> {
    this.shareWeights(this.model.trainableWeights.map((w) => w.read() as tf.Variable));
    this.workers.forEach((w) => w.postMessage({ type: 'weights' } satisfies WorkerRequest));
    const predictions = new Uint16Array(split.count);
    const ranks = new Uint16Array(split.count);
    const classes = this.model.outputs[0]!.shape[1]!;
    const logits = new Float32Array(split.count * classes);
    const batches = Math.ceil(split.count / batchSize);
    let lossSum = 0;
    let accSum = 0;
    for (let b = 0; b < batches; b++) {
      const start = b * batchSize;
      const { x, y, n } = this.buffers.fill(split, inOrder(start, Math.min(batchSize, split.count - start)));
      const { sizes, starts, pending, x0, y0 } = this.shareOut(x, y, n, (xw, yw) => ({ type: 'eval', x: xw, y: yw }));
      const own = evalBatch(this.model, x0, y0, this.smoothing);
      tf.dispose([x0, y0]);
      const shards = [own, ...(await Promise.all(pending.map(async (p) => expect(await p, 'evaluated'))))];
      shards.forEach((r, s) => {
        lossSum += (r.loss * sizes[s]!) / n;
        accSum += (r.acc * sizes[s]!) / n;
        predictions.set(r.predictions, start + starts[s]!);
        ranks.set(r.ranks, start + starts[s]!);
        logits.set(r.logits, (start + starts[s]!) * classes);
      });
      onBatch?.(b + 1, batches);
    }
    return { loss: lossSum / batches, acc: accSum / batches, predictions, ranks, logits };
  }

  /** The main thread's model holds the one true copy of the weights: nothing to write back. */
  async sync(): Promise<void> {}

  optimizerState(): Promise<Float32Array | null> {
    return this.sgd.state();
  }

  /** The batch is built on the host, then cut into the shards that the threads take. */
  readonly probe: RunnerProbe = {
    batch: async (split: Split, batch: Batch) => {
      const { x, y, n } = this.buffers.fill(split, batch);
      return { x: x.slice(0, n * IMAGE_BYTES), y: y.slice(0, n) };
    },
  };

  /**
   * Cuts the first `n` images of `x` (normalised, NHWC) and labels `y` into shards, workers first so they
   * compute while the main thread does its own: shard s > 0 goes to worker s - 1 as `request(x, y)`. Returns
   * the shards' sizes and starts, the workers' pending replies, and shard 0 as tensors the caller disposes.
   */
  private shareOut(x: Float32Array, y: Int32Array, n: number, request: (x: Float32Array, y: Int32Array) => WorkerRequest) {
    const sizes = shardSizes(n, this.workers.length + 1);
    const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const pending = sizes.slice(1).map((size, i) => {
      const at = starts[i + 1]!;
      const xw = x.slice(at * IMAGE_BYTES, (at + size) * IMAGE_BYTES);
      const yw = y.slice(at, at + size);
      return this.ask(i, request(xw, yw), [xw.buffer, yw.buffer]);
    });
    const { x: x0, y: y0 } = batchTensors(x, y, sizes[0]!);
    return { sizes, starts, pending, x0, y0 };
  }

  /**
   * Writes the weights where the workers read them. Only between requests: a worker reads them when a `step` or
   * `weights` message arrives, and every step and evaluation waits for the workers' replies before the next.
   */
  private shareWeights(vars: tf.Variable[]): void {
    let off = 0;
    for (const v of vars) {
      this.shared.weights.set(onHeap(v), off);
      off += v.size;
    }
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
    this.sgd.dispose();
  }
}

/**
 * sum[k] = sum[k] * w0 + g[off + k] * w, the product sum[k] * w0 rounded to float32 as if stored first, so the
 * values are those of scaling in one pass and adding in another, in one pass over the memory. With w0 = 1 that
 * product is sum[k] itself.
 */
function scaleAndAdd(sum: Float32Array, w0: number, g: Float32Array, off: number, w: number): void {
  for (let k = 0; k < sum.length; k++) sum[k] = Math.fround(sum[k]! * w0) + g[off + k]! * w;
}

export interface BatchEval {
  loss: number; // the batch's mean loss
  acc: number;
  predictions: Int32Array; // predicted class per image
  ranks: Int32Array; // per image, how many classes outrank its label (labelRank)
  logits: Float32Array; // [images, classes]
}

/** Evaluates one batch and reads the results (each shard is read anyway, to be combined on the host). */
export function evalBatch(model: tfl.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, smoothing: number): BatchEval {
  const [loss, acc, pred, rank, out2] = tf.tidy(() => {
    const logits = model.apply(x, { training: false }) as tf.Tensor2D;
    return [crossEntropy(logits, y, smoothing), accuracy(logits, y), tf.argMax(logits, 1), labelRank(logits, y), logits];
  });
  const out = { loss: loss.dataSync()[0]!, acc: acc.dataSync()[0]!, predictions: pred.dataSync() as Int32Array, ranks: rank.dataSync() as Int32Array, logits: out2.dataSync() as Float32Array };
  tf.dispose([loss, acc, pred, rank, out2]);
  return out;
}

/** The reply if it is of the type asked for; anything else is a BACKEND error, never a value read wrongly. */
function expect<T extends WorkerReply['type']>(r: WorkerReply, type: T): Extract<WorkerReply, { type: T }> {
  if (r.type !== type) throw new AlexnetError('BACKEND', `a wasm training thread answered '${r.type}' where '${type}' was due`, 'run with --threads 1 to train on one thread');
  return r as Extract<WorkerReply, { type: T }>;
}

/**
 * A float32 tensor's values where the wasm backend keeps them, without a copy (dataSync copies: 2.3 MB a step for
 * the gradient, garbage to collect). Valid until the tensor is disposed.
 */
export function onHeap(t: tf.Tensor): Float32Array {
  return heap(tf.backend() as BackendWasm, t);
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
