// Finding a WebGPU adapter through Dawn's `webgpu` package (dawn.node): Vulkan on Linux, Metal on macOS, D3D12
// on Windows. Facts established on an NVIDIA H200 and on this CPU-only machine (issue #11):
// - On Linux dawn.node dlopens libvulkan.so.1; without it there is no adapter, and Dawn prints
//   "Warning: Couldn't load Vulkan" on stderr. So `auto` looks for the loader and a GPU device node first and
//   does not wake Dawn where neither exists: the commands' stderr stays clean on machines without a GPU.
// - A software adapter (Mesa's lavapipe, SwiftShader) is reported with isFallbackAdapter or by its name; it is
//   correct but ~20x slower than wasm here, so only `--backend webgpu` takes it.

import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { findLibraries, ldconfig } from '../libraries.js';
import * as path from 'node:path';

/** The parts of the WebGPU API this tool touches (the full types are in @webgpu/types). */
export interface GpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
}
export interface GpuAdapter {
  info: GpuAdapterInfo;
  limits: Record<string, number>;
}
export interface Gpu {
  requestAdapter(opts?: { powerPreference?: 'high-performance' | 'low-power'; forceFallbackAdapter?: boolean }): Promise<GpuAdapter | null>;
}

export const PACKAGE = 'webgpu';

/** The native API Dawn uses on this platform by default. */
export const NATIVE_API = process.platform === 'darwin' ? 'Metal' : process.platform === 'win32' ? 'D3D12' : 'Vulkan';

export interface Adapter {
  name: string; // what a person recognises: `NVIDIA H200`, `llvmpipe (Mesa 25.0.7, LLVM 15.0.6)`
  /** Dawn's null adapter (ALEXNET_DAWN_FLAGS=backend=null): it accepts every call and runs nothing. */
  runsNothing: boolean;
  vendor: string;
  architecture: string;
  device: string;
  description: string; // the driver's own words, with its version where it gives one
  software: boolean;
}

/** Software rasterisers that present themselves as Vulkan devices. */
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

export function describeAdapter(info: GpuAdapterInfo): Adapter {
  const { vendor = '', architecture = '', device = '', description = '' } = info;
  const runsNothing = device === 'null-backend';
  const software = runsNothing || info.isFallbackAdapter === true || SOFTWARE.test(`${vendor} ${architecture} ${device} ${description}`);
  // Hardware drivers name the GPU in `device` and put their version in `description`; lavapipe is the reverse.
  const name = runsNothing ? "Dawn's null adapter, which runs nothing" : (software ? description || device : device || description) || vendor || 'unknown adapter';
  return { name, runsNothing, vendor, architecture, device, description, software };
}

/**
 * Flags for Dawn's create() from ALEXNET_DAWN_FLAGS (comma-separated, as the `webgpu` package takes them):
 * `backend=null` gives Dawn's null adapter, on which a step's time is its host cost alone (issue #18);
 * `backend=vulkan`, `adapter=NAME`, `enable-dawn-features=...` are the package's others.
 */
export const dawnFlags = (env: NodeJS.ProcessEnv = process.env): string[] => (env.ALEXNET_DAWN_FLAGS ?? '').split(',').map((f) => f.trim()).filter(Boolean);

/** `webgpu`'s version, or null when the package is not installed. */
export function packageVersion(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const file = require.resolve('webgpu/package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

/** Where the dynamic loader would find libvulkan.so.1 (Linux), or null. Elsewhere the OS provides the API. */
export function vulkanLoader(ldconfigOutput: string | null, ldLibraryPath: string | undefined): string | null {
  return findLibraries(['libvulkan.so.1'], ldconfigOutput, ldLibraryPath)['libvulkan.so.1']!;
}

/** GPU device nodes a hardware Vulkan driver would open: DRM render nodes, NVIDIA's, WSL's. */
export function gpuDeviceNodes(): string[] {
  const found: string[] = [];
  try {
    found.push(...readdirSync('/dev/dri').filter((f) => f.startsWith('renderD')).map((f) => `/dev/dri/${f}`));
  } catch {
    // no DRM devices
  }
  for (const f of ['/dev/nvidia0', '/dev/nvidiactl', '/dev/dxg']) if (existsSync(f)) found.push(f);
  return found;
}

/**
 * The Vulkan drivers chosen by hand (VK_ICD_FILENAMES or VK_DRIVER_FILES: ICD manifests, colon-separated), each
 * with whether it is a software one; null when none is chosen by hand.
 */
export function icdsByHand(env: NodeJS.ProcessEnv = process.env): { file: string; software: boolean }[] | null {
  const list = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  if (!list) return null;
  return list.split(path.delimiter).filter(Boolean).map((file) => {
    let library = '';
    try {
      library = String((JSON.parse(readFileSync(file, 'utf8')) as { ICD?: { library_path?: string } }).ICD?.library_path ?? '');
    } catch {
      // unreadable: the loader will say so; count it as possibly hardware
    }
    return { file, software: /lvp|swiftshader|llvmpipe/i.test(`${path.basename(file)} ${library}`) };
  });
}

export interface Preflight {
  loader: string | null; // libvulkan.so.1's path (Linux); 'system' elsewhere
  deviceNodes: string[] | null; // Linux only
  /** Why Dawn cannot find a hardware adapter here, without asking it; null when it might. */
  noHardware: string | null;
  /** Why Dawn cannot find any adapter here; null when it might. */
  noAdapter: string | null;
}

/** What can be known without waking Dawn (which prints to stderr when it finds nothing). */
export function preflight(): Preflight {
  if (process.platform !== 'linux') return { loader: 'system', deviceNodes: null, noHardware: null, noAdapter: null };
  const loader = vulkanLoader(ldconfig(), process.env.LD_LIBRARY_PATH);
  const deviceNodes = gpuDeviceNodes();
  const noAdapter = loader === null ? 'no Vulkan loader (libvulkan.so.1)' : null;
  // Drivers chosen by hand decide: software ones only (the tests' lavapipe) cannot be a GPU, and any other may
  // be one without the usual device nodes.
  const byHand = icdsByHand();
  const noHardware =
    noAdapter ??
    (byHand !== null
      ? byHand.every((d) => d.software) ? 'only software Vulkan drivers are chosen (VK_ICD_FILENAMES / VK_DRIVER_FILES)' : null
      : deviceNodes.length === 0 ? 'no GPU device (/dev/dri/renderD*, /dev/nvidia0)' : null);
  return { loader, deviceNodes, noHardware, noAdapter };
}

let instance: Promise<{ gpu: Gpu; globals: Record<string, unknown> }> | null = null;

/** Dawn's GPU object, created once per process (importing the package applies its destroy() fix-up). */
export function openGpu(): Promise<{ gpu: Gpu; globals: Record<string, unknown> }> {
  instance ??= import(PACKAGE).then((m: { create(flags: string[]): Gpu; globals: Record<string, unknown> }) => ({ gpu: m.create(dawnFlags()), globals: m.globals }));
  return instance;
}

/** Forgets the GPU object, so that Dawn lets the process exit (a live reference keeps Node.js running). */
export function forgetGpu(): void {
  instance = null;
}

/** Every adapter Dawn offers: the fast one, the low-power one and the fallback, each once. */
export async function listAdapters(gpu: Gpu): Promise<Adapter[]> {
  const seen = new Map<string, Adapter>();
  for (const opts of [{ powerPreference: 'high-performance' as const }, { powerPreference: 'low-power' as const }, { forceFallbackAdapter: true }]) {
    const a = await gpu.requestAdapter(opts).catch(() => null);
    if (a) {
      const d = describeAdapter(a.info);
      seen.set(`${d.vendor}|${d.device}|${d.description}`, d);
    }
  }
  return [...seen.values()];
}

/**
 * Runs `fn` with the process's fd 2 on /dev/null, for native code that prints where no flag reaches: Dawn writes
 * `Warning: maxDynamic...BuffersPerPipelineLayout artificially reduced ...` with C stdio while it enumerates a
 * software adapter's limits (lavapipe reports 1,000,000), and `-q` promises nothing on stderr but errors (issue
 * #20). Node has no dup2, but open() takes the lowest free descriptor: keep a handle on the real stderr through
 * /proc/self/fd/2, close 2, open /dev/null (it becomes 2), and afterwards reopen the kept handle the same way.
 * Linux only, where fd 2 is a terminal, a pipe or a file of its own (Node writes to those synchronously there,
 * so nothing is queued on fd 2 meanwhile). Not where it cannot be reopened (a socket: Node's child_process
 * pipes) nor where it shares an offset with stdout (`>log 2>&1`, which a reopened descriptor would not share).
 */
export async function withStderrSilenced<T>(fn: () => Promise<T>): Promise<T> {
  let kept: number | null = null;
  try {
    const err = fstatSync(2);
    const out = fstatSync(1);
    const own = err.isFIFO() || err.isCharacterDevice() || (err.isFile() && (err.dev !== out.dev || err.ino !== out.ino));
    // Descriptor 0 must be open too, or the next open() would take it instead of 2.
    if (process.platform === 'linux' && own && fstatSync(0)) kept = openSync('/proc/self/fd/2', 'a');
  } catch {
    kept = null;
  }
  if (kept === null) return fn();
  const swap = (to: string) => {
    closeSync(2);
    const fd = openSync(to, 'a');
    if (fd !== 2) throw new Error(`stderr came back as fd ${fd}`);
  };
  try {
    swap('/dev/null');
  } catch {
    swap(`/proc/self/fd/${kept}`);
    closeSync(kept);
    return fn();
  }
  try {
    return await fn();
  } finally {
    swap(`/proc/self/fd/${kept}`);
    closeSync(kept);
  }
}
