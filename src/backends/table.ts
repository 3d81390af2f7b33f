// The one table of backends: the `--backend` choices and their help, `bench --backend all`, and the order in
// which `auto` tries them. It loads no TensorFlow.js (that costs ~0.4 s), so `--help` and `download` start at
// once; each backend's module is imported only when it is tried.

import { AlexnetError } from '../errors.js';
import type { BackendModule, BackendName } from './types.js';
import { MAX_THREADS, defaultThreads } from './wasm/threads.js';

export interface BackendEntry {
  name: BackendName;
  help: string; // for --help and the README
  /**
   * The flags of each `bench --backend all` run of it, given the --threads value: the cpu backend takes minutes
   * per step and a software WebGPU adapter seconds, so those are timed by name only.
   */
  benchAll: (threads: number) => string[][];
  load: () => Promise<BackendModule>;
}

export const BACKENDS: readonly BackendEntry[] = [
  { name: 'tensorflow', help: '@tensorflow/tfjs-node-gpu (CUDA 11.2) or @tensorflow/tfjs-node, if installed', benchAll: () => [[]], load: () => import('./tensorflow/index.js') },
  { name: 'webgpu', help: 'WebGPU through Dawn: Vulkan, Metal or D3D12 on the GPU', benchAll: () => [['--gpu']], load: () => import('./webgpu/index.js') },
  // Threads, and one thread for comparison.
  { name: 'wasm', help: 'CPU, XNNPACK plus our kernels, one thread per core', benchAll: (t) => (t > 1 ? [['--threads', String(t)], ['--threads', '1']] : [['--threads', '1']]), load: () => import('./wasm/index.js') },
  { name: 'cpu', help: 'plain JavaScript, minutes per batch', benchAll: () => [], load: () => import('./cpu/index.js') },
];

/**
 * `auto`: GPUs first (tfjs-node-gpu where TensorFlow sees a GPU, then WebGPU on a hardware adapter), then the
 * CPU backends, fastest first. A software adapter is never taken: a batch-16 step took 0.52 s on lavapipe here
 * (`alexnet bench --backend webgpu --batch-size 16`, 2026-11-28) where wasm takes under 0.1 s.
 */
export const AUTO_ORDER: readonly { name: BackendName; gpuOnly: boolean }[] = [
  { name: 'tensorflow', gpuOnly: true },
  { name: 'webgpu', gpuOnly: true },
  { name: 'tensorflow', gpuOnly: false },
  { name: 'wasm', gpuOnly: false },
  { name: 'cpu', gpuOnly: false },
];

export const BACKEND_CHOICES = ['auto', ...BACKENDS.map((b) => b.name)] as const;
export type BackendChoice = 'auto' | BackendName;

export const BACKEND_HELP = `auto (GPU first: tensorflow, then webgpu; else tensorflow on CPU, then wasm), ${BACKENDS.map((b) => `${b.name}: ${b.help}`).join('; ')}`;

export function parseBackendChoice(value: string): BackendChoice {
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new AlexnetError('USAGE', `unknown backend ${JSON.stringify(value)}`, `use one of ${BACKEND_CHOICES.join(', ')}`);
}

export function backendEntry(name: BackendName): BackendEntry {
  return BACKENDS.find((b) => b.name === name)!;
}

/** --threads: what backends that share a step among threads (wasm) accept, and their default. */
export const THREADS = { max: MAX_THREADS, default: defaultThreads };
