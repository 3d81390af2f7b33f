// The state of a run (state.json), written once (issue #26), as the recipe is (src/recipe.ts): each field's check,
// what a checkpoint from before the field holds, and what `--resume` does with it. The type (TrainState,
// SavedState), the validation of a saved file (stateProblem), the migrations of older checkpoints (migrateState)
// and the resume rules (resumeRule, used by src/run.ts) all come from the table below, so that a field added here
// is checked everywhere. It loads no TensorFlow.js.

import { BACKEND_CHOICES, settingsProblem, type BackendChoice } from './backends/table.js';
import type { Settings } from './backends/types.js';
import { MAX_CLASSES, MIN_CLASSES, NUM_CLASSES, hasControlChars } from './data/cifar.js';
import { LIMITS, RECIPE, RECIPE_KEYS, recipeProblem, savedRecipe, type Recipe } from './recipe.js';

export interface EpochMetrics {
  epoch: number; // from 0, as the seed's log
  trainLoss: number; // mean over batches of each batch's mean loss, as the seed computes it
  trainAcc: number;
  validLoss: number;
  validAcc: number;
  seconds: number; // wall time of the epoch's training and evaluation
  imagesPerSecond: number; // training and evaluation images over `seconds`
  /** The learning rate of the epoch's last step (absent in checkpoints from before it was recorded). */
  lr?: number;
}

/** Loss and accuracy on the test split, evaluated once at the end of a run with a held-out validation split. */
export interface TestMetrics {
  loss: number;
  acc: number;
}

export interface TrainData {
  dataDir: string;
  url: string;
  md5: string | null; // the MD5 asked for; null: --no-verify
  archiveMd5: string; // the data's archive, from its manifest ('unknown' for a folder unpacked by hand; an image folder's: the SHA-256 of its listing)
  records: number; // training and test records in the data dir
  official: boolean | null; // the official archive, or null when it cannot be told
  /** The data set, where it is not CIFAR-10 (absent: CIFAR-10, as every checkpoint before issue #27). */
  dataset?: 'cifar100' | 'images';
  /** CIFAR-100's labels. */
  labels?: 'fine' | 'coarse';
  /** The image folder (--images) and whether unreadable files were left out (--skip-bad-images). */
  images?: string;
  skipBadImages?: boolean;
}

/** What is wrong with the data set fields of `data`, or null. */
function datasetProblem(d: Record<string, unknown>): string | null {
  if (d.dataset === undefined) return d.labels === undefined && d.images === undefined && d.skipBadImages === undefined ? null : 'data.labels and data.images need data.dataset';
  if (d.dataset === 'cifar100') return (d.labels === 'fine' || d.labels === 'coarse') && d.images === undefined ? null : 'data.labels must be fine or coarse for cifar100';
  if (d.dataset === 'images') return typeof d.images === 'string' && d.images.length > 0 && typeof d.skipBadImages === 'boolean' && d.labels === undefined ? null : 'data.images must name the image folder, with data.skipBadImages';
  return `data.dataset must be cifar100 or images (absent: cifar10), got ${JSON.stringify(d.dataset)}`;
}

/**
 * What `--resume DIR` does with a field:
 * - `position`: where the run stands (epoch, history, the best epoch...): carried on as saved;
 * - `fixed`: the recipe and the limits: the run's, and a flag that says otherwise is an error (--epochs alone may
 *   set a new total, under src/run.ts's rule for schedules);
 * - `asked`: the backend and the data: the run's unless the command line names them;
 * - `merged`: backend settings, one by one: the run's, but for those the command line sets;
 * - `either`: --keep-best: on where the run had it or the command line asks for it;
 * - `derived`: made anew from what the run reads (the class names of its data);
 * - `files`: the checkpoint's own files and hashes: checked on load, written anew on save.
 */
export type ResumeRule = 'position' | 'fixed' | 'asked' | 'merged' | 'either' | 'derived' | 'files';

/** One field of state.json. */
export interface StateField<T, Optional extends boolean = boolean> {
  /** What is wrong with a saved value (`s`: the whole state, for the rules between fields), or null. */
  problem(v: unknown, s: Record<string, unknown>): string | null;
  /** Whether it may be absent: a field a run may not have, or one older checkpoints lack (see `migrate`). */
  optional: Optional;
  /** A saved value from an older version as this version's (sub-fields it lacked set to what they stood for). */
  migrate?: (v: unknown) => unknown;
  /** A rule between fields, checked after this one whether it is there or not. */
  also?: (s: Record<string, unknown>) => string | null;
  resume: ResumeRule;
  /** The value's type (never set: it carries T for the types below). */
  readonly type?: T;
}

const field = <T, Optional extends boolean = false>(f: Omit<StateField<T, Optional>, 'optional' | 'type'> & { optional?: Optional }): StateField<T, Optional> =>
  ({ ...f, optional: (f.optional ?? false) as Optional }) as StateField<T, Optional>;

const isInt = (v: unknown, min: number, max: number) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const HEX64 = /^[0-9a-f]{64}$/;
export const WEIGHTS_NAME = /^weights(-[0-9a-f]{16})?\.bin$/;
export const MOMENTUM_NAME = /^momentum-[0-9a-f]{16}\.bin$/;
const limit = (k: keyof typeof LIMITS) => (v: unknown) => (v !== null && !LIMITS[k].kind.valid(v) ? `${k} must be null or ${LIMITS[k].kind.what}, got ${JSON.stringify(v)}` : null);

/** The fields of a run's state, in the order they are checked (the first problem is the one reported). */
export const RUN_STATE = {
  version: field<1>({ problem: (v) => (v !== 1 ? `version must be 1, got ${JSON.stringify(v)}` : null), resume: 'position' }),
  // Recipe fields from before them trained with the seed's values (src/recipe.ts, savedRecipe).
  recipe: field<Recipe>({ problem: (v) => recipeProblem(v), migrate: (v) => (obj(v) ? savedRecipe(v as Partial<Recipe>) : v), resume: 'fixed' }),
  limitTrain: field<number | null>({ problem: limit('limitTrain'), resume: 'fixed' }),
  limitTest: field<number | null>({ problem: limit('limitTest'), resume: 'fixed' }),
  /** The epoch to run next (or in progress when `batch` > 0). */
  epoch: field<number>({ problem: (v) => (!isInt(v, 0, 1e6) ? `epoch must be an integer in 0..1000000, got ${JSON.stringify(v)}` : null), resume: 'position' }),
  /** Batches of `epoch` already done (0 at an epoch boundary). */
  batch: field<number>({ problem: (v) => (!isInt(v, 0, 1e9) ? `batch must be an integer >= 0, got ${JSON.stringify(v)}` : null), resume: 'position' }),
  /** The sums of the epoch in progress. */
  partial: field<{ lossSum: number; accSum: number; seconds: number } | null>({
    problem: (p, s) => {
      if (p === null) return (s.batch as number) > 0 ? 'partial must be set when batch > 0' : null;
      // The sums go on in float32 (a lossSum of 1e308 became Infinity, saved as null: issue #20); accuracy is at most 1 a batch.
      const f32 = (v: unknown) => finite(v) && Number.isFinite(Math.fround(v as number));
      return !obj(p) || !f32(p.lossSum) || (p.lossSum as number) < 0 || !f32(p.accSum) || (p.accSum as number) < 0 || (p.accSum as number) > (s.batch as number) || !finite(p.seconds) || (p.seconds as number) < 0
        ? 'partial must be null or {lossSum, accSum, seconds}: finite float32 sums of the batches done, and seconds'
        : null;
    },
    resume: 'position',
  }),
  history: field<EpochMetrics[]>({
    problem: (h, s) => {
      if (!Array.isArray(h)) return 'history must be an array';
      if (h.length !== s.epoch) return `history has ${h.length} epochs where epoch is ${String(s.epoch)}`;
      for (const [i, m] of h.entries()) {
        if (!obj(m) || m.epoch !== i || !['trainLoss', 'trainAcc', 'validLoss', 'validAcc', 'seconds', 'imagesPerSecond'].every((k) => finite(m[k])) || (m.lr !== undefined && !finite(m.lr))) return `history[${i}] must be epoch ${i}'s metrics, all numbers`;
      }
      return null;
    },
    resume: 'position',
  }),
  /** The backend settings the results depend on (wasm's threads): a resumed run keeps them, for the same rounding. */
  settings: field<Settings, true>({ problem: (v) => settingsProblem(v), optional: true, resume: 'merged' }),
  /** The backend the run was asked for (--backend, --gpu): a resumed run asks for it again, for the same rounding. */
  backend: field<{ choice: BackendChoice; gpu: boolean }, true>({
    problem: (b) => (!obj(b) || !(BACKEND_CHOICES as readonly unknown[]).includes(b.choice) || typeof b.gpu !== 'boolean' ? `backend must be {choice: one of ${BACKEND_CHOICES.join(', ')}, gpu: true or false}` : null),
    optional: true,
    resume: 'asked',
  }),
  /** The data's class names (batches.meta.txt), so a saved model can name its predictions. */
  classNames: field<string[], true>({
    problem: (c) => (!Array.isArray(c) || c.length < MIN_CLASSES || c.length > MAX_CLASSES || c.some((n) => typeof n !== 'string' || n.length === 0 || n.length > 64 || hasControlChars(n)) ? `classNames must be ${MIN_CLASSES} to ${MAX_CLASSES} names without control characters` : null),
    optional: true,
    resume: 'derived',
  }),
  /** Confusion matrix on the validation split after the last finished epoch: [true class][predicted class]. */
  confusion: field<number[][], true>({
    problem: (c, s) => {
      const k = Array.isArray(s.classNames) ? s.classNames.length : NUM_CLASSES; // checkpoints without classNames: CIFAR-10
      return !Array.isArray(c) || c.length !== k || c.some((row) => !Array.isArray(row) || row.length !== k || row.some((v) => !isInt(v, 0, Number.MAX_SAFE_INTEGER))) ? `confusion must be a ${k}x${k} matrix of counts, one row and column a class` : null;
    },
    optional: true,
    resume: 'position',
  }),
  /** Where the data came from, so that `--resume DIR` alone continues on the same data (issue #14). */
  data: field<TrainData, true>({
    problem: (d) => (!obj(d) || typeof d.dataDir !== 'string' || typeof d.url !== 'string' || !(d.md5 === null || typeof d.md5 === 'string') || typeof d.archiveMd5 !== 'string' || !isInt(d.records, 0, Number.MAX_SAFE_INTEGER) || !(d.official === null || typeof d.official === 'boolean') ? 'data must be {dataDir, url, md5, archiveMd5, records, official}' : datasetProblem(d)),
    optional: true,
    // Checkpoints from before `official` was recorded could not tell.
    migrate: (d) => (obj(d) && d.official === undefined ? { ...d, official: null } : d),
    resume: 'asked',
  }),
  /** --keep-best: the best epoch so far is kept in DIR/best; a resumed run keeps doing it. */
  keepBest: field<boolean, true>({ problem: (v) => (typeof v !== 'boolean' ? 'keepBest must be true or false' : null), optional: true, resume: 'either' }),
  /**
   * The epoch with the best validation accuracy so far (the first of equals), or null before any; with a saved
   * run, the SHA-256 of its weights, which DIR/best must hold (--keep-best: issue #24).
   */
  best: field<{ epoch: number; validAcc: number; weightsSha256?: string } | null, true>({
    problem: (b, s) => (b !== null && (!obj(b) || !isInt(b.epoch, 0, (s.epoch as number) - 1) || !finite(b.validAcc) || (b.weightsSha256 !== undefined && !(typeof b.weightsSha256 === 'string' && HEX64.test(b.weightsSha256)))) ? 'best must be null or {epoch, validAcc, weightsSha256} of an epoch done' : null),
    optional: true,
    resume: 'position',
  }),
  /** The test split's numbers after the last epoch, where a validation split was held out. */
  test: field<TestMetrics, true>({ problem: (t) => (!obj(t) || !finite(t.loss) || !finite(t.acc) ? 'test must be {loss, acc}, numbers' : null), optional: true, resume: 'position' }),
};

/** The fields a saved checkpoint adds: its files, named and hashed (src/checkpoint.ts writes and checks them). */
export const CHECKPOINT_FILES = {
  /** The optimiser's momentum buffers (float32, model.trainableWeights order), where the recipe has momentum. */
  momentumFile: field<string, true>({
    problem: (f, s) => (typeof f !== 'string' || !MOMENTUM_NAME.test(f) || typeof s.momentumSha256 !== 'string' || !HEX64.test(s.momentumSha256) ? 'momentumFile and momentumSha256 must name momentum-<hash>.bin and its 64 hex digits' : null),
    optional: true,
    resume: 'files',
  }),
  momentumSha256: field<string, true>({
    problem: (h, s) => (s.momentumFile === undefined || typeof h !== 'string' || !HEX64.test(h) ? 'momentumFile and momentumSha256 must name momentum-<hash>.bin and its 64 hex digits' : null),
    optional: true,
    // A recipe with momentum carries its buffers once it has trained.
    also: (s) => {
      const momentum = (s.recipe as Record<string, unknown>).momentum;
      return s.momentumFile === undefined && s.momentumSha256 === undefined && typeof momentum === 'number' && momentum > 0 && ((s.epoch as number) > 0 || (s.batch as number) > 0) ? 'the recipe has momentum, but no momentumFile holds its buffers' : null;
    },
    resume: 'files',
  }),
  weightsSha256: field<string>({ problem: (h) => (typeof h !== 'string' || !HEX64.test(h) ? 'weightsSha256 must be 64 hex digits' : null), resume: 'files' }),
  /** The weights file this state belongs to (absent in checkpoints before the set-atomic layout: weights.bin). */
  weightsFile: field<string, true>({ problem: (f) => (typeof f !== 'string' || !WEIGHTS_NAME.test(f) ? `weightsFile must name weights-<hash>.bin, got ${JSON.stringify(f)}` : null), optional: true, resume: 'files' }),
};

type ValueOf<F> = F extends StateField<infer T, boolean> ? T : never;
type Fields<S> = { [K in keyof S as S[K] extends StateField<unknown, false> ? K : never]: ValueOf<S[K]> } & { [K in keyof S as S[K] extends StateField<unknown, false> ? never : K]?: ValueOf<S[K]> };

/** Where a run stands; saved with the weights so that `--resume` continues exactly. */
export type TrainState = Fields<typeof RUN_STATE>;
/** state.json as saved: the run's state and its checkpoint's files. */
export type SavedState = TrainState & Fields<typeof CHECKPOINT_FILES>;

const SCHEMA: Record<string, StateField<unknown>> = { ...RUN_STATE, ...CHECKPOINT_FILES };

/** The keys of the run's state that `--resume` treats by `rule`. */
export const resumeRule = (rule: ResumeRule): (keyof TrainState)[] => (Object.keys(RUN_STATE) as (keyof TrainState)[]).filter((k) => RUN_STATE[k].resume === rule);

/**
 * Fields an older version saved under another name, checked as the field they became: wasm's thread count as
 * `threads`, before backend settings.
 */
const RENAMED: Record<string, { to: string; check: (v: unknown) => string | null; as: (v: unknown) => unknown }> = {
  threads: { to: 'settings', check: (v) => settingsProblem({ threads: v })?.replace(/^settings\./, '') ?? null, as: (v) => ({ threads: v }) },
};

/** What is wrong with a parsed state.json, naming the field, or null when every field is in range. */
export function stateProblem(s: unknown): string | null {
  if (!obj(s)) return 'it is not a JSON object';
  for (const [key, f] of Object.entries(SCHEMA)) {
    const renamed = Object.entries(RENAMED).find(([, r]) => r.to === key);
    if (renamed && s[renamed[0]] !== undefined) {
      const problem = renamed[1].check(s[renamed[0]]);
      if (problem) return problem;
    }
    const v = s[key] === undefined || !f.migrate ? s[key] : f.migrate(s[key]);
    const problem = v === undefined && f.optional ? null : f.problem(v, s);
    if (problem) return problem;
    const between = f.also?.(s);
    if (between) return between;
  }
  return null;
}

/**
 * A valid state.json as this version's state: renamed fields under their names, and what older versions lacked
 * set to what it stood for.
 */
export function migrateState(s: Record<string, unknown>): SavedState {
  const out: Record<string, unknown> = { ...s };
  for (const [from, r] of Object.entries(RENAMED)) {
    if (out[from] === undefined) continue;
    if (out[r.to] === undefined) out[r.to] = r.as(out[from]);
    delete out[from];
  }
  for (const [key, f] of Object.entries(SCHEMA)) if (out[key] !== undefined && f.migrate) out[key] = f.migrate(out[key]);
  return out as SavedState;
}

/** What a run is started with, from the command line and what it reads (src/run.ts fills each field). */
export type Asked = Pick<TrainState, 'recipe' | 'limitTrain' | 'limitTest' | 'backend' | 'data' | 'classNames' | 'keepBest'>;

/**
 * The state a run starts from, each field as its rule says: a new run's position at epoch 0 with everything as
 * asked; a resumed run's position, its `fixed` fields (the recipe but for a new total of epochs, the limits), its
 * `merged` ones key by key under what is asked, `either` ones on where either is, and `asked` and `derived` ones as
 * now asked (src/run.ts asks for the run's own backend and data unless the command line names others).
 */
export function startingState(saved: TrainState | null, asked: Asked): TrainState {
  if (!saved) return { version: 1, epoch: 0, batch: 0, partial: null, history: [], best: null, ...asked };
  const state: Record<string, unknown> = { ...saved };
  for (const key of Object.keys(RUN_STATE) as (keyof TrainState)[]) {
    const now = (asked as Record<string, unknown>)[key];
    switch (RUN_STATE[key].resume) {
      case 'fixed':
        state[key] = key === 'recipe' ? { ...saved.recipe, epochs: asked.recipe.epochs } : saved[key];
        break;
      case 'asked':
      case 'derived':
        if (now !== undefined) state[key] = now;
        break;
      case 'merged':
        state[key] = { ...(saved[key] as object | undefined), ...(now as object | undefined) };
        break;
      case 'either':
        state[key] = Boolean(saved[key] || now);
        break;
    }
  }
  return state as TrainState;
}

/**
 * The first `fixed` field that a resume's command line (`explicit`: the keys given there) sets otherwise than the
 * run did, as its flag and both values; --epochs aside (a new total: src/run.ts's rule). Null when none.
 */
export function fixedConflict(saved: TrainState, asked: Pick<TrainState, 'recipe' | 'limitTrain' | 'limitTest'>, explicit: Set<string>): { flag: string; asked: unknown; saved: unknown } | null {
  for (const key of resumeRule('fixed')) {
    if (key === 'recipe') {
      for (const k of RECIPE_KEYS) {
        if (k !== 'epochs' && explicit.has(k) && asked.recipe[k] !== saved.recipe[k]) return { flag: RECIPE[k].flag, asked: asked.recipe[k], saved: saved.recipe[k] };
      }
    } else if (key === 'limitTrain' || key === 'limitTest') {
      if (explicit.has(key) && asked[key] !== saved[key]) return { flag: LIMITS[key].flag, asked: asked[key], saved: saved[key] };
    } else {
      throw new Error(`state field ${key}: no flag is known for its resume check`);
    }
  }
  return null;
}
