// Training: the loop. Each epoch takes the batch stage's order and augmentation (src/batches.ts), has the runner
// step through it at each step's learning rate (src/schedule.ts; src/backends/: each backend its own way), reads
// the per-step numbers as the seed sums them, evaluates on the validation split, keeps the best epoch, and hands a
// checkpoint to the checkpointer; with a held-out validation split, the test split is evaluated once, at the end. Starting, resuming and saving a run are src/run.ts's; this loop never
// prints and never exits (STYLE.md #3): it reports through callbacks and returns.

import { epochBatches } from './batches.js';
import { lrAt } from './schedule.js';
import type { Runner } from './backends/index.js';
import type { Split } from './data/cifar.js';
import { AlexnetError } from './errors.js';
import { confusionMatrix, evaluateSplit } from './evaluate.js';
import { RECIPE } from './recipe.js';
import type { EpochMetrics, TestMetrics, TrainState } from './state.js';
import type tfl from './tfl.cjs';

// The state of a run is src/state.ts's schema; the loop's callers name these types here too.
export type { EpochMetrics, TestMetrics, TrainData, TrainState } from './state.js';

export interface BatchProgress {
  epoch: number;
  batch: number; // batches done in this epoch
  batches: number; // batches in the epoch
  images: number; // training images done in this epoch
  /** The mean loss of the batches read from the device so far (see READ_EVERY); null before the first read. */
  runningLoss: number | null;
  /** The learning rate of the last step. */
  lr: number;
}

/** Where the end-of-epoch evaluation stands: for the progress bar's evaluating stage. */
export interface EvalProgress {
  epoch: number;
  /** Batches under way or done, of `batches`. */
  batch: number;
  batches: number;
  /** What is evaluated: the validation split after each epoch, the test split once after the last. */
  split: 'valid' | 'test';
}

export interface Checkpointer {
  /**
   * Saves the run: the model, its state and the optimiser's momentum buffers (null without momentum); `best`: this
   * epoch is the best so far, to keep as the best checkpoint too (--keep-best).
   */
  save(model: tfl.LayersModel, state: TrainState, optimizer: Float32Array | null, best: boolean): Promise<void>;
}

export interface TrainLoopOptions {
  /** The network; the runner trains it and writes its weights back into it before each checkpoint. */
  model: tfl.LayersModel;
  runner: Runner;
  /** Where the run stands: epoch 0 for a new run, a checkpoint's state for a resumed one. Updated as it goes. */
  state: TrainState;
  train: Split;
  /** Evaluated after every epoch: the test split (the seed's way), or images held out of the training split. */
  valid: Split;
  /** Evaluated once after the last epoch, where it is not the validation split. */
  test: Split;
  checkpointer?: Checkpointer;
  onEpochEnd?: (m: EpochMetrics) => void;
  onBatch?: (p: BatchProgress) => void;
  onEval?: (p: EvalProgress) => void;
  /** Stop at the next batch boundary; with a checkpointer, save first. */
  signal?: AbortSignal;
}

export interface TrainLoopResult {
  history: EpochMetrics[];
  interrupted: boolean;
  /** Whether --patience ended the run before its last epoch. */
  stoppedEarly: boolean;
  state: TrainState;
  /** The test split's numbers, where a validation split was held out and the run finished. */
  test: TestMetrics | null;
}

/**
 * How often (in batches) the loop reads the per-batch numbers from the device, which also catches a diverged run;
 * a read per batch would stall a GPU (issue #12: each dispatch costs ~50 us of a WebGPU step's 7 ms).
 */
const READ_EVERY = 25;
/** ...and at least this often, so that the bar's loss and the divergence check keep up with slow steps (wasm: ~250 ms). */
const READ_AT_LEAST_EVERY_MS = 1000;

/** A diverged run's error; its hint suggests a tenth of the rate, and never more than the seed's (--lr 1e3 got `e.g. --lr 100`: issue #25). */
const diverged = (what: string, lr: number) => new AlexnetError('DIVERGED', `training diverged: ${what}`, `lower the learning rate, e.g. --lr ${Number(Math.min(lr / 10, RECIPE.lr.default!).toPrecision(3))}`);

/**
 * The one reader of an epoch's per-batch loss and accuracy (issue #17). read() has the runner take every pending
 * step's numbers at once, synchronously, and sums them after any read already under way, so reads never
 * overlap, nothing is summed twice or dropped, and the sums are float32 sums in batch order: the seed's running
 * sums, whoever calls and however often. A non-finite loss is reported by the read that finds it. (The progress
 * bar used to start reads of its own, which raced the loop's: wrong Train Loss and Train Acc on a terminal.)
 */
class EpochSums {
  private reading: Promise<void> = Promise.resolve();
  private readonly sums: Float32Array;
  private counted: number; // batches summed

  /** `prior`: the sums of the `batches` already done (a resumed epoch); `bad(batch)`: the error for a non-finite loss. */
  constructor(
    private readonly runner: Runner,
    prior: { lossSum: number; accSum: number },
    batches: number,
    private readonly bad: (batch: number) => Error,
  ) {
    this.sums = new Float32Array([prior.lossSum, prior.accSum]);
    this.counted = batches;
  }

  /** Reads every step's numbers so far, after the reads already started; resolves once all of them are summed. */
  read(): Promise<void> {
    const values = this.runner.numbers();
    values.catch(() => {}); // awaited below; this only keeps a read after a failed one from going unhandled
    this.reading = this.reading.then(async () => {
      const v = await values;
      for (let i = 0; i < v.length; i += 2) {
        if (!Number.isFinite(v[i]!)) throw this.bad(this.counted);
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
}

/**
 * Whether --patience has ended the run: `patience` epochs done since the best validation accuracy (Keras's
 * EarlyStopping counts the epochs without improvement the same way). Read from the run's own history and best
 * epoch, so a resumed run knows how long it has waited.
 */
export function stoppedEarly(state: Pick<TrainState, 'recipe' | 'best' | 'epoch' | 'batch'>): boolean {
  return state.recipe.patience > 0 && state.best != null && state.batch === 0 && state.epoch - 1 - state.best.epoch >= state.recipe.patience;
}

/** How --patience ended a run, in words: `stopped early after epoch 9: no better validation accuracy in 3 epochs (the best: epoch 6, 0.7126)`. */
export const earlyStopText = (state: Pick<TrainState, 'recipe' | 'best' | 'epoch'>): string =>
  `stopped early after epoch ${state.epoch - 1}: no better validation accuracy in ${state.recipe.patience} epoch${state.recipe.patience === 1 ? '' : 's'} (the best: epoch ${state.best!.epoch}, ${state.best!.validAcc.toFixed(4)})`;

export async function trainLoop(opts: TrainLoopOptions): Promise<TrainLoopResult> {
  const { model, runner, state, train: trainSplit, valid: validSplit, test: testSplit } = opts;
  const recipe = state.recipe;
  if (trainSplit.count === 0 || validSplit.count === 0 || testSplit.count === 0) {
    throw new AlexnetError('DATA', 'no training, validation or test records to use', 'check --limit-train, --limit-test and --valid-split');
  }
  state.settings = runner.settings; // where the rounding depends on them (wasm), a resumed run keeps them
  const save = async (best = false) => {
    await runner.sync();
    await opts.checkpointer?.save(model, state, await runner.optimizerState(), best);
  };
  const batches = Math.ceil(trainSplit.count / recipe.batchSize);
  let test: TestMetrics | null = null;
  while (state.epoch < recipe.epochs && !stoppedEarly(state)) {
    const epoch = state.epoch;
    const t0 = performance.now();
    const prior = state.partial ?? { lossSum: 0, accSum: 0, seconds: 0 };
    const { batch } = epochBatches(trainSplit.count, recipe.batchSize, recipe.seed, epoch, recipe.augment);
    const sums = new EpochSums(runner, prior, state.batch, (b) => diverged(`the loss is NaN or infinite at epoch ${epoch}, batch ${b}`, recipe.lr));
    let done = state.batch;
    let lastRead = performance.now();
    for (; done < batches; ) {
      if (opts.signal?.aborted) {
        await sums.read();
        state.batch = done;
        state.partial = { lossSum: sums.lossSum, accSum: sums.accSum, seconds: prior.seconds + (performance.now() - t0) / 1000 };
        await save();
        return { history: state.history, interrupted: true, stoppedEarly: false, state, test: null };
      }
      const lr = lrAt(recipe, batches, epoch * batches + done);
      await runner.step(trainSplit, batch(done), lr);
      done++;
      if (done % READ_EVERY === 0 || performance.now() - lastRead >= READ_AT_LEAST_EVERY_MS) {
        await sums.read();
        lastRead = performance.now();
      }
      opts.onBatch?.({ epoch, batch: done, batches, images: Math.min(done * recipe.batchSize, trainSplit.count), runningLoss: sums.runningLoss, lr });
      // Let signal handlers run between batches: a step may never yield to the event loop, and one immediate
      // queued from an I/O callback runs before the loop polls for signals again, two in a row never do (a
      // Ctrl-C during a 6-batch epoch on webgpu went unseen when this yielded every 4th batch).
      await new Promise((r) => setImmediate(r));
    }
    await sums.read();
    const valid = await runner.evaluate(validSplit, recipe.evalBatchSize, (b, n) => opts.onEval?.({ epoch, batch: b, batches: n, split: 'valid' }));
    if (!Number.isFinite(valid.loss)) throw diverged(`the validation loss is ${valid.loss} after epoch ${epoch}`, recipe.lr);
    const improved = !state.best || valid.acc > state.best.validAcc;
    // The last epoch, or the one --patience stops after: the state this epoch leaves, asked as a resume asks it.
    const last = epoch + 1 === recipe.epochs || stoppedEarly({ recipe, best: improved ? { epoch, validAcc: valid.acc } : state.best, epoch: epoch + 1, batch: 0 });
    // With a held-out validation split the test split is evaluated once, after the last epoch (issue #21).
    if (last && testSplit !== validSplit) {
      const t = await evaluateSplit(runner, testSplit, recipe.evalBatchSize, { tta: recipe.tta, smoothing: recipe.labelSmoothing, classes: model.outputs[0]!.shape[1]!, onBatch: (b, n) => opts.onEval?.({ epoch, batch: b, batches: n, split: 'test' }) });
      test = { loss: t.loss, acc: t.acc };
    }
    const seconds = prior.seconds + (performance.now() - t0) / 1000;
    const images = trainSplit.count - state.batch * recipe.batchSize + validSplit.count;
    const metrics: EpochMetrics = {
      epoch,
      trainLoss: sums.lossSum / batches,
      trainAcc: sums.accSum / batches,
      validLoss: valid.loss,
      validAcc: valid.acc,
      seconds,
      imagesPerSecond: images / Math.max(seconds - prior.seconds, 1e-9),
      lr: lrAt(recipe, batches, epoch * batches + batches - 1),
    };
    state.history.push(metrics);
    state.confusion = confusionMatrix(validSplit.labels, valid.predictions, model.outputs[0]!.shape[1]!);
    state.epoch = epoch + 1;
    state.batch = 0;
    state.partial = null;
    if (test) state.test = test;
    if (improved) state.best = { epoch, validAcc: valid.acc };
    await save(improved);
    opts.onEpochEnd?.(metrics);
  }
  await runner.sync();
  return { history: state.history, interrupted: false, stoppedEarly: stoppedEarly(state) && state.epoch < recipe.epochs, state, test };
}
