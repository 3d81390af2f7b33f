// Timing the parts that make an epoch: the SGD step, evaluation, and decoding. Synthetic data of the real
// shapes; speed only. The command prints; this module only measures (runBench: one backend, started here).

import { inOrder } from './batches.js';
import type { ActiveBackend, BackendChoice, Settings } from './backends/index.js';
import { IMAGE_BYTES, RECORD_BYTES, decodeBatch, type Split } from './data/cifar.js';
import { createModel } from './model.js';
import { lessonRecipe } from './recipe.js';
import { checkBatchSizes, startBackend } from './run.js';

export const EPOCH_TRAIN_IMAGES = 50_000;
export const EPOCH_TEST_IMAGES = 10_000;

export interface BenchOptions {
  batchSize: number; // training batch, 64 in the seed
  evalBatchSize: number; // 128 in the seed
  steps: number; // timed steps after the warm-up
  warmup: number; // untimed steps first (kernel set-up, XNNPACK operator creation, GPU autotuning)
  settings: Settings; // the backend's own options (wasm: threads)
}

export interface BenchResult {
  batchSize: number;
  threads: number; // threads the step ran on (1 but on wasm with --threads > 1)
  runner: string | null; // how the runner ran, in a few words (`2 threads`)
  steps: number;
  stepMsMedian: number; // one SGD step (forward, backward, update), the loss read back
  hostMsMedian: number; // the step's host time: from the call to its return (the work submitted, not awaited)
  dispatchesPerStep: number | null; // GPU programs a step runs, where the runner counts them (webgpu)
  trainImagesPerSecond: number;
  evalMsMedian: number; // one evaluation batch (forward pass, loss, accuracy, predictions read back)
  evalImagesPerSecond: number;
  epochSeconds: number; // implied: 50,000 training + 10,000 test images
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `n` synthetic images of the real shape, every pixel value used, and labels cycling through the classes. */
function syntheticSplit(n: number, salt: number): Split {
  return {
    images: Uint8Array.from({ length: n * IMAGE_BYTES }, (_, i) => (i * 97 + salt) & 0xff),
    labels: Uint16Array.from({ length: n }, (_, i) => i % 10),
    count: n,
  };
}

/** Times the backend's own step and evaluation, as the training loop runs them (the batch gathered each step). */
export async function benchTraining(backend: ActiveBackend, opts: BenchOptions): Promise<BenchResult> {
  const recipe = { ...lessonRecipe(0), batchSize: opts.batchSize, evalBatchSize: opts.evalBatchSize };
  const model = createModel({ seed: 0 });
  const trainSplit = syntheticSplit(opts.batchSize, 0);
  const evalSplit = syntheticSplit(opts.evalBatchSize, 1);
  const batch = inOrder(0, opts.batchSize);
  const runner = await backend.runner({ model, recipe, settings: opts.settings });
  const stepTimes: number[] = [];
  const hostTimes: number[] = [];
  const evalTimes: number[] = [];
  let dispatches: number | null = null;
  try {
    for (let i = 0; i < opts.warmup + opts.steps; i++) {
      const t = performance.now();
      await runner.step(trainSplit, batch, recipe.lr);
      const host = runner.probe.lastStepHostMs ?? performance.now() - t;
      await runner.numbers(); // wait for the device: an honest step time
      if (i >= opts.warmup) {
        stepTimes.push(performance.now() - t);
        hostTimes.push(host);
      }
    }
    dispatches = runner.probe.dispatchesPerStep ?? null;
    // Evaluation: one batch of evalBatchSize per measurement, run as in training (shared out on wasm).
    for (let i = 0; i < opts.warmup + opts.steps; i++) {
      const t = performance.now();
      await runner.evaluate(evalSplit, opts.evalBatchSize);
      if (i >= opts.warmup) evalTimes.push(performance.now() - t);
    }
  } finally {
    await runner.dispose();
    model.dispose();
  }
  const stepMs = median(stepTimes);
  const evalMs = median(evalTimes);
  return {
    batchSize: opts.batchSize,
    threads: Number(runner.settings.threads ?? 1),
    runner: runner.label,
    steps: opts.steps,
    stepMsMedian: round(stepMs),
    hostMsMedian: round(median(hostTimes)),
    dispatchesPerStep: dispatches,
    trainImagesPerSecond: round((opts.batchSize / stepMs) * 1000),
    evalMsMedian: round(evalMs),
    evalImagesPerSecond: round((opts.evalBatchSize / evalMs) * 1000),
    epochSeconds: round(((EPOCH_TRAIN_IMAGES / opts.batchSize) * stepMs + (EPOCH_TEST_IMAGES / opts.evalBatchSize) * evalMs) / 1000),
  };
}

export interface DecodeResult {
  records: number;
  msMedian: number; // decoding all of them (6 batch files of 10,000 records), median of 3 runs
  mbPerSecond: number;
}

/** Decodes a full-size CIFAR-10 (six synthetic 10,000-record batch files), as the loader does. */
export function benchDecode(): DecodeResult {
  const perFile = 10_000;
  const files = Array.from({ length: 6 }, (_, f) => {
    const b = new Uint8Array(perFile * RECORD_BYTES);
    for (let i = 0; i < b.length; i++) b[i] = (i * 31 + f) & 0xff;
    for (let r = 0; r < perFile; r++) b[r * RECORD_BYTES] = r % 10;
    return b;
  });
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    const split = { images: new Uint8Array(6 * perFile * IMAGE_BYTES), labels: new Uint16Array(6 * perFile), count: 6 * perFile };
    files.forEach((b, f) => decodeBatch(b, `synthetic_${f}.bin`, split, f * perFile));
    times.push(performance.now() - t);
  }
  const ms = median(times);
  return { records: 6 * perFile, msMedian: round(ms), mbPerSecond: round((6 * perFile * RECORD_BYTES) / 1e6 / (ms / 1000)) };
}

const round = (x: number) => Math.round(x * 100) / 100;

/** One backend's bench, as `alexnet bench --json` prints it. */
export interface BenchRecord extends BenchResult {
  type: 'bench';
  backend: string;
  gpu: boolean;
  detail: string; // the backend line without `backend: `, and how the runner ran
  decode: DecodeResult | null; // null with --no-decode
}

export interface BenchRun extends Omit<BenchOptions, 'warmup'> {
  backend: BackendChoice;
  gpu: boolean;
  quiet: boolean;
  /** Whether to time the decoding of a full-size split too. */
  decode: boolean;
  /** The backend options the command line set (the rest of `settings` are defaults): one for another backend is refused. */
  asked: Settings;
}

/** Starts the backend asked for (Dawn's null adapter too: its times are the host's part of a step) and times it. */
export async function runBench(opts: BenchRun, hooks: { log?: (line: string) => void } = {}): Promise<BenchRecord> {
  const backend = await startBackend(opts.backend, { gpu: opts.gpu, quiet: opts.quiet, settings: opts.asked, say: hooks.log ?? (() => {}), computes: false });
  const model = createModel({ seed: 0 });
  try {
    checkBatchSizes(backend, model, [['--batch-size', opts.batchSize], ['--eval-batch-size', opts.evalBatchSize]]);
  } finally {
    model.dispose();
  }
  const result = await benchTraining(backend, { ...opts, warmup: 3 });
  const detail = backend.detail + (result.runner ? `, ${result.runner}` : '');
  return { type: 'bench', backend: backend.name, gpu: backend.gpu, detail, ...result, decode: opts.decode ? benchDecode() : null };
}
