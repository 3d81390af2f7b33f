// What a backend module under src/backends/ provides (STYLE.md #7): how it starts, how it runs a training step
// and an evaluation, and what `alexnet doctor` should say about it. Nothing outside src/backends/ names a
// backend; the training loop, evaluation and the commands see only these types.

import type { Split } from '../data/cifar.js';
import type * as tf from '../tf.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

export interface EvalResult {
  loss: number; // mean over batches of each batch's mean loss, as the seed computes it
  acc: number; // likewise for accuracy
  predictions: Uint8Array; // predicted class per record
}

/** How one backend runs the seed's recipe: its SGD step and its evaluation. */
export interface Runner {
  /** Threads each step is shared among where the float rounding depends on it (wasm), else undefined. */
  readonly threads: number | undefined;
  /**
   * One SGD step on the images `indices` of `split`: forward, backward, update. Returns the batch's mean loss and
   * accuracy as device scalars the caller owns; nothing is read back.
   */
  step(model: tf.LayersModel, optimizer: tf.Optimizer, split: Split, indices: ArrayLike<number>): Promise<{ loss: tf.Scalar; acc: tf.Scalar }>;
  /** Loss, accuracy and predictions over `split` in order, in batches of `batchSize`. */
  evaluate(model: tf.LayersModel, split: Split, batchSize: number): Promise<EvalResult>;
  dispose(): Promise<void>;
}

/** A started backend: TensorFlow.js now computes on it. */
export interface ActiveBackend {
  name: BackendName;
  /** The npm package that computes, e.g. `@tensorflow/tfjs-backend-wasm`. */
  package: string;
  /** Work runs on a GPU (not a CPU, not a software adapter). */
  gpu: boolean;
  /** What runs and why, e.g. `wasm (CPU; no GPU backend: ...)`; the stderr line is `backend: ` + detail. */
  detail: string;
  /** Largest batch (training or evaluation) the backend can hold; larger ones are refused before training. */
  maxBatch: number;
  /** Threads a run asking for `asked` would use, where that changes the rounding (wasm); else undefined. */
  threadsFor(asked: number): number | undefined;
  /** The way this backend runs steps and evaluations; `threads` is the --threads value (only wasm uses it). */
  runner(model: tf.LayersModel, opts: { threads: number }): Promise<Runner>;
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
