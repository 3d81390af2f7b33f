// The recipe: every training hyperparameter, stated once with its default (the seed's), its bounds and its help
// text. The commander options (src/cli.ts), the flag parsing (src/commands/), state.json's validation
// (src/checkpoint.ts), bench's defaults and the resume checks (src/run.ts) all derive from these tables, so a new
// recipe field is one entry here plus what uses it (STYLE.md: airbench's one hyperparameter dict). The named
// recipes (--recipe seed|tuned) are sets of these fields. It loads no TensorFlow.js: --help is built from it.

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
    // Any decimal form whose value is whole (`20`, `1e3`, `1.6e1`, `64.0`), as the README promises number flags take.
    parse: (text) => { const v = decimal(text); return valid(v) ? v + 0 : undefined; }, // + 0: `-0` is 0
    valid,
  };
};

/**
 * A number as people write one: decimal, with an optional exponent (`0.1`, `.5`, `5e-4`). JavaScript's Number()
 * also reads `0x10`, `0b11`, `Infinity` and `''`, which made `--lr 0x10` a learning rate of 16 (issue #24).
 */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
export const decimal = (text: string): number | undefined => (DECIMAL.test(text) ? Number(text) : undefined);

export const positive = (): Kind<number> => {
  const valid = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
  return { what: 'a positive number', parse: (text) => { const v = decimal(text); return valid(v) ? v : undefined; }, valid };
};

/** A number in [min, max): momentum (0 <= m < 1), weight decay (0 <= w < 1). */
export const range = (min: number, max: number): Kind<number> => {
  const valid = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= min && v < max;
  return { what: `a number in [${min}, ${max})`, parse: (text) => { const v = decimal(text); return valid(v) ? v : undefined; }, valid };
};

/**
 * A count of images, or a fraction of them in (0, 1), as Keras's `validation_split` takes one (issue #25): a whole
 * number is a count, anything between 0 and 1 a fraction.
 */
export const countOrFraction = (): Kind<number> => {
  const valid = (v: unknown): v is number => typeof v === 'number' && ((Number.isSafeInteger(v) && v >= 0) || (v > 0 && v < 1));
  return { what: 'a whole number of images, or a fraction in (0, 1)', parse: (text) => { const v = decimal(text); return valid(v) ? v : undefined; }, valid };
};

/** The images a `countOrFraction` value holds out of `total`: the count, or the fraction rounded (at least 1). */
export const heldOutCount = (v: number, total: number): number => (v > 0 && v < 1 ? Math.max(1, Math.round(v * total)) : v);

/** `aliases`: other spellings of a choice (`flip,crop` for `crop,flip`). */
export const choice = <T extends string>(choices: readonly T[], aliases: Record<string, T> = {}): Kind<T> => {
  const valid = (v: unknown): v is T => (choices as readonly unknown[]).includes(v);
  return { what: `one of ${choices.join(', ')}`, parse: (text) => (valid(text) ? text : aliases[text]), valid };
};

/** A switch: `--nesterov` on, `--no-nesterov` off (commander gives true or false). */
export const bool = (): Kind<boolean> => ({
  what: 'true or false',
  parse: (text) => (text === 'true' ? true : text === 'false' ? false : undefined),
  valid: (v: unknown): v is boolean => typeof v === 'boolean',
});

/** One option: its flag, its help, its default and its kind. */
export interface Field<T> {
  flag: string; // `--batch-size`; commander names the value after it (batchSize), as state.json does
  arg: string; // `<n>`; '' for a switch (`--nesterov`, with `--no-nesterov`)
  help: string;
  /** The seed's value; undefined: chosen per run (the seed of the random numbers). */
  default: T | undefined;
  /** --help's `(default: ...)` where the default is not one value. */
  defaultText?: string;
  kind: Kind<T>;
  /** The value a hint suggests. */
  example: string;
  /** The help where only evaluation runs (`eval`), where it differs from the training help. */
  evalHelp?: string;
  /** Absent from checkpoints of versions before it: those runs trained with its default (src/state.ts migrates them). */
  added?: true;
}

/** The value of `text` given to `flag`, or the tool's usage error. */
export function parseField<T>(field: Field<T>, text: string, flag = field.flag): T {
  const v = field.kind.parse(text);
  if (v === undefined) throw new AlexnetError('USAGE', `${flag} must be ${field.kind.what}, got ${JSON.stringify(text)}`, `e.g. ${flag} ${field.example}`);
  return v;
}

export const PRESETS = ['seed', 'tuned'] as const;
export type Preset = (typeof PRESETS)[number];
export const SCHEDULES = ['constant', 'step', 'cosine', 'onecycle'] as const;
export type Schedule = (typeof SCHEDULES)[number];
export const AUGMENTS = ['none', 'flip', 'crop', 'crop,flip'] as const;
/** Test-time augmentation: none, or each image's logits averaged with its mirror's. */
export const TTAS = ['none', 'flip'] as const;
export type Tta = (typeof TTAS)[number];
export type Augment = (typeof AUGMENTS)[number];

export interface Recipe {
  preset: Preset; // the named set the other fields start from (flags override its fields)
  epochs: number; // total epochs to reach (a resumed run counts the saved ones)
  batchSize: number; // 64 in the seed
  lr: number; // SGD learning rate, 0.1 in the seed; the peak of a schedule
  momentum: number; // PyTorch's SGD momentum (dampening 0); 0 in the seed
  nesterov: boolean;
  weightDecay: number; // PyTorch's SGD weight_decay: added to the gradient as weightDecay * w
  labelSmoothing: number; // PyTorch's CrossEntropyLoss(label_smoothing): targets (1 - e) * one_hot + e / classes; 0 in the seed
  schedule: Schedule; // the learning rate per step (src/schedule.ts)
  warmupEpochs: number; // a linear warm-up before the schedule (onecycle: its rising part)
  augment: Augment; // per training image: a random 32x32 crop of the image padded by 4, a random mirror
  validSplit: number; // training images held out as the validation split (a count, or a fraction < 1); 0: the test set validates, as in the seed
  tta: Tta; // the test split after the last epoch (and `eval` of the run): the logits of each image and its mirror averaged; none in the seed
  patience: number; // Keras's EarlyStopping on the validation accuracy: stop after this many epochs without a better one; 0: never, as in the seed
  evalBatchSize: number; // 128 in the seed; evaluation only, so larger is fine
  seed: number; // the initial weights, every epoch's shuffle and augmentation, and the held-out choice derive from it
  init: Init;
}

/** The recipe's fields, in --help's order. */
export const RECIPE: { [K in keyof Recipe]: Field<Recipe[K]> } = {
  preset: { flag: '--recipe', arg: '<name>', help: 'a named recipe: seed (the lesson\'s) or tuned (momentum, weight decay, onecycle, crop and flip); flags override its fields', default: 'seed', kind: choice(PRESETS), example: 'tuned', added: true },
  epochs: { flag: '--epochs', arg: '<n>', help: 'epochs to train (with --resume: the total)', default: 20, kind: int(1, 1_000_000), example: '20' },
  batchSize: { flag: '--batch-size', arg: '<n>', help: 'training batch size', default: 64, kind: int(1, 65536), example: '64' },
  lr: { flag: '--lr', arg: '<x>', help: 'SGD learning rate (a schedule\'s peak)', default: 0.1, kind: positive(), example: '0.1' },
  momentum: { flag: '--momentum', arg: '<m>', help: 'SGD momentum, as PyTorch\'s (dampening 0)', default: 0, kind: range(0, 1), example: '0.9', added: true },
  nesterov: { flag: '--nesterov', arg: '', help: 'Nesterov momentum (needs --momentum above 0)', default: false, kind: bool(), example: '', added: true },
  weightDecay: { flag: '--weight-decay', arg: '<w>', help: 'L2 weight decay, added to the gradient as PyTorch\'s SGD does', default: 0, kind: range(0, 1), example: '5e-4', added: true },
  labelSmoothing: { flag: '--label-smoothing', arg: '<e>', help: 'label smoothing, as PyTorch\'s CrossEntropyLoss(label_smoothing=e): each target (1 - e) * one-hot + e / classes, in training and the Valid Loss', default: 0, kind: range(0, 1), example: '0.1', added: true },
  schedule: { flag: '--schedule', arg: '<name>', help: 'learning rate per step: constant, step (x0.1 at 50% and 75%), cosine (to 0), or onecycle (up to --lr, then down)', default: 'constant', kind: choice(SCHEDULES), example: 'cosine', added: true },
  warmupEpochs: { flag: '--warmup-epochs', arg: '<n>', help: 'epochs of linear warm-up before the schedule (onecycle: its rising part, else 30%)', default: 0, kind: int(0, 1_000_000), example: '1', added: true },
  augment: { flag: '--augment', arg: '<what>', help: 'per training image: none, flip (a random mirror), crop (a random 32x32 crop of the image padded by 4), or crop,flip', default: 'none', kind: choice(AUGMENTS, { 'flip,crop': 'crop,flip' }), example: 'crop,flip', added: true },
  validSplit: { flag: '--valid-split', arg: '<n>', help: 'hold out N training images, or a fraction such as 0.1 (a seeded choice), to validate on; the test split is then evaluated once, at the end', default: 0, defaultText: 'none (the test split validates, as in the seed)', kind: countOrFraction(), example: '5000', added: true },
  tta: { flag: '--tta', arg: '<views>', help: 'test-time augmentation of the test split after the last epoch (and of `eval` of the run): none, or flip (the logits of each image and its mirror averaged)', default: 'none', kind: choice(TTAS), example: 'flip', added: true, evalHelp: 'test-time augmentation: none, or flip (the logits of each image and its mirror averaged); default: the run\'s' },
  patience: { flag: '--patience', arg: '<n>', help: 'stop after N epochs without a better validation accuracy, as Keras\'s EarlyStopping(monitor="val_accuracy", patience=N); 0: train every epoch', default: 0, defaultText: '0 (off)', kind: int(0, 1_000_000), example: '3', added: true },
  evalBatchSize: { flag: '--eval-batch-size', arg: '<n>', help: 'evaluation batch size', default: 128, kind: int(1, 65536), example: '128' },
  seed: { flag: '--seed', arg: '<n>', help: 'seed for initial weights, shuffles, augmentation and the held-out images (reported with --json)', default: undefined, defaultText: 'random', kind: int(0, 2 ** 32 - 1), example: '1' },
  init: { flag: '--init', arg: '<scheme>', help: 'initialisation: pytorch (uniform +-1/sqrt(fan_in)) or glorot (tfjs default)', default: 'pytorch', kind: choice(INIT_CHOICES), example: 'pytorch' },
};

/**
 * The named recipes: `seed` is the table's defaults (the lesson's: plain SGD at lr 0.1, no augmentation, the test
 * set as validation). `tuned` is what people reach for first with this network: SGD with Nesterov momentum 0.9 and
 * weight decay 5e-4, one cycle of the learning rate up to 0.02 and down, and random crops and mirrors. Its lr is
 * the seed's stable step over momentum's 10x (0.1 / 10 = 0.01), doubled at the cycle's peak; see README "Recipes"
 * for what was measured and what was not.
 */
export const PRESET_FIELDS: Record<Preset, Partial<Recipe>> = {
  seed: {},
  tuned: { lr: 0.02, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: 'onecycle', augment: 'crop,flip' },
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

/** The named recipe `preset` with `seed` for the random numbers. */
export const presetRecipe = (preset: Preset, seed: number): Recipe =>
  ({ ...(Object.fromEntries(RECIPE_KEYS.map((k) => [k, RECIPE[k].default])) as Partial<Recipe>), ...PRESET_FIELDS[preset], preset, seed }) as Recipe;

/** The seed's recipe with `seed` for the random numbers. */
export const lessonRecipe = (seed: number): Recipe => presetRecipe('seed', seed);

/** A saved recipe with the fields an older version did not save (`added`) set to the values it trained with. */
export function savedRecipe(r: Partial<Recipe>): Partial<Recipe> {
  const filled: Record<string, unknown> = { ...r };
  for (const k of RECIPE_KEYS) if (RECIPE[k].added && !(k in filled)) filled[k] = RECIPE[k].default;
  return filled;
}

/** What is wrong with a saved recipe (state.json), naming the field, or null. */
export function recipeProblem(r: unknown): string | null {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'recipe must be an object';
  const filled = savedRecipe(r as Partial<Recipe>);
  // A field this version does not know would be carried into the summary and the next state.json (issue #24).
  const unknown = Object.keys(filled).find((k) => !(RECIPE_KEYS as string[]).includes(k));
  if (unknown !== undefined) return `recipe.${unknown} is not a field of this version's recipes`;
  for (const k of RECIPE_KEYS) {
    const v = filled[k];
    if (!RECIPE[k].kind.valid(v)) return `recipe.${k} must be ${RECIPE[k].kind.what}, got ${JSON.stringify(v)}`;
  }
  return combinationProblem(filled as Recipe);
}

/** Fields that are valid alone but not together, as a usage error's message and hint; null when they fit. */
export function combinationProblem(r: Recipe): string | null {
  if (r.nesterov && r.momentum === 0) return '--nesterov needs --momentum above 0 (as PyTorch\'s SGD)';
  if (r.warmupEpochs >= r.epochs) return `--warmup-epochs ${r.warmupEpochs} leaves no epoch of the schedule (--epochs ${r.epochs})`;
  return null;
}
