// GPU validation errors do not throw: Dawn reports them on the device (and would print them on stdout) while tfjs
// goes on with stale numbers (issue #11). Start-up records the first uncaptured error or device loss here; the
// runners turn it into the tool's error before any number is used.

import { AlexnetError } from '../../errors.js';

let gpuError: string | null = null;

/** Records the first GPU error since the last check. */
export function recordGpuError(message: string): void {
  gpuError ??= message;
}

/** Throws the first GPU error recorded since the last check, as the tool's error. */
export function throwIfGpuError(): void {
  if (gpuError === null) return;
  const message = gpuError;
  gpuError = null;
  throw new AlexnetError('BACKEND', `WebGPU: ${message}`, 'this is a bug or a driver problem: please report it with `alexnet doctor`\'s output; --backend wasm trains on the CPU');
}
