// The --backend values, apart from backend.ts so that the command layer can list them without loading
// TensorFlow.js (which costs ~0.4 s at start-up, for `download` and `--help` too).

import { AlexnetError } from './errors.js';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export function parseBackendChoice(value: string): BackendChoice {
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new AlexnetError('USAGE', `unknown backend ${JSON.stringify(value)}`, `use one of ${BACKEND_CHOICES.join(', ')}`);
}
