// The native backend: libtensorflow through @tensorflow/tfjs-node-gpu (CUDA 11.2 + cuDNN 8.1) or
// @tensorflow/tfjs-node (CPU). Both are optional dependencies: their install script downloads libtensorflow,
// and without it `npm ci` still succeeds and the tool runs on another backend.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import tf from '../../tf.cjs';
import { OpsRunner } from '../runner.js';
import type { ActiveBackend, DoctorSection, StartRequest, StartResult } from '../types.js';
import { findLibraries, ldconfig } from '../libraries.js';
import { CUDA_LIBS, NAPI_BUILDS, diagnose, nvidiaDriver } from './doctor.js';

export const NATIVE_GPU = '@tensorflow/tfjs-node-gpu';
export const NATIVE_CPU = '@tensorflow/tfjs-node';
export type NativeFlavour = typeof NATIVE_GPU | typeof NATIVE_CPU;

/** How to get CUDA training: the GPU flavour only (tfjs-node computes on the CPU). */
export const GPU_INSTALL_HINT = `for CUDA: \`npm install ${'@tensorflow/tfjs-node-gpu'}@4.22.0\` (Linux, an NVIDIA driver, CUDA 11.2 and cuDNN 8.1)`;

export const INSTALL_HINT =
  `install the native backend: \`npm install ${NATIVE_GPU}@4.22.0\` (Linux, CUDA 11.2 + cuDNN 8.1) or ` +
  `\`npm install ${NATIVE_CPU}@4.22.0\` (CPU); it downloads libtensorflow at install time (see README "GPU")`;

export interface FlavourProbe {
  flavour: NativeFlavour;
  installed: boolean;
  loaded: boolean;
  error?: string; // the load error's text when it did not load
}

const probes = new Map<NativeFlavour, Promise<FlavourProbe>>();

/** Loads a native flavour by name (a variable, so neither is needed to compile); once per process. */
function loadNative(flavour: NativeFlavour): Promise<FlavourProbe> {
  let p = probes.get(flavour);
  if (!p) {
    p = load(flavour);
    probes.set(flavour, p);
  }
  return p;
}

async function load(flavour: NativeFlavour): Promise<FlavourProbe> {
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

/** Whether a flavour's package is there, without loading it (loading libtensorflow takes a second). */
function isInstalled(flavour: NativeFlavour): boolean {
  try {
    createRequire(import.meta.url).resolve(flavour);
    return true;
  } catch {
    return false;
  }
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

const describe = (p: FlavourProbe) => `${p.flavour} ${p.installed ? `does not load (${keyLine(p.error ?? '')})` : 'is not installed'}`;

export async function start(req: StartRequest): Promise<StartResult> {
  const gpuProbe = await loadNative(NATIVE_GPU);
  // With a GPU only tfjs-node-gpu will do; on the CPU, tfjs-node-gpu (which then runs there) or tfjs-node.
  const usable = gpuProbe.loaded ? gpuProbe : req.gpuOnly ? null : await loadNative(NATIVE_CPU);
  if (!usable?.loaded) {
    const tried = usable ? [gpuProbe, usable] : [gpuProbe];
    // On the GPU-only round the CPU flavour is not loaded, only looked for: it may be there, for the CPU round.
    const none = tried.every((p) => !p.installed) && (usable !== null || !isInstalled(NATIVE_CPU));
    return {
      ok: false,
      installed: !none,
      reason: none && req.auto ? 'native TensorFlow is not installed' : tried.map(describe).join('; '),
      hint: req.gpuOnly ? GPU_INSTALL_HINT : none ? INSTALL_HINT : `\`alexnet doctor\` says what is missing; ${INSTALL_HINT}`,
    };
  }
  if (!(await tf.setBackend('tensorflow'))) {
    return { ok: false, installed: true, reason: `${usable.flavour} loaded but its 'tensorflow' backend did not start`, hint: 'run `alexnet doctor`' };
  }
  const gpu = usable.flavour === NATIVE_GPU && (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
  if (req.gpuOnly && !gpu) {
    return { ok: false, installed: true, reason: `${NATIVE_GPU} loaded but TensorFlow sees no usable GPU`, hint: 'check the driver, CUDA 11.2 and cuDNN 8.1 with `alexnet doctor`' };
  }
  const device = gpu ? `CUDA, GPU 0: ${gpuName() ?? 'unknown name'}` : usable.flavour === NATIVE_GPU ? 'CPU; TensorFlow sees no usable GPU, see `alexnet doctor`' : 'CPU';
  const backend: ActiveBackend = {
    name: 'tensorflow',
    package: usable.flavour,
    gpu,
    computes: true,
    where: gpu ? (gpuName() ?? 'a CUDA GPU') : 'CPU',
    detail: `tensorflow (${device}; ${usable.flavour}${req.auto && req.why ? `; ${req.why}` : ''})`,
    maxBatch: () => 65536,
    runner: async (opts) => new OpsRunner(opts),
    close: async () => {},
  };
  return { ok: true, backend };
}

export async function doctor(): Promise<DoctorSection> {
  const flavours = [await loadNative(NATIVE_GPU), await loadNative(NATIVE_CPU)];
  const fixes: DoctorSection['fixes'] = [];
  const rows = flavours.map((p) => {
    const row: Record<string, unknown> = { name: p.flavour, installed: p.installed, loads: p.loaded };
    if (p.installed && !p.loaded) {
      const d = diagnose(p.error ?? '');
      Object.assign(row, { error: keyLine(p.error ?? ''), problem: d.problem, fix: d.fix });
      fixes.push(d);
    }
    return row;
  });
  const libraries = findLibraries(CUDA_LIBS, ldconfig(), process.env.LD_LIBRARY_PATH);
  const driver = nvidiaDriver();
  if (!flavours[0]!.installed) fixes.push({ problem: `no CUDA backend: ${NATIVE_GPU} is not installed (optional: WebGPU needs no CUDA)`, fix: INSTALL_HINT });
  else if (flavours[0]!.loaded) {
    if (driver === null) fixes.push({ problem: 'no NVIDIA driver (nvidia-smi not found)', fix: 'install the NVIDIA driver; TensorFlow then runs on the GPU' });
    const missing = CUDA_LIBS.filter((l) => libraries[l] === null);
    for (const lib of missing.slice(0, 1)) fixes.push(diagnose(`${lib}: cannot open shared object file`));
  }
  const lines = [
    ...flavours.map((p) => `${p.loaded ? 'ok  ' : '--  '} ${p.flavour}: ${!p.installed ? 'not installed' : p.loaded ? 'installed, loads' : `installed, does not load: ${keyLine(p.error ?? '')}`}`),
    `     NVIDIA driver: ${driver ? `${driver.version} (${driver.gpus.join(', ')})` : 'not found (no nvidia-smi)'}`,
    `     CUDA 11.2 / cuDNN 8.1 libraries (ldconfig -p, LD_LIBRARY_PATH; tfjs-node-gpu 4.22.0 ships N-API ${NAPI_BUILDS[0]}..${NAPI_BUILDS[NAPI_BUILDS.length - 1]} addons):`,
    ...Object.entries(libraries).map(([lib, where]) => `       ${lib.padEnd(20)} ${where ?? 'missing'}`),
  ];
  return {
    title: 'TensorFlow (tfjs-node-gpu, tfjs-node)',
    lines,
    json: { flavours: rows, libraries, ldLibraryPath: process.env.LD_LIBRARY_PATH ?? null, driver },
    fixes,
  };
}
