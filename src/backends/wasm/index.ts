// The wasm backend: CPU everywhere Node.js runs, with XNNPACK kernels, ours where the stock ones are missing
// or slow (./kernels/), and data-parallel steps on worker threads (./parallel.ts).

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '../../tf.js';
import { DeviceRunner } from '../runner.js';
import type { ActiveBackend, DoctorSection, StartRequest, StartResult } from '../types.js';
import { registerWasmKernels } from './kernels/register_all_kernels.js';
import { DataParallel } from './parallel.js';
import { THREADS } from './threads.js';

export const PACKAGE = '@tensorflow/tfjs-backend-wasm';

/**
 * The largest batch a step fits in: the wasm heap is at most 4 GiB, and a batch of 8192 ran out of it
 * ("memory access out of bounds", issue #13). `alexnet bench --backend wasm --batch-size 4096 --steps 1`
 * ran here (2026-11-28, 2 threads: a 22.7 s step, 8.2 GB peak RSS); the same at 8192 failed.
 */
export const MAX_BATCH = 4096;

export async function start(req: StartRequest): Promise<StartResult> {
  if (req.gpuOnly) return { ok: false, installed: true, reason: 'wasm runs on the CPU', hint: 'drop --gpu' };
  if (!(await tf.setBackend('wasm'))) return { ok: false, installed: true, reason: 'the wasm backend did not start', hint: 'try --backend cpu' };
  registerWasmKernels();
  const backend: ActiveBackend = {
    name: 'wasm',
    package: PACKAGE,
    gpu: false,
    computes: true,
    detail: `wasm (CPU; ${req.why ?? 'asked for with --backend wasm'})`,
    maxBatch: () => MAX_BATCH,
    runner: async ({ model, settings }) => {
      const threads = Number(settings.threads ?? THREADS.default);
      return threads > 1 ? DataParallel.start(model, threads) : new DeviceRunner(model, { threads: 1 });
    },
    close: async () => {},
  };
  return { ok: true, backend };
}

export async function doctor(): Promise<DoctorSection> {
  return { title: 'wasm', lines: [], json: {}, fixes: [] };
}
