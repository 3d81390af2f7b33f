// The plain-JavaScript backend: the reference the other backends' kernels are tested against, and the last
// resort of `auto`. Seconds per batch-64 step even with our filter-gradient kernel (./kernels/), so
// `bench --backend all` leaves it out.

// Imported by name: the package marks its Node build free of side effects, so a bundler (esbuild)
// would drop a bare `import '@tensorflow/tfjs-backend-cpu'`, and with it the backend's registration.
import { version_cpu } from './package.cjs';
import tf from '../../tf.cjs';
import { OpsRunner } from '../runner.js';
import type { ActiveBackend, DoctorSection, StartRequest, StartResult } from '../types.js';
import { registerCpuKernels } from './kernels/Conv2DBackpropFilter.js';

export const PACKAGE = '@tensorflow/tfjs-backend-cpu';

export async function start(req: StartRequest): Promise<StartResult> {
  if (req.gpuOnly) return { ok: false, installed: true, reason: 'the cpu backend runs on the CPU', hint: 'drop --gpu' };
  if (!(await tf.setBackend('cpu'))) return { ok: false, installed: true, reason: 'the cpu backend did not start', hint: 'run `alexnet doctor`' };
  registerCpuKernels();
  const backend: ActiveBackend = {
    name: 'cpu',
    package: PACKAGE,
    gpu: false,
    computes: true,
    where: 'CPU',
    detail: `cpu (pure JavaScript, very slow; ${req.why ?? 'asked for with --backend cpu'}; tfjs-backend-cpu ${version_cpu})`,
    maxBatch: () => 65536,
    runner: async (opts) => new OpsRunner(opts),
    close: async () => {},
  };
  return { ok: true, backend };
}

export async function doctor(): Promise<DoctorSection> {
  return { title: 'cpu', lines: [], json: {}, fixes: [] };
}

