// The one module that imports a TensorFlow.js flavour (STYLE.md #7). It picks the backend once per process,
// registers our wasm convolution-gradient kernels, and says in one line which backend runs and why.
// Everything else imports '@tensorflow/tfjs' and gets the backend chosen here.

import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { AlexnetError } from './errors.js';
import { registerWasmKernels } from './kernels/wasm-kernels.js';

import type { BackendChoice } from './backend-choice.js';

export { BACKEND_CHOICES, parseBackendChoice, type BackendChoice } from './backend-choice.js';

export const NATIVE_GPU = '@tensorflow/tfjs-node-gpu';
export const NATIVE_CPU = '@tensorflow/tfjs-node';
export type NativeFlavour = typeof NATIVE_GPU | typeof NATIVE_CPU;

export const INSTALL_HINT =
  `install the native backend: \`npm install ${NATIVE_GPU}@4.22.0\` (Linux, CUDA 11.2 + cuDNN 8.1) or ` +
  `\`npm install ${NATIVE_CPU}@4.22.0\` (CPU); it downloads libtensorflow at install time (see README "GPU")`;

export interface BackendInfo {
  name: 'tensorflow' | 'wasm' | 'cpu'; // tf.getBackend()
  flavour: NativeFlavour | '@tensorflow/tfjs-backend-wasm' | '@tensorflow/tfjs-backend-cpu';
  gpu: boolean; // TensorFlow placed work on a GPU
  /** The stderr line, e.g. `backend: wasm (CPU; native TensorFlow is not installed, see README "GPU")`. */
  line: string;
}

export interface FlavourProbe {
  flavour: NativeFlavour;
  installed: boolean;
  loaded: boolean;
  error?: string; // the load error's text when it did not load
}

/** Loads a native flavour by name (a variable, so neither is needed to compile). */
async function loadNative(flavour: NativeFlavour): Promise<FlavourProbe> {
  // TensorFlow grabs all GPU memory by default (tensorflow/tfjs#671): share the GPU unless told otherwise.
  process.env.TF_FORCE_GPU_ALLOW_GROWTH ??= 'true';
  // libtensorflow logs every device it opens on stderr; keep warnings and errors only.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  const name: string = flavour;
  try {
    await import(name);
    return { flavour, installed: true, loaded: true };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const notInstalled = err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(flavour);
    return { flavour, installed: !notInstalled, loaded: false, error: String(err.message ?? e) };
  }
}

/** Which native flavours are installed and load, without choosing a backend. For `doctor`. */
export async function probeNative(): Promise<FlavourProbe[]> {
  return [await loadNative(NATIVE_GPU), await loadNative(NATIVE_CPU)];
}

/** The first line of an error that says the most (for one-line messages). */
export function keyLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /cannot open shared object|not found|Cannot find|error/i.test(l)) ?? lines[0] ?? message;
}

function gpuName(): string | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n')[0]?.trim() || null;
  } catch {
    return null;
  }
}

function nativeUsesGpu(): boolean {
  const b = tf.backend() as unknown as { isUsingGpuDevice?: boolean };
  return b.isUsingGpuDevice === true;
}

async function useNative(flavour: NativeFlavour): Promise<BackendInfo> {
  if (!(await tf.setBackend('tensorflow'))) {
    throw new AlexnetError('BACKEND', `${flavour} loaded but its 'tensorflow' backend did not start`, 'run `alexnet doctor`');
  }
  const gpu = flavour === NATIVE_GPU && nativeUsesGpu();
  const device = gpu ? `CUDA, GPU 0: ${gpuName() ?? 'unknown name'}` : flavour === NATIVE_GPU ? 'CPU; TensorFlow sees no usable GPU, see `alexnet doctor`' : 'CPU';
  return { name: 'tensorflow', flavour, gpu, line: `backend: tensorflow (${device}; ${flavour})` };
}

async function useWasm(reason: string): Promise<BackendInfo> {
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new AlexnetError('BACKEND', 'the wasm backend did not start', 'try --backend cpu');
  registerWasmKernels();
  return { name: 'wasm', flavour: '@tensorflow/tfjs-backend-wasm', gpu: false, line: `backend: wasm (CPU; ${reason})` };
}

async function useCpu(reason: string): Promise<BackendInfo> {
  await tf.setBackend('cpu');
  return { name: 'cpu', flavour: '@tensorflow/tfjs-backend-cpu', gpu: false, line: `backend: cpu (pure JavaScript, very slow; ${reason})` };
}

let chosen: BackendInfo | null = null;

/**
 * Chooses and starts the backend. `gpu` insists on tfjs-node-gpu with a GPU TensorFlow can use.
 * Call once per process; a second call returns the first answer.
 */
export async function initBackend(choice: BackendChoice, opts: { gpu?: boolean } = {}): Promise<BackendInfo> {
  if (chosen) return chosen;
  // PROD skips tfjs's debug checks and its console nag about the node backend.
  tf.env().set('PROD', true);
  chosen = await pick(choice, opts.gpu ?? false);
  return chosen;
}

async function pick(choice: BackendChoice, gpu: boolean): Promise<BackendInfo> {
  if (gpu) {
    if (choice !== 'auto' && choice !== 'tensorflow') {
      throw new AlexnetError('USAGE', `--gpu contradicts --backend ${choice}`, 'drop one of them');
    }
    const probe = await loadNative(NATIVE_GPU);
    if (!probe.loaded) {
      throw new AlexnetError('NO_GPU', `--gpu: ${NATIVE_GPU} ${probe.installed ? `does not load: ${keyLine(probe.error ?? '')}` : 'is not installed'}`, `${INSTALL_HINT}; \`alexnet doctor\` says what is missing`);
    }
    const info = await useNative(NATIVE_GPU);
    if (!info.gpu) throw new AlexnetError('NO_GPU', `--gpu: ${NATIVE_GPU} loaded but TensorFlow sees no usable GPU`, 'check the driver, CUDA 11.2 and cuDNN 8.1 with `alexnet doctor`');
    return info;
  }
  switch (choice) {
    case 'tensorflow': {
      const probes: FlavourProbe[] = [];
      for (const flavour of [NATIVE_GPU, NATIVE_CPU] as const) {
        const probe = await loadNative(flavour);
        if (probe.loaded) return useNative(flavour);
        probes.push(probe);
      }
      const why = probes.map((p) => `${p.flavour} ${p.installed ? `does not load (${keyLine(p.error ?? '')})` : 'is not installed'}`).join('; ');
      throw new AlexnetError('BACKEND', `--backend tensorflow: ${why}`, INSTALL_HINT);
    }
    case 'wasm':
      return useWasm('asked for with --backend wasm');
    case 'cpu':
      return useCpu('asked for with --backend cpu');
    case 'auto': {
      const notes: string[] = [];
      for (const flavour of [NATIVE_GPU, NATIVE_CPU] as const) {
        const probe = await loadNative(flavour);
        if (probe.loaded) return useNative(flavour);
        if (probe.installed) notes.push(`${flavour} does not load: ${keyLine(probe.error ?? '')}`);
      }
      const reason = notes.length > 0 ? `${notes.join('; ')}; see \`alexnet doctor\`` : 'native TensorFlow is not installed, see README "GPU"';
      try {
        return await useWasm(reason);
      } catch (e) {
        return useCpu(`wasm failed: ${(e as Error).message}`);
      }
    }
  }
}

/** For tests: compare backends in one process. */
export async function switchBackendForTests(name: 'wasm' | 'cpu'): Promise<void> {
  if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmKernels();
  }
  tf.env().set('PROD', true);
  await tf.setBackend(name);
}
