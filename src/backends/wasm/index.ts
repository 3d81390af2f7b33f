// The wasm backend: CPU everywhere Node.js runs, with XNNPACK kernels, ours where the stock ones are missing
// or slow (./kernels/), and data-parallel steps on worker threads (./parallel.ts).

import { readFileSync } from 'node:fs';
import './package.cjs';
import tf from '../../tf.cjs';
import { OpsRunner } from '../runner.js';
import type { ActiveBackend, DoctorSection, StartRequest, StartResult } from '../types.js';
import { registerWasmKernels } from './kernels/register_all_kernels.js';
import { fusedMultiplyAdd } from './gemm.js';
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
  // emscripten prints its failure (`Aborted(RangeError: WebAssembly.instantiate(): Out of memory ...)`) on stderr
  // itself: kept off it, and said in the tool's one line instead, with the limit that caused it (issue #20).
  const said: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: unknown) => said.push(String(chunk)) >= 0) as typeof process.stderr.write;
  let ok: boolean;
  try {
    ok = await tf.setBackend('wasm');
  } finally {
    process.stderr.write = write;
  }
  if (!ok) {
    const outOfMemory = /out of memory/i.test(said.join(''));
    const limit = addressSpaceLimit();
    return {
      ok: false,
      installed: true,
      reason: `the wasm backend did not start${outOfMemory ? ': out of memory' : ''}${limit ? `; this process may use at most ${limit} (ulimit -v)` : ''}`,
      // V8 reserves a WebAssembly memory's whole range of addresses (GBs) up front, whatever the batch.
      hint: limit ? 'raise the limit (`ulimit -v unlimited`): WebAssembly reserves its memory as address space up front' : 'run `alexnet doctor`',
    };
  }
  registerWasmKernels();
  const backend: ActiveBackend = {
    name: 'wasm',
    package: PACKAGE,
    gpu: false,
    computes: true,
    where: 'CPU',
    detail: `wasm (CPU; ${req.why ?? 'asked for with --backend wasm'})`,
    maxBatch: () => MAX_BATCH,
    runner: async (opts) => {
      const threads = Number(opts.settings.threads ?? THREADS.default);
      return threads > 1 ? DataParallel.start(opts, threads) : new OpsRunner(opts, { threads: 1 });
    },
    close: async () => {},
  };
  return { ok: true, backend };
}

/** The address-space limit of this process (`ulimit -v`) in words, or null where there is none (or it cannot be told). */
function addressSpaceLimit(): string | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max address space'));
    const soft = line?.slice('Max address space'.length).trim().split(/\s+/)[0];
    return soft && /^\d+$/.test(soft) ? `${Math.round(Number(soft) / 2 ** 20).toLocaleString('en-US')} MiB of address space` : null;
  } catch {
    return null;
  }
}

export async function doctor(): Promise<DoctorSection> {
  // Whether our matrix product has its fused multiply-add here: it sets the speed of the convolutions, and the
  // wasm backend's numbers differ between a Node with relaxed SIMD and one without.
  const fma = fusedMultiplyAdd();
  return {
    title: 'wasm',
    lines: [fma
      ? 'ok   fused multiply-add in the convolutions (WebAssembly relaxed SIMD)'
      : `--   no WebAssembly relaxed SIMD in Node ${process.versions.node}: the convolutions multiply and add apart (slower, and other numbers than with it)`],
    json: { fusedMultiplyAdd: fma, threads: THREADS.default },
    fixes: [],
  };
}
