// Turning flag strings (and the environment's knobs) into typed values, once, for the commands: each command's
// options function calls these, and the core takes what they return.

import * as path from 'node:path';
import { BACKEND_OPTIONS } from '../backends/table.js';
import type { Settings } from '../backends/types.js';
import type { TransferOptions } from '../data/download.js';
import { AlexnetError } from '../errors.js';
import { int, parseField, type Field } from '../recipe.js';

/** A path flag's value: an empty one is refused (`--save ""` wrote into the current folder: issue #20). */
export function parsePath(flag: string, value: string): string {
  if (value.trim() === '') throw new AlexnetError('USAGE', `${flag} needs a path, got an empty one`, `e.g. ${flag} ./run1`);
  return path.resolve(value);
}

/** An integer flag in min..max; `example` is the value the hint suggests (the flag's usual value). */
export function parseIntFlag(name: string, min: number, max = Number.MAX_SAFE_INTEGER, example = Math.max(min, 1)) {
  const field: Field<number> = { flag: name, arg: '<n>', help: '', default: undefined, kind: int(min, max), example: String(example) };
  return (value: string): number => parseField(field, value);
}

/**
 * The values of a table of fields (src/recipe.ts) from commander's flags, by key: a flag given on the command
 * line is parsed, else the field's default (commander hands defaults over as strings too: they parse the same).
 * Returns the values and which keys were given.
 */
export function parseFields<K extends string>(fields: Record<K, Field<unknown>>, flags: Record<string, unknown>, isExplicit: (key: string) => boolean): { values: Partial<Record<K, unknown>>; explicit: Set<K> } {
  const values: Partial<Record<K, unknown>> = {};
  const explicit = new Set<K>();
  for (const key of Object.keys(fields) as K[]) {
    // Commander names a value after its flag (--batch-size: batchSize), which is the key but for --recipe (preset).
    const name = fields[key].flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const text = flags[name];
    if (isExplicit(name)) explicit.add(key);
    // A switch (--nesterov, --no-nesterov) comes from commander as true or false; the rest as text.
    values[key] = typeof text === 'string' ? parseField(fields[key], text) : typeof text === 'boolean' && fields[key].kind.valid(text) ? text : fields[key].default;
  }
  return { values, explicit };
}

/** The backends' own options (--threads) given on the command line, parsed; the rest are left to the run. */
export function explicitSettings(flags: Record<string, unknown>, isExplicit: (key: string) => boolean): Settings {
  const settings: Settings = {};
  for (const [key, { field }] of Object.entries(BACKEND_OPTIONS)) {
    if (isExplicit(key) && typeof flags[key] === 'string') settings[key] = parseField<number | string>(field, flags[key]);
  }
  return settings;
}

export function parseMd5(value: string): string {
  if (!/^[0-9a-fA-F]{32}$/.test(value)) {
    throw new AlexnetError('USAGE', `--md5 must be 32 hex digits, got ${JSON.stringify(value)}`, 'e.g. --md5 c32a1d4ab5d03f1284b67883e8d87530, or --no-verify');
  }
  return value.toLowerCase();
}

/**
 * Env knobs for tests and CI: the first retry backoff and the stall time of a download, in ms, at most an hour
 * (Node.js's timers hold 2^31 ms: past that it warned and waited 1 ms, which failed a good download: issue #24).
 */
export function networkTimingFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<TransferOptions, 'retryDelayMs' | 'stallMs'> {
  const read = (name: string, min: number, example: number) => {
    const text = env[name];
    if (text === undefined) return undefined;
    const v = int(min, MAX_TIMING_MS).parse(text);
    if (v === undefined) throw new AlexnetError('USAGE', `${name} must be an integer in ${min}..${MAX_TIMING_MS} (ms), got ${JSON.stringify(text)}`, `e.g. ${name}=${example}, or unset it`);
    return v;
  };
  return { retryDelayMs: read('ALEXNET_RETRY_DELAY_MS', 0, 1000), stallMs: read('ALEXNET_STALL_MS', 1, 30000) };
}

/** The longest retry delay or stall time the environment may ask for: an hour. */
export const MAX_TIMING_MS = 3_600_000;
