// The WebGPU backend: @tensorflow/tfjs-backend-webgpu on Dawn's `webgpu` package, which ships prebuilt
// dawn.node binaries for Linux, macOS and Windows inside the npm package (no download, no CUDA). On an NVIDIA
// H200 one SGD step matched the cpu backend within 1.5e-8 (issue #11).
//
// Facts this module is built around (issue #11):
// - tfjs-backend-webgpu registers itself at import only if `navigator.gpu` exists, so navigator is defined
//   first (with Object.defineProperty: Node >= 21 has a getter-only globalThis.navigator).
// - GPU validation errors do not throw: Dawn prints them (on stdout) and tfjs returns stale numbers. The
//   device's uncaptured errors are recorded and the runner turns them into the tool's error before any number is used.
// - tfjs-backend-webgpu cannot read synchronously in Node (its readSync needs OffscreenCanvas): every read of
//   a result is `await t.data()`.
// - `process.exit` with GPU work queued segfaulted 2 times in 37 on a software adapter: close() waits for the
//   queue, then destroys the device and drops the GPU object so that Node.js can exit.

import type { Split } from '../../data/cifar.js';
import { AlexnetError } from '../../errors.js';
import * as tf from '../../tf.js';
import { DeviceRunner } from '../runner.js';
import type { ActiveBackend, DoctorSection, Fix, NotStarted, Runner, StartRequest, StartResult } from '../types.js';
import { registerWebGpuKernels } from './kernels.js';
import { SgdUpdateProgram } from './sgd_update_webgpu.js';
import { CrossEntropyGradProgram, MeanRowsProgram } from './cross_entropy_webgpu.js';
import { GatherNormaliseProgram, packPixels } from './gather_normalise_webgpu.js';
import { INPUT_SHAPE } from '../../model.js';
import { NORMALISE, type Objective } from '../../step.js';
import { NATIVE_API, describeAdapter, forgetGpu, listAdapters, openGpu, packageVersion, preflight, type Adapter } from './adapter.js';

export const TFJS_PACKAGE = '@tensorflow/tfjs-backend-webgpu';

/** The parts of tfjs-backend-webgpu's backend object used here. */
interface GpuDevice {
  queue: { onSubmittedWorkDone(): Promise<void> };
  limits: Record<string, number>;
  lost: Promise<{ message: string }>;
  addEventListener(type: 'uncapturederror', listener: (ev: { error: { message: string }; preventDefault(): void }) => void): void;
  destroy(): void;
}

const notInstalledHint = 'reinstall with `npm ci` (the `webgpu` package is a dependency)';

/** Per-image bytes of the network's largest tensor, conv1's output: 28 x 28 x 64 floats. */
const LARGEST_TENSOR_PER_IMAGE = 28 * 28 * 64 * 4;

/** How to get a hardware adapter, per platform: the fix `doctor` and the errors give. */
export function adapterFix(problem: 'no-loader' | 'no-adapter' | 'software', env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (platform === 'darwin') return 'WebGPU runs on Metal, which every Mac since 2012 has; update macOS, or use --backend wasm';
  if (platform === 'win32') return 'WebGPU runs on D3D12: install or update the GPU driver from its vendor, or use --backend wasm';
  if (problem === 'no-loader') return 'install the Vulkan loader (`apt-get install libvulkan1`, `dnf install vulkan-loader`) and your GPU\'s Vulkan driver';
  const caps = env.NVIDIA_DRIVER_CAPABILITIES;
  if (caps !== undefined && !/\b(all|graphics)\b/.test(caps)) {
    return `this container's NVIDIA_DRIVER_CAPABILITIES (${caps}) lacks graphics, so the NVIDIA Vulkan driver is not mounted: run it with NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics (or all)`;
  }
  return 'install the GPU\'s Vulkan driver: NVIDIA\'s driver package includes it (its ICD is nvidia_icd.json; containers need NVIDIA_DRIVER_CAPABILITIES with graphics), AMD and Intel use Mesa (`apt-get install mesa-vulkan-drivers`)';
}

interface Opened {
  adapter: Adapter;
  version: string;
  device: GpuDevice;
}

let opened: Promise<Opened | ({ ok: false } & NotStarted)> | null = null;
/** The first uncaptured GPU error or device loss, until it is reported. */
let gpuError: string | null = null;

async function open(allowSoftware: boolean): Promise<Opened | ({ ok: false } & NotStarted)> {
  const version = packageVersion();
  if (version === null) return { ok: false, installed: false, reason: 'WebGPU: the `webgpu` package is not installed', hint: notInstalledHint };
  const pf = preflight();
  if (pf.noAdapter) return { ok: false, installed: true, reason: `WebGPU: ${pf.noAdapter}`, hint: adapterFix('no-loader') };
  if (!allowSoftware && pf.noHardware) return { ok: false, installed: true, reason: `WebGPU: ${pf.noHardware}`, hint: adapterFix('no-adapter') };
  let gpu;
  let globals;
  try {
    ({ gpu, globals } = await openGpu());
  } catch (e) {
    return { ok: false, installed: true, reason: `WebGPU: dawn.node does not load (${(e as Error).message.split('\n')[0]})`, hint: notInstalledHint };
  }
  const found = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!found) {
    forgetGpu();
    return { ok: false, installed: true, reason: `WebGPU: no ${NATIVE_API} adapter`, hint: adapterFix('no-adapter') };
  }
  const adapter = describeAdapter(found.info);
  if (adapter.software && !allowSoftware) {
    forgetGpu();
    return { ok: false, installed: true, reason: `WebGPU has only a software adapter (${adapter.name})`, hint: `${adapterFix('software')}; --backend webgpu uses the software adapter anyway (slow)` };
  }
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: `Node.js ${process.version}` }, configurable: true, writable: true });
  await import('@tensorflow/tfjs-backend-webgpu'); // a literal, so that a bundler (the devpack) includes it
  if (!(await tf.setBackend('webgpu'))) {
    return { ok: false, installed: true, reason: `WebGPU: ${TFJS_PACKAGE} did not start on ${adapter.name}`, hint: 'run `alexnet doctor`' };
  }
  const device = (tf.backend() as unknown as { device: GpuDevice }).device;
  // A listener that calls preventDefault() also stops dawn.node from printing the error on stdout, which
  // carries results (measured: `onuncapturederror` alone leaves the print).
  device.addEventListener('uncapturederror', (ev) => {
    ev.preventDefault();
    gpuError ??= ev.error.message.trim().split('\n')[0] ?? 'unknown error';
  });
  void device.lost.then((info) => {
    gpuError ??= `the device was lost (${info.message || 'no reason given'})`;
  });
  registerWebGpuKernels();
  return { adapter, version, device };
}

/** Throws the first GPU error recorded since the last check, as the tool's error. */
export function throwIfGpuError(): void {
  if (gpuError === null) return;
  const message = gpuError;
  gpuError = null;
  throw new AlexnetError('BACKEND', `WebGPU: ${message}`, 'this is a bug or a driver problem: please report it with `alexnet doctor`\'s output; --backend wasm trains on the CPU');
}

type ProgramRunner = { runWebGPUProgram(p: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: { type: string; data: number[] }[]): tf.TensorInfo };

/** Runs a program of ours on the active webgpu backend; the result as a tensor of `shape`. */
function run<T extends tf.Tensor>(program: { outputShape: number[] }, inputs: tf.TensorInfo[], shape = program.outputShape): T {
  const info = (tf.backend() as unknown as ProgramRunner).runWebGPUProgram(program, inputs, 'float32');
  return tf.engine().makeTensorFromTensorInfo({ ...info, shape }) as T;
}

/** The seed's loss and accuracy in three programs (./cross_entropy_webgpu.ts), the loss with its own gradient. */
export const fusedObjective: Objective = (logits, labels) => {
  const [n, classes] = logits.shape;
  const acc = run<tf.Scalar>(new MeanRowsProgram(classes, 'accuracy'), [logits, labels], []);
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [l, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([l]);
    return {
      value: run<tf.Scalar>(new MeanRowsProgram(classes, 'loss'), [l, labels], []),
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) => run<tf.Tensor2D>(new CrossEntropyGradProgram(n, classes), [saved[0]!, labels, dy]),
    };
  });
  return { loss: loss(logits) as tf.Scalar, acc };
};

/**
 * The device runner with the splits kept on the GPU (batches gathered there), a one-dispatch SGD update, and a
 * check for GPU errors after every step and evaluation.
 */
class WebGpuRunner extends DeviceRunner implements Runner {
  private readonly resident = new Map<Split, { pixels: tf.Tensor1D; labels: tf.Tensor1D } | null>();
  private table: tf.Tensor1D | null = null;

  constructor(private readonly maxBufferBytes: number) {
    super(undefined, fusedObjective);
  }

  /** The split on the GPU, uploaded on first use; null where it does not fit one buffer (then the host path). */
  private residentOf(split: Split): { pixels: tf.Tensor1D; labels: tf.Tensor1D } | null {
    if (!this.resident.has(split)) {
      const fits = split.images.byteLength <= this.maxBufferBytes;
      this.resident.set(split, fits ? { pixels: tf.tensor1d(packPixels(split.images), 'int32'), labels: tf.tensor1d(Int32Array.from(split.labels), 'int32') } : null);
    }
    return this.resident.get(split)!;
  }

  protected override batch(split: Split, indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor1D } {
    const on = this.residentOf(split);
    if (!on) return super.batch(split, indices);
    this.table ??= tf.tensor1d(NORMALISE);
    const idx = tf.tensor1d(Int32Array.from(indices), 'int32');
    const shape = [indices.length, ...INPUT_SHAPE];
    const info = (tf.backend() as unknown as ProgramRunner).runWebGPUProgram(new GatherNormaliseProgram(shape), [on.pixels, idx, this.table], 'float32');
    const x = tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D;
    const y = tf.gather(on.labels, idx) as tf.Tensor1D;
    idx.dispose();
    return { x, y };
  }

  override async dispose(): Promise<void> {
    for (const r of this.resident.values()) if (r) tf.dispose([r.pixels, r.labels]);
    this.resident.clear();
    this.table?.dispose();
    this.table = null;
  }

  protected override update(model: tf.LayersModel, optimizer: tf.Optimizer, grads: tf.NamedTensorMap): void {
    if (!(optimizer instanceof tf.SGDOptimizer)) return super.update(model, optimizer, grads);
    const lr = (optimizer as unknown as { learningRate: number }).learningRate;
    const backend = tf.backend() as unknown as ProgramRunner;
    for (const w of model.trainableWeights) {
      const v = w.read() as tf.Variable;
      const g = grads[v.name];
      if (!g) continue;
      const flat = (t: tf.Tensor): tf.TensorInfo => ({ dataId: t.dataId, shape: [t.size], dtype: t.dtype });
      const out = backend.runWebGPUProgram(new SgdUpdateProgram(v.size), [flat(v), flat(g)], 'float32', [{ type: 'float32', data: [lr] }]);
      const next = tf.engine().makeTensorFromTensorInfo({ ...out, shape: v.shape });
      v.assign(next);
      next.dispose();
    }
  }

  override async step(model: tf.LayersModel, optimizer: tf.Optimizer, split: Split, indices: ArrayLike<number>) {
    throwIfGpuError();
    return super.step(model, optimizer, split, indices);
  }

  override async evaluate(model: tf.LayersModel, split: Split, batchSize: number) {
    const r = await super.evaluate(model, split, batchSize);
    throwIfGpuError();
    return r;
  }
}

export async function start(req: StartRequest): Promise<StartResult> {
  const allowSoftware = !req.auto && !req.gpuOnly;
  opened ??= open(allowSoftware);
  const o = await opened;
  if ('ok' in o) {
    opened = null; // a later, less demanding request may still start it
    return o;
  }
  if (o.adapter.software && !allowSoftware) {
    return { ok: false, installed: true, reason: `WebGPU has only a software adapter (${o.adapter.name})`, hint: adapterFix('software') };
  }
  if (tf.getBackend() !== 'webgpu') await tf.setBackend('webgpu'); // tests switch back and forth
  const { adapter, version, device } = o;
  const driver = adapter.description && adapter.description !== adapter.name ? `, ${adapter.description}` : '';
  const backend: ActiveBackend = {
    name: 'webgpu',
    package: `webgpu ${version} + ${TFJS_PACKAGE}`,
    gpu: !adapter.software,
    detail: `webgpu (${adapter.name}, ${NATIVE_API}${driver}${adapter.software ? ', a software adapter: slow' : ''}; webgpu ${version})`,
    maxBatch: Math.min(65536, Math.floor(Math.min(device.limits.maxStorageBufferBindingSize ?? 2 ** 27, device.limits.maxBufferSize ?? 2 ** 28) / LARGEST_TENSOR_PER_IMAGE)),
    threadsFor: () => undefined,
    runner: async () => new WebGpuRunner(Math.min(device.limits.maxStorageBufferBindingSize ?? 2 ** 27, device.limits.maxBufferSize ?? 2 ** 28)),
    close: async () => {
      try {
        await device.queue.onSubmittedWorkDone();
      } finally {
        device.destroy();
        delete (globalThis as { navigator?: unknown }).navigator;
        forgetGpu();
        opened = null;
      }
    },
  };
  return { ok: true, backend };
}

export async function doctor(): Promise<DoctorSection> {
  const version = packageVersion();
  const pf = preflight();
  const fixes: Fix[] = [];
  const lines: string[] = [];
  const json: Record<string, unknown> = { package: version, api: NATIVE_API, loader: pf.loader, deviceNodes: pf.deviceNodes, adapters: [] };
  if (version === null) {
    fixes.push({ problem: 'the `webgpu` package is not installed', fix: notInstalledHint });
    lines.push('--   webgpu: not installed');
    return { title: 'WebGPU (Dawn)', lines, json, fixes };
  }
  lines.push(`ok   webgpu ${version} (Dawn; ${NATIVE_API})`);
  if (process.platform === 'linux') {
    lines.push(`${pf.loader ? 'ok  ' : '--  '} Vulkan loader: ${pf.loader ?? 'libvulkan.so.1 not found (ldconfig -p, LD_LIBRARY_PATH)'}`);
    lines.push(`     GPU device nodes: ${pf.deviceNodes!.length > 0 ? pf.deviceNodes!.join(', ') : 'none'}`);
  }
  if (pf.noAdapter) {
    fixes.push({ problem: `WebGPU: ${pf.noAdapter}`, fix: adapterFix('no-loader') });
    return { title: 'WebGPU (Dawn)', lines, json, fixes };
  }
  let adapters: Adapter[] = [];
  try {
    adapters = await listAdapters((await openGpu()).gpu);
  } catch (e) {
    lines.push(`FAIL dawn.node does not load: ${(e as Error).message.split('\n')[0]}`);
    fixes.push({ problem: 'dawn.node does not load', fix: notInstalledHint });
  } finally {
    forgetGpu();
  }
  json.adapters = adapters;
  for (const a of adapters) {
    lines.push(`${a.software ? '--  ' : 'ok  '} adapter: ${a.name} (vendor ${a.vendor || '?'}, device ${a.device || '?'}${a.description && a.description !== a.name ? `, driver ${a.description}` : ''})${a.software ? ': software, never chosen by auto' : ''}`);
  }
  if (adapters.length === 0) {
    lines.push(`--   adapters: none`);
    fixes.push({ problem: `WebGPU: no ${NATIVE_API} adapter`, fix: adapterFix('no-adapter') });
  } else if (adapters.every((a) => a.software)) {
    fixes.push({ problem: 'WebGPU: only a software adapter (no GPU driver for Vulkan)', fix: adapterFix('software') });
  }
  return { title: 'WebGPU (Dawn)', lines, json, fixes };
}
