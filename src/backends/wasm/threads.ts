// How many threads the wasm backend may use (./parallel.ts), kept apart from it so that parsing --threads
// does not load TensorFlow.js.

import * as os from 'node:os';

/** Most threads worth using: a batch of 64 cut finer leaves each shard too little work per kernel. */
export const MAX_THREADS = 4;

/** The default --threads: one per core, at most MAX_THREADS. */
export const defaultThreads = (): number => Math.max(1, Math.min(os.availableParallelism(), MAX_THREADS));
