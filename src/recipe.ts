// The recipe: every training hyperparameter, stated once with its default (the seed's), its bounds and its help
// text. The commander options (src/cli.ts), the flag parsing (src/commands/), state.json's validation
// (src/checkpoint.ts), bench's defaults and the resume checks (src/run.ts) all derive from these tables, so a new
// recipe field is one entry here plus what uses it (STYLE.md: airbench's one hyperparameter dict). It loads no
// TensorFlow.js: --help is built from it.

import { AlexnetError } from './errors.js';

/** `pytorch`: uniform +-1/sqrt(fan_in), PyTorch's default, which the seed's lr 0.1 needs; `glorot`: tfjs's default. */
export const INIT_CHOICES = ['pytorch', 'glorot'] as const;
export type Init = (typeof INIT_CHOICES)[number];

/** How a field's value is written on the command line and checked wherever it is read. */
export interface Kind<T> {
  /** What a valid value is, for messages: `an integer in 1..65536`. */
  what: string;
  /** The value of `text`, or undefined when it is not one. */
  parse(text: string): T | undefined;
  /** Whether `v` (from state.json) is a valid value. */
  valid(v: unknown): v is T;
}

export const int = (min: number, max: number): Kind<number> => {
  const valid = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
  return {
    what: max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`,
    parse: (text) => (/^\s*-?\d+\s*$/.test(text) && valid(Number(text)) ? Number(text) : undefined),
    valid,
  };
};

export const positive = (): Kind<number> => {
  const valid = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
  return { what: 'a positive number', parse: (text) => (text.trim() !== '' && valid(Number(text)) ? Number(text) : undefined), valid };
};

export const choice = <T extends string>(choices: readonly T[]): Kind<T> => {
  const valid = (v: unknown): v is T => (choices as readonly unknown[]).includes(v);
  return { what: `one of ${choices.join(', ')}`, parse: (text) => (valid(text) ? text : undefined), valid };
};

/** One option: its flag, its help, its default and its kind. */
export interface Field<T> {
  flag: string; // `--batch-size`; commander names the value after it (batchSize), as state.json does
  arg: string; // `<n>`
  help: string;
  /** The seed's value; undefined: chosen per run (the seed of the random numbers). */
  default: T | undefined;
  /** --help's `(default: ...)` where the default is not one value. */
  defaultText?: string;
  kind: Kind<T>;
  /** The value a hint suggests. */
  example: string;
}

/** The value of `text` given to `flag`, or the tool's usage error. */
export function parseField<T>(field: Field<T>, text: string, flag = field.flag): T {
  const v = field.kind.parse(text);
  if (v === undefined) throw new AlexnetError('USAGE', `${flag} must be ${field.kind.what}, got ${JSON.stringify(text)}`, `e.g. ${flag} ${field.example}`);
  return v;
}

export interface Recipe {
  epochs: number; // total epochs to reach (a resumed run counts the saved ones)
  batchSize: number; // 64 in the seed
  lr: number; // SGD learning rate, 0.1 in the seed
  evalBatchSize: number; // 128 in the seed; evaluation only, so larger is fine
  seed: number; // the initial weights and every epoch's shuffle derive from it
  init: Init;
}

/** The recipe's fields, in --help's order. */
export const RECIPE: { [K in keyof Recipe]: Field<Recipe[K]> } = {
  epochs: { flag: '--epochs', arg: '<n>', help: 'epochs to train (with --resume: the total)', default: 20, kind: int(1, 1_000_000), example: '20' },
  batchSize: { flag: '--batch-size', arg: '<n>', help: 'training batch size', default: 64, kind: int(1, 65536), example: '64' },
  lr: { flag: '--lr', arg: '<x>', help: 'SGD learning rate', default: 0.1, kind: positive(), example: '0.1' },
  evalBatchSize: { flag: '--eval-batch-size', arg: '<n>', help: 'evaluation batch size', default: 128, kind: int(1, 65536), example: '128' },
  seed: { flag: '--seed', arg: '<n>', help: 'seed for initial weights and shuffles (reported with --json)', default: undefined, defaultText: 'random', kind: int(0, 2 ** 32 - 1), example: '1' },
  init: { flag: '--init', arg: '<scheme>', help: 'initialisation: pytorch (uniform +-1/sqrt(fan_in)) or glorot (tfjs default)', default: 'pytorch', kind: choice(INIT_CHOICES), example: 'pytorch' },
};

export const RECIPE_KEYS = Object.keys(RECIPE) as (keyof Recipe)[];

/** Which images a run uses: also saved with the run (state.json's limitTrain, limitTest) and kept on resume. */
export interface Limits {
  limitTrain: number | null; // the first N training images; null: all
  limitTest: number | null;
}

export const LIMITS: { [K in keyof Limits]: Field<number> } = {
  limitTrain: { flag: '--limit-train', arg: '<n>', help: 'use only the first N training images', default: undefined, defaultText: 'all', kind: int(1, Number.MAX_SAFE_INTEGER), example: '5000' },
  limitTest: { flag: '--limit-test', arg: '<n>', help: 'use only the first N test images', default: undefined, defaultText: 'all', kind: int(1, Number.MAX_SAFE_INTEGER), example: '1000' },
};

/** The seed's recipe with `seed` for the random numbers. */
export const seedRecipe = (seed: number): Recipe => ({ ...(Object.fromEntries(RECIPE_KEYS.map((k) => [k, RECIPE[k].default])) as Partial<Recipe>), seed }) as Recipe;

/** What is wrong with a saved recipe (state.json), naming the field, or null. */
export function recipeProblem(r: unknown): string | null {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'recipe must be an object';
  for (const k of RECIPE_KEYS) {
    const v = (r as Record<string, unknown>)[k];
    if (!RECIPE[k].kind.valid(v)) return `recipe.${k} must be ${RECIPE[k].kind.what}, got ${JSON.stringify(v)}`;
  }
  return null;
}

/** The first key whose value in `asked` differs from `saved`, among `keys`; null when they agree. */
export function firstDifference<T extends object>(asked: T, saved: T, keys: Iterable<keyof T>): keyof T | null {
  for (const k of keys) if (asked[k] !== saved[k]) return k;
  return null;
}
