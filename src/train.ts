// Training: the seed's recipe (SGD, cross-entropy, batch 64, eval 128) as a loop that keeps every per-batch
// number on the device and reads it once per epoch, reports through callbacks, and checkpoints atomically.
// It never prints and never exits (STYLE.md #3).

import type { ActiveBackend } from './backends/index.js';
import { DEFAULT_CLASS_NAMES, type Split } from './data/cifar.js';
import { AlexnetError } from './errors.js';
import { confusionMatrix } from './evaluate.js';
import { createModel, type Init } from './model.js';
import { mulberry32 } from './random.js';
import * as tf from './tf.js';

export interface Recipe {
  epochs: number; // total epochs to reach (a resumed run counts the saved ones)
  batchSize: number; // 64 in the seed
  evalBatchSize: number; // 128 in the seed; evaluation only, so larger is fine
  lr: number; // SGD learning rate, 0.1 in the seed
  seed: number; // initial weights and every epoch's shuffle derive from it
  init: Init;
}

export const DEFAULT_RECIPE: Recipe = { epochs: 20, batchSize: 64, evalBatchSize: 128, lr: 0.1, seed: 0, init: 'pytorch' };

export interface EpochMetrics {
  epoch: number; // from 0, as the seed's log
  trainLoss: number; // mean over batches of each batch's mean loss, as the seed computes it
  trainAcc: number;
  validLoss: number;
  validAcc: number;
  seconds: number; // wall time of the epoch's training and evaluation
  imagesPerSecond: number; // training and evaluation images over `seconds`
}

export interface BatchProgress {
  epoch: number;
  batch: number; // batches done in this epoch
  batches: number; // batches in the epoch
  images: number; // training images done in this epoch
  /** The mean loss of the batches read from the device so far (every READ_EVERY batches); null before the first read. */
  runningLoss: number | null;
}

/** Where a run stands; saved with the weights so that `--resume` continues exactly. */
export interface TrainState {
  version: 1;
  recipe: Recipe;
  limitTrain: number | null;
  limitTest: number | null;
  epoch: number; // the epoch to run next (or in progress when `batch` > 0)
  batch: number; // batches of `epoch` already done (0 at an epoch boundary)
  partial: { lossSum: number; accSum: number; seconds: number } | null; // sums of the epoch in progress
  history: EpochMetrics[];
  /** Confusion matrix on the validation split after the last finished epoch: [true class][predicted class]. */
  confusion?: number[][];
  /** The data's class names (batches.meta.txt), so a saved model can name its predictions. */
  classNames?: string[];
  /** Threads each step was shared among (wasm): a resumed run keeps it, for the same float rounding. */
  threads?: number;
  /** Where the data came from, so that `--resume DIR` alone continues on the same data (issue #14). */
  data?: TrainData;
}

export interface TrainData {
  dataDir: string;
  url: string;
  md5: string | null; // the MD5 asked for; null: --no-verify
  archiveMd5: string; // the data's archive, from its manifest ('unknown' for a folder unpacked by hand)
  records: number; // training and test records in the data dir
  official: boolean | null; // the official CIFAR-10, or null when it cannot be told
}

export interface Checkpointer {
  save(model: tf.LayersModel, state: TrainState): Promise<void>;
}

export interface TrainOptions {
  recipe: Recipe;
  train: Split;
  test: Split;
  /** Saved in the state, for `predict` and the report; the official names when not given. */
  classNames?: string[];
  /** Saved in the state: where the data came from. */
  data?: TrainData;
  limitTrain?: number | null;
  limitTest?: number | null;
  /** Continue from here (weights and state from a checkpoint). */
  resume?: { model: tf.LayersModel; state: TrainState };
  checkpointer?: Checkpointer;
  onEpochEnd?: (m: EpochMetrics) => void;
  onBatch?: (p: BatchProgress) => void;
  /** Stop at the next batch boundary; with a checkpointer, save first. */
  signal?: AbortSignal;
  /** The started backend: it runs each step and evaluation its own way (src/backends/). */
  backend: ActiveBackend;
  /** --threads: backends that share a step among threads (wasm) use this many; absent: 1. */
  threads?: number;
}

export interface TrainResult {
  history: EpochMetrics[];
  model: tf.LayersModel;
  interrupted: boolean;
  state: TrainState;
}

/** The training order of `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch) alone. */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const rand = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}


/**
 * How often (in batches) the loop reads the per-batch numbers from the device, which also catches a diverged run;
 * a read per batch would stall a GPU (issue #12: each dispatch costs ~50 us of a WebGPU step's 7 ms).
 */
const READ_EVERY = 25;
/** ...and at least this often, so that the bar's loss and the divergence check keep up with slow steps (wasm: ~250 ms). */
const READ_AT_LEAST_EVERY_MS = 1000;

const diverged = (what: string, lr: number) => new AlexnetError('DIVERGED', `training diverged: ${what}`, `lower the learning rate, e.g. --lr ${lr / 10}`);

/**
 * The one reader of an epoch's per-batch loss and accuracy (issue #17). The steps' values stay on the device as
 * they are pushed; read() takes every pending value at once, synchronously, stacks them into one tensor and
 * reads it after any read already under way, so reads never overlap, nothing is summed twice or dropped, and the
 * sums are float32 sums in batch order: the seed's running sums, whoever calls and however often. A non-finite
 * loss is reported by the read that finds it. (The progress bar used to start reads of its own, which raced the
 * loop's: wrong Train Loss and Train Acc on a terminal.)
 */
class EpochSums {
  private pending: { loss: tf.Scalar; acc: tf.Scalar }[] = [];
  private reading: Promise<void> = Promise.resolve();
  private readonly sums: Float32Array;
  private queued: number; // batches handed to a read
  private counted: number; // batches summed

  /** `prior`: the sums of the `batches` already done (a resumed epoch); `bad(batch)`: the error for a non-finite loss. */
  constructor(prior: { lossSum: number; accSum: number }, batches: number, private readonly bad: (batch: number) => Error) {
    this.sums = new Float32Array([prior.lossSum, prior.accSum]);
    this.queued = this.counted = batches;
  }

  push(r: { loss: tf.Scalar; acc: tf.Scalar }): void {
    this.pending.push(r);
  }

  /** Reads every value pushed so far, after the reads already started; resolves once all of them are summed. */
  read(): Promise<void> {
    if (this.pending.length === 0) return this.reading;
    const taken = this.pending.flatMap((p) => [p.loss, p.acc]);
    this.pending = [];
    const first = this.queued;
    this.queued += taken.length / 2;
    const stacked = tf.stack(taken);
    tf.dispose(taken);
    const values = stacked.data().finally(() => stacked.dispose());
    values.catch(() => {}); // awaited below; this only keeps a read after a failed one from going unhandled
    this.reading = this.reading.then(async () => {
      const v = await values;
      for (let i = 0; i < v.length; i += 2) {
        if (!Number.isFinite(v[i]!)) throw this.bad(first + i / 2);
        this.sums[0] += v[i]!;
        this.sums[1] += v[i + 1]!;
        this.counted++;
      }
    });
    return this.reading;
  }

  get lossSum(): number {
    return this.sums[0]!;
  }

  get accSum(): number {
    return this.sums[1]!;
  }

  /** The mean loss of the batches summed so far, or null before any. */
  get runningLoss(): number | null {
    return this.counted > 0 ? this.sums[0]! / this.counted : null;
  }

  dispose(): void {
    tf.dispose(this.pending.flatMap((p) => [p.loss, p.acc]));
    this.pending = [];
  }
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { recipe, train: trainSplit, test: testSplit } = opts;
  if (trainSplit.count === 0 || testSplit.count === 0) {
    throw new AlexnetError('DATA', 'no training or test records to use', 'check --limit-train and --limit-test');
  }
  const model = opts.resume?.model ?? createModel({ init: recipe.init, seed: recipe.seed });
  const optimizer = tf.train.sgd(recipe.lr);
  const state: TrainState = opts.resume?.state ?? {
    version: 1,
    recipe,
    limitTrain: opts.limitTrain ?? null,
    limitTest: opts.limitTest ?? null,
    epoch: 0,
    batch: 0,
    partial: null,
    history: [],
  };
  state.recipe = { ...state.recipe, epochs: recipe.epochs };
  state.classNames = opts.classNames ?? state.classNames ?? DEFAULT_CLASS_NAMES;
  state.data = opts.data ?? state.data;

  const bs = recipe.batchSize;
  const batches = Math.ceil(trainSplit.count / bs);

  const runner = await opts.backend.runner(model, { threads: opts.threads ?? 1 });
  state.threads = runner.threads; // set where the rounding depends on it (wasm), so a resumed run keeps it
  try {
    while (state.epoch < recipe.epochs) {
      const epoch = state.epoch;
      const t0 = performance.now();
      const prior = state.partial ?? { lossSum: 0, accSum: 0, seconds: 0 };
      const perm = epochPermutation(trainSplit.count, recipe.seed, epoch);
      const sums = new EpochSums(prior, state.batch, (batch) => diverged(`the loss is NaN or infinite at epoch ${epoch}, batch ${batch}`, recipe.lr));
      let done = state.batch;
      let lastRead = performance.now();

      try {
        for (; done < batches; ) {
          if (opts.signal?.aborted) {
            await sums.read();
            state.batch = done;
            state.partial = { lossSum: sums.lossSum, accSum: sums.accSum, seconds: prior.seconds + (performance.now() - t0) / 1000 };
            await opts.checkpointer?.save(model, state);
            return { history: state.history, model, interrupted: true, state };
          }
          const idx = perm.subarray(done * bs, Math.min((done + 1) * bs, trainSplit.count));
          sums.push(await runner.step(model, optimizer, trainSplit, idx));
          done++;
          if (done % READ_EVERY === 0 || performance.now() - lastRead >= READ_AT_LEAST_EVERY_MS) {
            await sums.read();
            lastRead = performance.now();
          }
          opts.onBatch?.({ epoch, batch: done, batches, images: Math.min(done * bs, trainSplit.count), runningLoss: sums.runningLoss });
          // Let signal handlers run between batches: a step may never yield to the event loop, and one immediate
          // queued from an I/O callback runs before the loop polls for signals again, two in a row never do (a
          // Ctrl-C during a 6-batch epoch on webgpu went unseen when this yielded every 4th batch).
          await new Promise((r) => setImmediate(r));
        }
        await sums.read();
        const trainLoss = sums.lossSum / batches;
        const trainAcc = sums.accSum / batches;
        const valid = await runner.evaluate(model, testSplit, recipe.evalBatchSize);
        const seconds = prior.seconds + (performance.now() - t0) / 1000;
        const images = trainSplit.count - state.batch * bs + testSplit.count;
        const metrics: EpochMetrics = {
          epoch,
          trainLoss,
          trainAcc,
          validLoss: valid.loss,
          validAcc: valid.acc,
          seconds,
          imagesPerSecond: images / Math.max(seconds - prior.seconds, 1e-9),
        };
        if (!Number.isFinite(valid.loss)) throw diverged(`the validation loss is ${valid.loss} after epoch ${epoch}`, recipe.lr);
        state.history.push(metrics);
        state.confusion = confusionMatrix(testSplit.labels, valid.predictions);
        state.epoch = epoch + 1;
        state.batch = 0;
        state.partial = null;
        await opts.checkpointer?.save(model, state);
        opts.onEpochEnd?.(metrics);
      } finally {
        sums.dispose();
      }
    }
    optimizer.dispose();
    return { history: state.history, model, interrupted: false, state };
  } finally {
    await runner.dispose();
  }
}
