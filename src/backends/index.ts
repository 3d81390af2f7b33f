// Choosing and starting the backend, once per process, from the table in ./table.ts. Says in one line which
// backend runs and why (the line the commands print on stderr).

import { AlexnetError } from '../errors.js';
import tf from '../tf.cjs';
import { setCloser } from './lifecycle.js';
import { AUTO_ORDER, BACKENDS, backendEntry, type BackendChoice } from './table.js';
import type { ActiveBackend, NotStarted } from './types.js';

export { closeBackend } from './lifecycle.js';
export { BACKENDS, BACKEND_CHOICES, BACKEND_HELP, BACKEND_OPTIONS, defaultSettings, optionsProblem, parseBackendChoice, settingsProblem, type BackendChoice } from './table.js';
export type { ActiveBackend, BackendName, DoctorSection, EvalResult, Fix, Runner, Settings } from './types.js';

let chosen: ActiveBackend | null = null;

/**
 * Chooses and starts the backend: `choice` by name, or `auto` in AUTO_ORDER; `gpu` insists on a GPU (exit 3
 * otherwise). A second call returns the first answer.
 */
export async function initBackend(choice: BackendChoice, opts: { gpu?: boolean; quiet?: boolean } = {}): Promise<ActiveBackend> {
  if (chosen) return chosen;
  // PROD skips tfjs's debug checks and its console nag about the node backend.
  tf.env().set('PROD', true);
  chosen = await pick(choice, opts.gpu ?? false, opts.quiet ?? false);
  setCloser(chosen.close);
  return chosen;
}

async function pick(choice: BackendChoice, gpu: boolean, quiet: boolean): Promise<ActiveBackend> {
  if (choice !== 'auto') {
    const r = await (await backendEntry(choice).load()).start({ gpuOnly: gpu, auto: false, why: `asked for with --backend ${choice}`, quiet });
    if (r.ok) return r.backend;
    throw new AlexnetError(gpu ? 'NO_GPU' : 'BACKEND', `${gpu ? '--gpu' : `--backend ${choice}`}: ${r.reason}`, r.hint);
  }
  const notes: NotStarted[] = [];
  gpuRefusals = [];
  const reasons = () => [...new Set(notes.map((n) => n.reason))].join('; '); // each once
  for (const step of AUTO_ORDER) {
    if (gpu && !step.gpuOnly) continue;
    // A CPU backend says why no GPU backend runs: the reasons the earlier rounds gave.
    const why = notes.length === 0 ? undefined : `no GPU backend: ${reasons()}; see README "GPU"`;
    const r = await (await backendEntry(step.name).load()).start({ gpuOnly: step.gpuOnly, auto: true, why, quiet });
    if (r.ok) return r.backend;
    notes.push(r);
    if (step.gpuOnly) gpuRefusals.push(r);
  }
  if (gpu) throw new AlexnetError('NO_GPU', `--gpu: no GPU backend works here: ${reasons()}`, `${noGpuFixes()}; \`alexnet doctor\` checks each`);
  // The last round's hint: the CPU fallback's, the one that says what to change on any machine.
  throw new AlexnetError('BACKEND', `no backend starts here: ${reasons()}`, notes.at(-1)?.hint ?? 'run `alexnet doctor`');
}

/** Why each GPU backend did not start when `auto` last tried them, in AUTO_ORDER. */
let gpuRefusals: NotStarted[] = [];

/**
 * Each GPU backend's own fix (WebGPU's driver, CUDA's packages) from `auto`'s last choice, once each: what answers
 * "no GPU" (`--gpu`, `doctor --require-gpu`), where the CPU fallback's fix (the CPU-only tfjs-node) does not.
 */
export function noGpuFixes(): string {
  const hints = [...new Set(gpuRefusals.map((n) => n.hint))];
  return hints.length > 0 ? hints.join('; ') : 'see README "GPU"';
}

/** Each backend's module, in table order (for `doctor`). */
export async function backendModules() {
  return Promise.all(BACKENDS.map(async (b) => ({ name: b.name, module: await b.load() })));
}
