// The webgpu backend's option, --webgpu-runner, kept apart from the backend so that parsing it (and --help) loads
// no TensorFlow.js. The compiled step and the op-by-op runner round differently, so the one a run used is saved
// with it and a resumed run keeps it.

import { choice, type Field } from '../../recipe.js';

export const RUNNERS = ['compiled', 'ops'] as const;

export const WEBGPU_RUNNER: Field<string> = {
  flag: '--webgpu-runner',
  arg: '<name>',
  help: 'webgpu: compiled (the whole SGD step built once and replayed) or ops (TensorFlow.js op by op, the fallback)',
  evalHelp: 'webgpu: compiled (the evaluation built once and replayed) or ops (TensorFlow.js op by op, the fallback)',
  default: 'compiled',
  kind: choice(RUNNERS),
  example: 'ops',
};
