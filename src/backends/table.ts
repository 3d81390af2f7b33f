// The one table of backends: the `--backend` choices and their help, `bench --backend all`, and the order in
// which `auto` tries them. It loads no TensorFlow.js (~0.1 s of CPU even the way src/tf.cts loads it), so
// `--help` and `download` start at once; each backend's module is imported only when it is tried.

import { AlexnetError } from '../errors.js';
import type { Field } from '../recipe.js';
import type { BackendModule, BackendName, Settings } from './types.js';
import { THREADS } from './wasm/threads.js';
import { WEBGPU_RUNNER } from './webgpu/options.js';

export interface BackendEntry {
  name: BackendName;
  help: string; // for --help and the README
  /** Options of this backend's own (wasm: --threads), by the name they have in Settings and state.json. */
  options?: Record<string, Field<number> | Field<string>>;
  /**
   * The flags of each `bench --backend all` run of it, given the settings asked for: the cpu backend takes
   * minutes per step and a software WebGPU adapter seconds, so those are timed by name only.
   */
  benchAll: (settings: Settings) => string[][];
  load: () => Promise<BackendModule>;
}

export const BACKENDS: readonly BackendEntry[] = [
  { name: 'tensorflow', help: '@tensorflow/tfjs-node-gpu (CUDA 11.2) or @tensorflow/tfjs-node, if installed', benchAll: () => [[]], load: () => import('./tensorflow/index.js') },
  {
    name: 'webgpu',
    help: 'WebGPU through Dawn: Vulkan, Metal or D3D12 on the GPU',
    options: { webgpuRunner: WEBGPU_RUNNER },
    benchAll: () => [['--gpu']],
    load: () => import('./webgpu/index.js'),
  },
  // Threads, and one thread for comparison.
  {
    name: 'wasm',
    help: 'CPU, XNNPACK plus our kernels, one thread per core',
    options: { threads: THREADS },
    benchAll: ({ threads = 1 }) => (Number(threads) > 1 ? [['--threads', String(threads)], ['--threads', '1']] : [['--threads', '1']]),
    load: () => import('./wasm/index.js'),
  },
  { name: 'cpu', help: 'plain JavaScript, minutes per batch', benchAll: () => [], load: () => import('./cpu/index.js') },
];

/**
 * `auto`: GPUs first (tfjs-node-gpu where TensorFlow sees a GPU, then WebGPU on a hardware adapter), then the
 * CPU backends, fastest first. A software adapter is never taken: a batch-16 step took 0.52 s on lavapipe here
 * (`alexnet bench --backend webgpu --batch-size 16`, 2026-11-28) where wasm takes under 0.1 s. Nor is the cpu
 * backend (seconds a step): only by name. Where wasm cannot start (a memory limit), auto says why instead of
 * falling back to a run that does not finish (issue #20).
 */
export const AUTO_ORDER: readonly { name: BackendName; gpuOnly: boolean }[] = [
  { name: 'tensorflow', gpuOnly: true },
  { name: 'webgpu', gpuOnly: true },
  { name: 'tensorflow', gpuOnly: false },
  { name: 'wasm', gpuOnly: false },
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

/** Every backend's own options, by name, each with the backends that take it (for the commands' flags). */
export const BACKEND_OPTIONS: Record<string, { field: Field<number> | Field<string>; backends: BackendName[] }> = {};
for (const b of BACKENDS) {
  for (const [name, field] of Object.entries(b.options ?? {})) {
    (BACKEND_OPTIONS[name] ??= { field, backends: [] }).backends.push(b.name);
  }
}

/** Each backend option's default: the settings of a run that asks for nothing. */
export const defaultSettings = (): Settings => Object.fromEntries(Object.entries(BACKEND_OPTIONS).map(([k, o]) => [k, o.field.default!]));

/** What is wrong with saved settings (state.json), naming the option, or null. */
export function settingsProblem(s: unknown): string | null {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return 'settings must be an object';
  for (const [k, v] of Object.entries(s)) {
    const f = BACKEND_OPTIONS[k]?.field;
    if (!f) return `settings.${k} is not an option of any backend`;
    if (!f.kind.valid(v)) return `settings.${k} must be ${f.kind.what}, got ${JSON.stringify(v)}`;
  }
  return null;
}

/**
 * A backend's own option given for another (`--webgpu-runner ops --backend wasm` did nothing, silently: issue #24):
 * an error where the backend was named, a note (returned) where `auto` chose it, since the option then still fits
 * the machines where auto chooses its backend.
 */
export function optionsProblem(choice: 'auto' | BackendName, name: BackendName, explicit: Settings): string | null {
  for (const key of Object.keys(explicit)) {
    const o = BACKEND_OPTIONS[key];
    if (!o || o.backends.includes(name)) continue;
    const owner = o.backends.join(' and ');
    if (choice !== 'auto') throw new AlexnetError('USAGE', `${o.field.flag} is an option of the ${owner} backend, not of ${name}`, `drop ${o.field.flag}, or pass --backend ${o.backends[0]}`);
    return `${o.field.flag} is an option of the ${owner} backend; auto chose ${name}, where it does nothing`;
  }
  return null;
}
