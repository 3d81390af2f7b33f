// What a backend module under src/backends/ provides (STYLE.md #7): how it starts, how it runs a training step
// and an evaluation, and what `alexnet doctor` should say about it. Nothing outside src/backends/ names a
// backend; the training loop, evaluation and the commands see only these types.

import type { Batch } from '../batches.js';
import type { Split } from '../data/cifar.js';
import type { Recipe } from '../recipe.js';
import type tfl from '../tfl.cjs';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

export interface EvalResult {
  loss: number; // mean over batches of each batch's mean loss, as the seed computes it
  acc: number; // likewise for accuracy
  predictions: Uint16Array; // predicted class per record
  ranks: Uint16Array; // per record, how many classes outrank its true one (step.ts's labelRank): 0 is a top-1 hit
  logits: Float32Array; // per record, the network's output, [records, classes] row-major (test-time augmentation averages them)
}

/** A backend's own settings (the table's backend options: wasm's `threads`, webgpu's `webgpuRunner`), by option name. */
export type Settings = Record<string, number | string>;

export interface RunnerOptions {
  /** The network, whose variables hold the weights at the start; the runner trains them (see `sync`). */
  model: tfl.LayersModel;
  /** The optimiser's hyperparameters; the learning rate comes with each step (a schedule may change it). */
  recipe: Recipe;
  /** This backend's settings as asked; a runner takes what concerns it. */
  settings: Settings;
  /** The optimiser's momentum buffers to start from (a resumed run's), in model.trainableWeights order; else zeros. */
  optimizerState?: Float32Array | null;
}

/**
 * The seam through which `bench` and the tests look into a runner, apart from what a run asks of it: the batch it
 * builds, and what it counts or keeps where it has them.
 */
export interface RunnerProbe {
  /** The batch as the runner builds it for a step, read back: the tests hold it to the host's. */
  batch(split: Split, batch: Batch): Promise<{ x: Float32Array; y: Int32Array }>;
  /** The dispatches of the last step, where the runner counts them (webgpu), for `bench`. */
  readonly dispatchesPerStep?: number;
  /** The last step's host time where part of step() waits for the device (webgpu compiled), for `bench`. */
  readonly lastStepHostMs?: number;
  /** The last step's gradients by trainable weight, where the runner keeps them apart (webgpu compiled). */
  gradients?(): Promise<Float32Array[]>;
}

/** How one backend runs the recipe: the model and the optimiser are bound once; steps take only data. */
export interface Runner {
  /** The settings this runner's results depend on (wasm: threads change the rounding), saved with the run. */
  readonly settings: Settings;
  /** How it runs, in a few words for bench's lines (wasm: `2 threads`), or null. */
  readonly label: string | null;
  /** A line for the train log about how it runs (wasm: its threads and how to change them), or null. */
  readonly note: string | null;
  /** One SGD step at learning rate `lr` on `batch` of `split` (augmented as it says); its loss and accuracy stay on the device. */
  step(split: Split, batch: Batch, lr: number): Promise<void>;
  /**
   * Takes, at once, the loss and accuracy of every step since the last call, and reads them: [loss, acc] pairs in
   * step order (each the batch's mean). The training loop's one reader calls it (src/train.ts).
   */
  numbers(): Promise<Float32Array>;
  /** Loss, accuracy and predictions over `split` in order, in batches of `batchSize`. */
  /** `onBatch`: called after each batch is under way (the progress bar's evaluating stage). */
  evaluate(split: Split, batchSize: number, onBatch?: (done: number, batches: number) => void): Promise<EvalResult>;
  /** Writes the trained weights into the model's variables (before a checkpoint is saved, and at the end). */
  sync(): Promise<void>;
  /** The momentum buffers, in model.trainableWeights order, for the checkpoint; null where the recipe has no momentum. */
  optimizerState(): Promise<Float32Array | null>;
  /** What `bench` and the tests look into (the seam beside how a run uses a runner). */
  readonly probe: RunnerProbe;
  dispose(): Promise<void>;
}

/** A started backend: TensorFlow.js now computes on it. */
export interface ActiveBackend {
  name: BackendName;
  /** The npm package that computes, e.g. `@tensorflow/tfjs-backend-wasm`. */
  package: string;
  /** Work runs on a GPU (not a CPU, not a software adapter). */
  gpu: boolean;
  /** False on an adapter that runs nothing (Dawn's null adapter): only `bench` may use it, for host cost. */
  computes: boolean;
  /** Where the work runs, for messages: `CPU`, a GPU's name, or an adapter's (`Null backend adapter`). */
  where: string;
  /** What runs and why, e.g. `wasm (CPU; no GPU backend: ...)`; the stderr line is `backend: ` + detail. */
  detail: string;
  /** Largest batch (training or evaluation) of `model` the backend can hold; larger ones are refused before any work. */
  maxBatch(model: tfl.LayersModel): number;
  /** The way this backend runs steps and evaluations of `opts.model`. */
  runner(opts: RunnerOptions): Promise<Runner>;
  /** Waits for queued device work and releases the device, so the process exits promptly and cleanly. */
  close(): Promise<void>;
}

/** A backend that did not start, and why (for the backend line, `--backend` errors and `doctor`). */
export interface NotStarted {
  /** The package is there (so the reason is a load or device failure, not a missing install). */
  installed: boolean;
  /** One line, e.g. `@tensorflow/tfjs-node-gpu is not installed` or `WebGPU has only a software adapter`. */
  reason: string;
  /** The next step for the user. */
  hint: string;
}

export type StartResult = { ok: true; backend: ActiveBackend } | ({ ok: false } & NotStarted);

export interface StartRequest {
  /** Start only on a GPU (the `auto` order's first rounds, and `--gpu`). */
  gpuOnly: boolean;
  /** Chosen by `auto`, not by name: never a software adapter. */
  auto: boolean;
  /** Why this backend is being started, for its line: `asked for with --backend wasm`, or why no GPU runs. */
  why?: string;
  /** --quiet: keep what native code prints at start-up off stderr where the platform allows (webgpu: Dawn). */
  quiet?: boolean;
}

/** A problem `doctor` found and how to fix it. */
export interface Fix {
  problem: string;
  fix: string;
}

/** One backend's part of `alexnet doctor`: text lines, the same facts as JSON, and the fixes. */
export interface DoctorSection {
  title: string;
  lines: string[]; // each starts with `ok  `, `--  `, `FAIL` or five spaces, as the rest of the report
  json: Record<string, unknown>;
  fixes: Fix[];
}

/** What every backend module under src/backends/ exports. */
export interface BackendModule {
  start(req: StartRequest): Promise<StartResult>;
  doctor(): Promise<DoctorSection>;
}
