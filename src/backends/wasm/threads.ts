// The wasm backend's one option, --threads, kept apart from the backend so that parsing it (and --help) loads no
// TensorFlow.js. Threads change the float rounding (a batch's gradient is the weighted mean of its shards'), so
// the count a run used is saved with it and a resumed run keeps it.

import * as os from 'node:os';
import { int, type Field } from '../../recipe.js';

/**
 * Most threads worth using: a batch of 64 cut finer leaves each shard too little work per kernel. One thread's
 * step per image at batch 64, 32, 16 and 8 took 3.0-3.2, 3.4-4.9, 3.4-5.5 and 5.6-6.4 ms (`alexnet bench --backend
 * wasm --threads 1 --batch-size B`, three interleaved rounds, Intel Xeon, 2 cores, 2026-12-07), and each thread
 * adds a serial pass over the gradient to the averaging. Above 2 cores the scaling is not measured yet (README).
 */
export const MAX_THREADS = 4;

export const THREADS: Field<number> = {
  flag: '--threads',
  arg: '<n>',
  help: 'wasm: threads per training step and evaluation batch, each taking a share of the batch',
  evalHelp: 'wasm: threads per evaluation batch, each taking a share of it',
  // One per core, read when the option is built (os.availableParallelism, which containers' CPU limits lower).
  get default() {
    return Math.max(1, Math.min(os.availableParallelism(), MAX_THREADS));
  },
  defaultText: `one per core, at most ${MAX_THREADS}`,
  kind: int(1, MAX_THREADS),
  example: '2',
};
