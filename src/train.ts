// Training: the seed's recipe (SGD, cross-entropy, batch 64, eval 128) as a loop that keeps every per-batch
// number on the device and reads it once per epoch, reports through callbacks, and checkpoints atomically.
// It never prints and never exits (STYLE.md #3).

import * as tf from '@tensorflow/tfjs';
import { DEFAULT_CLASS_NAMES, IMAGE_BYTES, NUM_CLASSES, type Split } from './data/cifar.js';
import { AlexnetError } from './errors.js';
import { createModel, type Init } from './model.js';
import { DataParallel } from './parallel.js';
import { accuracy, crossEntropy, fillBatch, makeBatch, trainStep } from './step.js';
import { mulberry32 } from './random.js';

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
  /** Reads the running mean loss from the device: call it sparingly (the progress bar: ~10 times a second). */
  runningLoss: () => number;
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
  limitTrain?: number | null;
  limitTest?: number | null;
  /** Continue from here (weights and state from a checkpoint). */
  resume?: { model: tf.LayersModel; state: TrainState };
  checkpointer?: Checkpointer;
  onEpochEnd?: (m: EpochMetrics) => void;
  onBatch?: (p: BatchProgress) => void;
  /** Stop at the next batch boundary; with a checkpointer, save first. */
  signal?: AbortSignal;
  /** wasm only: cut each batch across this many threads (src/parallel.ts); 1 or absent: one thread. */
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


/** How often (in batches) the loop reads the device to catch a diverged run; a read per batch would stall a GPU. */
const DIVERGENCE_CHECK_EVERY = 25;

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

  const bs = recipe.batchSize;
  const batches = Math.ceil(trainSplit.count / bs);
  const xBuf = new Float32Array(Math.max(bs, recipe.evalBatchSize) * IMAGE_BYTES);
  const yBuf = new Int32Array(Math.max(bs, recipe.evalBatchSize));

  // One thread per share of each batch on wasm (src/parallel.ts); other backends use their own threads.
  const parallel = await DataParallel.forModel(model, opts.threads ?? 1);
  state.threads = tf.getBackend() === 'wasm' ? (parallel?.threads ?? 1) : undefined; // only wasm's rounding depends on it
  try {
    while (state.epoch < recipe.epochs) {
      const epoch = state.epoch;
      const t0 = performance.now();
      const prior = state.partial ?? { lossSum: 0, accSum: 0, seconds: 0 };
      const perm = epochPermutation(trainSplit.count, recipe.seed, epoch);
      let lossSum = tf.scalar(prior.lossSum);
      let accSum = tf.scalar(prior.accSum);
      let badBatch = tf.scalar(-1, 'int32'); // first batch whose loss was not finite, -1 while none
      let done = state.batch;
      const runningLoss = () => lossSum.dataSync()[0]! / Math.max(done, 1);

      const checkDiverged = () => {
        const bad = badBatch.dataSync()[0]!;
        if (bad >= 0) {
          throw new AlexnetError(
            'DIVERGED',
            `training diverged: the loss is NaN or infinite at epoch ${epoch}, batch ${bad}`,
            `lower the learning rate, e.g. --lr ${recipe.lr / 10}`,
          );
        }
      };

      try {
        for (; done < batches; ) {
          if (opts.signal?.aborted) {
            checkDiverged();
            state.batch = done;
            state.partial = { lossSum: lossSum.dataSync()[0]!, accSum: accSum.dataSync()[0]!, seconds: prior.seconds + (performance.now() - t0) / 1000 };
            await opts.checkpointer?.save(model, state);
            return { history: state.history, model, interrupted: true, state };
          }
          const idx = perm.subarray(done * bs, Math.min((done + 1) * bs, trainSplit.count));
          let loss: tf.Scalar;
          let acc: tf.Scalar;
          if (parallel) {
            fillBatch(trainSplit, idx, xBuf, yBuf);
            ({ loss, acc } = await parallel.step(model, optimizer, xBuf, yBuf, idx.length));
          } else {
            const { x, y } = makeBatch(trainSplit, idx, xBuf, yBuf);
            ({ loss, acc } = trainStep(model, optimizer, x, y));
            tf.dispose([x, y]);
          }
          const batchIndex = done;
          const next = tf.tidy(() => ({
            lossSum: lossSum.add(loss) as tf.Scalar,
            accSum: accSum.add(acc) as tf.Scalar,
            badBatch: tf.where(tf.logicalAnd(tf.less(badBatch, 0), tf.logicalNot(tf.isFinite(loss))), tf.scalar(batchIndex, 'int32'), badBatch) as tf.Scalar,
          }));
          tf.dispose([loss, acc, lossSum, accSum, badBatch]);
          ({ lossSum, accSum, badBatch } = next);
          done++;
          if (done % DIVERGENCE_CHECK_EVERY === 0) checkDiverged();
          opts.onBatch?.({ epoch, batch: done, batches, images: Math.min(done * bs, trainSplit.count), runningLoss });
          // Let signal handlers and timers run between batches (the step itself is synchronous on wasm/cpu).
          if (done % 4 === 0) await new Promise((r) => setImmediate(r));
        }
        checkDiverged();
        const trainLoss = lossSum.dataSync()[0]! / batches;
        const trainAcc = accSum.dataSync()[0]! / batches;
        const valid = parallel ? await parallel.evaluate(model, testSplit, recipe.evalBatchSize) : evaluate(model, testSplit, recipe.evalBatchSize, xBuf, yBuf);
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
        if (!Number.isFinite(valid.loss)) {
          throw new AlexnetError('DIVERGED', `training diverged: the validation loss is ${valid.loss} after epoch ${epoch}`, `lower the learning rate, e.g. --lr ${recipe.lr / 10}`);
        }
        state.history.push(metrics);
        state.confusion = confusionMatrix(testSplit.labels, valid.predictions);
        state.epoch = epoch + 1;
        state.batch = 0;
        state.partial = null;
        await opts.checkpointer?.save(model, state);
        opts.onEpochEnd?.(metrics);
      } finally {
        tf.dispose([lossSum, accSum, badBatch]);
      }
    }
    optimizer.dispose();
    return { history: state.history, model, interrupted: false, state };
  } finally {
    await parallel?.dispose();
  }
}

export interface EvalResult {
  loss: number; // mean over batches of each batch's mean, as the seed
  acc: number;
  predictions: Uint8Array; // predicted class per record
}

/** Loss and accuracy over a split in order, in batches of `batchSize`; one device read at the end. */
export function evaluate(model: tf.LayersModel, split: Split, batchSize: number, xBuf?: Float32Array, yBuf?: Int32Array): EvalResult {
  const xb = xBuf ?? new Float32Array(batchSize * IMAGE_BYTES);
  const yb = yBuf ?? new Int32Array(batchSize);
  const batches = Math.ceil(split.count / batchSize);
  let lossSum = tf.scalar(0);
  let accSum = tf.scalar(0);
  const preds: tf.Tensor1D[] = [];
  for (let b = 0; b < batches; b++) {
    const start = b * batchSize;
    const idx = Array.from({ length: Math.min(batchSize, split.count - start) }, (_, i) => start + i);
    const { x, y } = makeBatch(split, idx, xb, yb);
    const next = tf.tidy(() => {
      const logits = model.apply(x, { training: false }) as tf.Tensor2D;
      preds.push(tf.keep(tf.argMax(logits, 1) as tf.Tensor1D));
      return { lossSum: lossSum.add(crossEntropy(logits, y)) as tf.Scalar, accSum: accSum.add(accuracy(logits, y)) as tf.Scalar };
    });
    tf.dispose([x, y, lossSum, accSum]);
    ({ lossSum, accSum } = next);
  }
  const all = tf.concat(preds);
  const predictions = Uint8Array.from(all.dataSync() as Int32Array);
  all.dispose();
  const result = { loss: lossSum.dataSync()[0]! / batches, acc: accSum.dataSync()[0]! / batches, predictions };
  tf.dispose([lossSum, accSum, ...preds]);
  return result;
}

/** counts[t][p]: how many records of true class t were predicted as p. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes = NUM_CLASSES): number[][] {
  if (labels.length !== predictions.length) throw new RangeError(`${labels.length} labels but ${predictions.length} predictions`);
  const counts = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]![predictions[i]!]!++;
  return counts;
}

/** Per true class: records, correct ones, and their ratio (NaN for a class with no records). */
export function perClassAccuracy(confusion: number[][]): { count: number; correct: number; accuracy: number }[] {
  return confusion.map((row, t) => {
    const count = row.reduce((a, b) => a + b, 0);
    const correct = row[t]!;
    return { count, correct, accuracy: count === 0 ? NaN : correct / count };
  });
}

export interface EvalReport {
  /** As the training line's Valid Loss and Valid Acc: means of per-batch means, so the numbers match. */
  loss: number;
  accuracy: number;
  correct: number;
  images: number;
  classNames: string[];
  perClass: { name: string; count: number; correct: number; accuracy: number }[];
  confusion: number[][]; // [true class][predicted class]
}

/** Everything `alexnet eval` reports for a model on a split; with `parallel`, each batch is shared out. */
export async function evaluateReport(model: tf.LayersModel, split: Split, batchSize: number, classNames: string[], parallel?: DataParallel | null): Promise<EvalReport> {
  const r = parallel ? await parallel.evaluate(model, split, batchSize) : evaluate(model, split, batchSize);
  const confusion = confusionMatrix(split.labels, r.predictions);
  const perClass = perClassAccuracy(confusion).map((c, i) => ({ name: classNames[i] ?? String(i), ...c }));
  return {
    loss: r.loss,
    accuracy: r.acc,
    correct: perClass.reduce((n, c) => n + c.correct, 0),
    images: split.count,
    classNames,
    perClass,
    confusion,
  };
}
