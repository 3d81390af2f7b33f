// The WebGPU backend's start-up: @tensorflow/tfjs-backend-webgpu on Dawn's `webgpu` package, which ships prebuilt
// dawn.node binaries for Linux, macOS and Windows inside the npm package (no download, no CUDA). On an NVIDIA
// H200 one SGD step matched the cpu backend within 1.5e-8 (issue #11). Its part of `alexnet doctor` is ./doctor.ts.
//
// The folder, bottom up (imports only go down):
// - ./wgsl/: what both ways of running a step share: the batch's gather and normalisation, the SGD update, the
//   loss and its gradient, the split-K filter gradient, the flat dispatch;
// - ./ops/: the op-by-op runner (--webgpu-runner ops): TensorFlow.js ops, with our kernels registered over tfjs's
//   (./ops/kernels.ts) and programs of ours in tfjs's program shape;
// - ./compiled/: the compiled step: ./compiled/plan.ts reads the layers model, ./compiled/program.ts is a program's
//   shape, ./compiled/kernels/ holds one program a file, ./compiled/graph.ts turns a plan into dispatches, and
//   ./compiled/runner.ts only executes them (buffers, the results ring, submits). Adding a layer kind to the
//   compiler touches plan.ts, graph.ts, one kernel file and a test;
// - this module: start-up, and the choice of runner (webgpuRunner below).
//
// Facts this module is built around (issue #11):
// - tfjs-backend-webgpu registers itself at import only if `navigator.gpu` exists, so navigator is defined
//   first (with Object.defineProperty: Node >= 21 has a getter-only globalThis.navigator).
// - GPU validation errors do not throw: Dawn prints them (on stdout) and tfjs returns stale numbers. The
//   device's uncaptured errors are recorded (./errors.ts) and the runner turns them into the tool's error.
// - tfjs-backend-webgpu cannot read synchronously in Node (its readSync needs OffscreenCanvas): every read of
//   a result is `await t.data()`.
// - `process.exit` with GPU work queued segfaulted 2 times in 37 on a software adapter: close() waits for the
//   queue, then destroys the device and drops the GPU object so that Node.js can exit.

import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import tf from '../../tf.cjs';
import tfl from '../../tfl.cjs';
import type { ActiveBackend, NotStarted, Runner, RunnerOptions, StartRequest, StartResult } from '../types.js';
import { NATIVE_API, dawnFlags, describeAdapter, forgetGpu, openGpu, packageVersion, preflight, withStderrSilenced, type Adapter } from './adapter.js';
import { adapterFix, notInstalledHint } from './doctor.js';
import { recordGpuError } from './errors.js';
import { compilePlan } from './compiled/plan.js';
import { CompiledRunner } from './compiled/runner.js';
import { registerWebGpuKernels } from './ops/kernels.js';
import { WebGpuOpsRunner } from './ops/runner.js';

export { doctor } from './doctor.js';

export const TFJS_PACKAGE = '@tensorflow/tfjs-backend-webgpu';

interface Opened {
  adapter: Adapter;
  version: string;
  device: GPUDevice;
}

let opened: Promise<Opened | ({ ok: false } & NotStarted)> | null = null;

async function open(allowSoftware: boolean, quiet: boolean): Promise<Opened | ({ ok: false } & NotStarted)> {
  const version = packageVersion();
  if (version === null) return { ok: false, installed: false, reason: 'WebGPU: the `webgpu` package is not installed', hint: notInstalledHint };
  // The Vulkan preflight does not apply where Dawn is told which backend to use (backend=null needs nothing).
  const pf = dawnFlags().some((f) => f.startsWith('backend=')) ? { noAdapter: null, noHardware: null } : preflight();
  if (pf.noAdapter) return { ok: false, installed: true, reason: `WebGPU: ${pf.noAdapter}`, hint: adapterFix('no-loader') };
  if (!allowSoftware && pf.noHardware) return { ok: false, installed: true, reason: `WebGPU: ${pf.noHardware}`, hint: adapterFix('no-adapter') };
  let gpu;
  let globals;
  try {
    ({ gpu, globals } = await openGpu());
  } catch (e) {
    return { ok: false, installed: true, reason: `WebGPU: dawn.node does not load (${(e as Error).message.split('\n')[0]})`, hint: notInstalledHint };
  }
  const request = () => gpu.requestAdapter({ powerPreference: 'high-performance' });
  const found = await (quiet ? withStderrSilenced(request) : request());
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
  await import('./package.cjs'); // a literal, so that a bundler (esbuild) includes it
  if (!(await tf.setBackend('webgpu'))) {
    return { ok: false, installed: true, reason: `WebGPU: ${TFJS_PACKAGE} did not start on ${adapter.name}`, hint: 'run `alexnet doctor`' };
  }
  const device = (tf.backend() as WebGPUBackend).device;
  // A listener that calls preventDefault() also stops dawn.node from printing the error on stdout, which
  // carries results (measured: `onuncapturederror` alone leaves the print).
  device.addEventListener('uncapturederror', (ev) => {
    ev.preventDefault();
    recordGpuError((ev as GPUUncapturedErrorEvent).error.message.trim().split('\n')[0] ?? 'unknown error');
  });
  void device.lost.then((info) => recordGpuError(`the device was lost (${info.message || 'no reason given'})`));
  registerWebGpuKernels();
  return { adapter, version, device };
}

/** The largest buffer the device binds to a program: every tensor of a batch must fit one. */
const bindable = (device: GPUDevice) => Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);

export async function start(req: StartRequest): Promise<StartResult> {
  const allowSoftware = !req.auto && !req.gpuOnly;
  opened ??= open(allowSoftware, req.quiet ?? false);
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
    computes: !adapter.runsNothing,
    where: adapter.name,
    detail: adapter.runsNothing ? `webgpu (${adapter.name}; webgpu ${version})` : `webgpu (${adapter.name}, ${NATIVE_API}${driver}${adapter.software ? ', a software adapter: slow' : ''}; webgpu ${version})`,
    // Each of a batch's tensors lives in one buffer: the largest one per image (conv1's output, 200,704 bytes
    // for this network) decides how many images fit.
    maxBatch: (model) => Math.min(65536, Math.floor(bindable(device) / (4 * largestPerImage(model)))),
    runner: (opts) => webgpuRunner(opts, device, bindable(device)),
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

/** The most values any layer of `model` holds per image (its input included). */
function largestPerImage(model: tfl.LayersModel): number {
  const perImage = (shape: (number | null)[]) => shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  return Math.max(...model.inputs.map((t) => perImage(t.shape)), ...model.layers.map((l) => perImage(l.outputShape as (number | null)[])));
}

/**
 * The runner for `opts.model`: the compiled step (./compiled/) unless --webgpu-runner ops asks otherwise or the model
 * has a layer the compiler does not know (the op-by-op runner's note then says which). `maxBufferBytes`: the largest
 * buffer a program can bind.
 */
async function webgpuRunner(opts: RunnerOptions, device: GPUDevice, maxBufferBytes: number): Promise<Runner> {
  if ((opts.settings.webgpuRunner ?? 'compiled') === 'compiled') {
    const plan = compilePlan(opts.model);
    if (!('reason' in plan)) return CompiledRunner.create(device, plan, opts, maxBufferBytes);
    return new WebGpuOpsRunner(opts, maxBufferBytes, `webgpu: op by op, not compiled: ${plan.reason}`);
  }
  return new WebGpuOpsRunner(opts, maxBufferBytes, null);
}
