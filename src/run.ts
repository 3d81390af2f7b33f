// A run, from start to finish: what `alexnet train` and `alexnet eval` hand their typed options to. It owns the
// policy of a run (a resumed run keeps its recipe, data, limits and backend settings; flags that contradict
// them are errors), where its data comes from, the save folder's lock, and the checkpointer that writes the
// checkpoint and report.html after every epoch. Like the loop below it (src/train.ts), it never prints and never
// exits: it reports through hooks and returns; the commands print (STYLE.md #3).

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { defaultSettings, initBackend, optionsProblem, type ActiveBackend, type BackendChoice, type Settings } from './backends/index.js';
import { STATE_FILE, checkModelDir, loadCheckpoint, loadTrainedModel, readState, readStateIfAny } from './checkpoint.js';
import { fixedConflict, startingState, type SavedState, type TrainData } from './state.js';
import { checkExtracted } from './data/archive.js';
import { decodeImage, toCifarImage } from './data/image.js';
import { ARCHIVES, datasetOf, loadCifar, obtainData, type DataInfo, type DataSource, type ObtainHooks } from './data/dataset.js';
import type { RecordFormat } from './data/cifar.js';
import { folderFormat, recordsDirOf } from './data/folder.js';
import { AlexnetError } from './errors.js';
import { evaluateReport, type EvalReport } from './evaluate.js';
import { READ_CAPS, readRegularFile } from './files.js';
import { predictTop, type Prediction } from './predict.js';
import { BEST_DIR, checkBest, checkpointer, claimRunDir, cutSaveLeftovers, tidyRunDir } from './rundir.js';
import { createModel, summarize, type ModelSummary } from './model.js';
import { holdOut } from './batches.js';
import { scheduleProblem } from './schedule.js';
import { RECIPE, combinationProblem, heldOutCount, lessonRecipe, type Limits, type Recipe, type Tta } from './recipe.js';
import tf from './tf.cjs';
import tfl from './tfl.cjs';
import { earlyStopText, stoppedEarly, trainLoop, type BatchProgress, type EvalProgress, type EpochMetrics, type TrainLoopResult, type TrainState } from './train.js';

/** Where a command reads its data: as asked on its command line, and whether anything was asked there. */
export interface DataRequest extends DataSource {
  /** Whether --data-dir, --url, --md5 or --no-verify was given; if not, a saved run's own data is used. */
  explicit: boolean;
  /** Which of --dataset, --labels and --images were given: a resume holds them to its run's before any data is touched. */
  named?: ('--dataset' | '--labels' | '--images')[];
}

/** How the run reports: the commands print what these are given. */
export interface RunHooks extends ObtainHooks {
  onBatch?: (p: BatchProgress) => void;
  onEval?: (p: EvalProgress) => void;
  onEpochEnd?: (m: EpochMetrics) => void;
  /**
   * Runs a checkpoint write (`what`: `the checkpoint in DIR`; `hint`: how to go on from it); the train command makes
   * a second Ctrl-C wait for it.
   */
  critical?: <T>(what: string, write: () => Promise<T>, hint: string) => Promise<T>;
}

export interface TrainingOptions {
  recipe: Recipe;
  limits: Limits;
  /**
   * Which recipe fields and limits the user set (checked against a resumed checkpoint; with `epochs`, a new total),
   * and whether --backend or --gpu was given (else a resumed run asks for the backend it was asked for).
   */
  explicit: Set<keyof Recipe | keyof Limits | 'backend' | 'gpu'>;
  data: DataRequest;
  backend: BackendChoice;
  gpu: boolean;
  /** Backend settings the user set (--threads); the rest come from a resumed run, else their defaults. */
  settings: Settings;
  save: string | null;
  resume: string | null;
  /** --keep-best: also keep the epoch with the best validation accuracy in SAVE/best (a resumed run keeps doing it). */
  keepBest?: boolean;
  /** --overwrite: a run already in --save is removed (its best/ too) rather than refused. */
  overwrite?: boolean;
  /** --quiet: the backend keeps what native code prints at start-up off stderr (Dawn's warnings). */
  quiet?: boolean;
}

export interface TrainingResult extends TrainLoopResult {
  backend: ActiveBackend;
  /** The backend settings the run used (saved with it). */
  settings: Settings;
  data: DataInfo;
  trainImages: number;
  /** Images held out to validate on (--valid-split), or null where the test split validates. */
  validImages: number | null;
  testImages: number;
  /** Where the checkpoints went, or null. */
  saveDir: string | null;
}

/** Trains as asked: a new run, or the checkpoint in `opts.resume` continued exactly. */
export async function runTraining(opts: TrainingOptions, hooks: RunHooks = {}): Promise<TrainingResult> {
  const say = hooks.log ?? (() => {});
  const resumed = opts.resume ? await readResumable(opts) : null;
  const saveDir = opts.save ?? opts.resume;
  if (opts.keepBest && !saveDir) throw new AlexnetError('USAGE', '--keep-best needs --save DIR (the best epoch is kept in DIR/best)', 'add --save DIR');
  if (!resumed) {
    const problem = combinationProblem(opts.recipe);
    if (problem) throw new AlexnetError('USAGE', problem, problem.startsWith('--nesterov') ? 'add --momentum 0.9, or turn Nesterov off with --no-nesterov' : `pass fewer --warmup-epochs, or more --epochs`);
  }
  const continues = resumed !== null && path.resolve(resumed.dir) === path.resolve(saveDir!);
  if (opts.overwrite && continues) throw new AlexnetError('USAGE', `--overwrite would remove the run that --resume ${resumed!.dir} continues`, 'drop --overwrite to continue it, or pass --save NEW_DIR to continue it elsewhere');
  if (opts.overwrite && !saveDir) throw new AlexnetError('USAGE', '--overwrite needs --save DIR (the run it replaces)', 'add --save DIR');
  // Checked and claimed before anything slow: a --save that cannot be written fails now, not after an epoch,
  // and a second run into the same folder is refused (issue #13), as is a new run into a finished one (#24).
  const release = saveDir ? await claimRunDir(saveDir, { continues, overwrite: Boolean(opts.overwrite), say }) : null;
  try {
    // Under the lock: the best/ that state.json names is there, whole (issue #24).
    if (resumed && !resumed.state.keepBest && opts.keepBest) {
      // Turned on now: no earlier epoch's weights are left to keep, so best/ holds the best from here on.
      say(`--keep-best: the best of the epochs from here on is kept in ${path.join(saveDir!, BEST_DIR)}`);
      resumed.state.best = null;
    } else if (resumed) {
      await checkBest(resumed.dir, saveDir!, resumed.state, (best) => (resumed.state.best = best), say);
    }
    return await trainInto(opts, resumed, saveDir, hooks);
  } finally {
    await release?.();
  }
}

async function trainInto(opts: TrainingOptions, resumed: { dir: string; state: SavedState } | null, saveDir: string | null, hooks: RunHooks): Promise<TrainingResult> {
  const say = hooks.log ?? (() => {});
  // `--resume DIR` alone continues the interrupted run exactly: its recipe, limits, target epochs and data (issue #14).
  const recipe = resumed ? { ...resumed.state.recipe, epochs: opts.explicit.has('epochs') ? opts.recipe.epochs : resumed.state.recipe.epochs } : opts.recipe;
  const limits = resumed ? { limitTrain: resumed.state.limitTrain, limitTest: resumed.state.limitTest } : opts.limits;
  const source = dataSource(opts.data, resumed?.state.data);

  // The backend first: a missing GPU (--gpu) fails at once, not after a 170 MB download. A resumed run asks for
  // the backend its run asked for (as for its settings, the rounding depends on it) unless told otherwise.
  const saved = resumed?.state.backend;
  const asked = {
    choice: saved && !opts.explicit.has('backend') ? saved.choice : opts.backend,
    gpu: saved && !opts.explicit.has('gpu') && !opts.explicit.has('backend') ? saved.gpu : opts.gpu,
  };
  const backend = await startBackend(asked.choice, { gpu: asked.gpu, quiet: opts.quiet, settings: opts.settings, say });
  const loaded = resumed ? await loadCheckpoint(resumed.dir, resumed.state) : null;
  let model = loaded?.model ?? null;
  try {
    // A recipe that does not fit the data: a flag of a new run, or (a resume takes none of these flags) a state.json
    // edited by hand, whose hint must not name a flag --resume refuses (it hinted `--valid-split 9`).
    const misfit = (field: string, problem: string, hint: string) => resumed
      ? new AlexnetError('CHECKPOINT', `cannot resume from ${resumed.dir}: ${STATE_FILE}: recipe.${field} ${problem}`, `the checkpoint was modified or damaged, or its data changed; resume from a complete one, or start a new run`)
      : new AlexnetError('USAGE', `${RECIPE[field as keyof Recipe].flag} ${problem}`, hint);
    // --valid-split N: N training images, a seeded choice, validate; the test split waits for the end (issue #21).
    // Against `train` training images: refused where it leaves none, or where nothing would validate (an image folder
    // without test/ has no test split: the held-out images validate, and nothing is tested at the end).
    const heldOutOf = (train: number, hasTest: boolean): number => {
      const held = heldOutCount(recipe.validSplit, train);
      if (held >= train) throw misfit('validSplit', `${recipe.validSplit} leaves no training images (there are ${train})`, `hold out fewer, e.g. --valid-split ${Math.floor(train / 10) || 1} or --valid-split 0.1`);
      if (!hasTest && held === 0 && (limits.limitTest ?? 1) > 0) {
        throw resumed
          ? misfit('validSplit', `0 holds out nothing to validate on, and ${source.images?.dir} has no test/ folder`, '')
          : new AlexnetError('USAGE', `--images ${source.images?.dir}: no test/ folder, so there is nothing to validate on`, 'hold out a validation split, e.g. --valid-split 0.1 (or give the folder train/ and test/ class folders)');
      }
      return held;
    };
    // Before any data work: what a backend holds depends on the largest layer (conv1), not on the head, so a
    // network of the lesson's shape tells.
    const probe = model ?? createModel({ init: recipe.init, seed: recipe.seed });
    try {
      checkBatchSizes(backend, probe, [[RECIPE.batchSize.flag, recipe.batchSize], [RECIPE.evalBatchSize.flag, recipe.evalBatchSize]]);
    } finally {
      if (probe !== model) probe.dispose();
    }
    // The same rules against an image folder's listing, before any of its files is decoded.
    const check = ({ trainFiles, split }: { trainFiles: number; split: boolean }) => void heldOutOf(Math.min(trainFiles, limits.limitTrain ?? Infinity), split);
    const info = await obtainData(resumed ? runFolder(source, resumed.state, resumed.dir, 'put the folder back as it was, or start a new run on it (without --resume)') : source, { ...hooks, check });
    if (resumed) checkSameData(resumed.dir, resumed.state.data, info);
    const data = await loadCifar(source.dataDir, { limitTrain: limits.limitTrain ?? undefined, limitTest: limits.limitTest ?? undefined, labeling: info.labeling });
    if (resumed?.state.classNames && resumed.state.classNames.join('\n') !== data.classNames.join('\n')) {
      throw new AlexnetError('USAGE', `the data in ${info.dir} has other classes than ${resumed.dir} was trained on (${data.classNames.length} where the run had ${resumed.state.classNames.length})`, `resume with the run's data (drop --data-dir, --dataset, --labels and --images), or start a new run`);
    }
    // The head has a unit a class: CIFAR-10's 10, CIFAR-100's 100 (or 20 coarse), an image folder's.
    model ??= createModel({ init: recipe.init, seed: recipe.seed, classes: data.classNames.length });
    const held = heldOutOf(data.train.count, data.test.count > 0);
    const { train: trainSplit, valid: validSplit } = held > 0 ? holdOut(data.train, held, recipe.seed) : { train: data.train, valid: data.test };
    const testSplit = data.test.count === 0 ? validSplit : data.test;
    const batches = Math.ceil(trainSplit.count / recipe.batchSize);
    const schedule = scheduleProblem(recipe, batches);
    if (schedule && resumed) throw new AlexnetError('CHECKPOINT', `cannot resume from ${resumed.dir}: ${schedule}`, 'the checkpoint was modified or damaged, or its data changed; resume from a complete one, or start a new run');
    if (schedule) throw new AlexnetError('USAGE', schedule, recipe.warmupEpochs > 0 ? 'pass another --warmup-epochs, more --epochs, or a smaller --batch-size' : 'pass more --epochs or a smaller --batch-size');
    if (resumed && resumed.state.batch >= batches) {
      throw new AlexnetError('CHECKPOINT', `cannot resume from ${resumed.dir}: state.json: batch ${resumed.state.batch} is past the epoch's ${batches} batches`, 'the checkpoint was modified or damaged; resume from a complete one');
    }
    // A resumed run keeps its settings unless told otherwise: the rounding depends on them (wasm's threads).
    const settings = { ...defaultSettings(), ...resumed?.state.settings, ...opts.settings };
    const runner = await backend.runner({ model, recipe, settings, optimizerState: loaded?.optimizer ?? null });
    try {
      if (runner.note) say(runner.note);
      if (loaded) say(`resuming from ${resumed!.dir} at epoch ${loaded.state.epoch}${loaded.state.batch > 0 ? `, batch ${loaded.state.batch}` : ''}`);
      // Each field as the schema's resume rule says (src/state.ts).
      const state = startingState(loaded?.state ?? null, {
        recipe,
        ...limits,
        keepBest: Boolean(opts.keepBest),
        backend: asked,
        classNames: data.classNames,
        data: { dataDir: source.dataDir, url: source.url, md5: source.md5, archiveMd5: info.archiveMd5, records: info.records, official: info.official, ...datasetFields(source) },
      });
      const writer = saveDir ? checkpointer(saveDir, backend.detail) : undefined;
      const critical = hooks.critical ?? ((_what, f) => f());
      const result = await trainLoop({
        model,
        runner,
        state,
        train: trainSplit,
        valid: validSplit,
        test: testSplit,
        checkpointer: writer && { save: (m, s, o, best) => critical(`the checkpoint in ${saveDir}${best && s.keepBest ? ' and its best/' : ''}`, () => writer.save(m, s, o, best), `continue with \`alexnet train --resume ${saveDir}\``) },
        signal: hooks.signal,
        onBatch: hooks.onBatch,
        onEval: hooks.onEval,
        onEpochEnd: hooks.onEpochEnd,
      });
      return { ...result, backend, settings: runner.settings, data: info, trainImages: trainSplit.count, validImages: validSplit === data.test ? null : validSplit.count, testImages: data.test.count, saveDir };
    } finally {
      await runner.dispose();
    }
  } finally {
    model?.dispose();
  }
}

/** What state.json records of a data set other than CIFAR-10 (nothing for CIFAR-10: its state.json stays as it was). */
function datasetFields(s: DataSource): Partial<TrainData> {
  const dataset = datasetOf(s);
  if (dataset === 'cifar10') return {};
  if (dataset === 'cifar100') return { dataset, labels: s.labels ?? 'fine' };
  return { dataset, images: s.images!.dir, skipBadImages: s.images!.skipBad };
}

const isDirectory = (p: string) => fsp.stat(p).then((s) => s.isDirectory(), () => false);

/** The format of the records a saved run's data is kept as, in its data dir. */
function recordedFormat(saved: TrainData): RecordFormat {
  if (saved.dataset === 'images') return folderFormat(recordsDirOf(saved.images!));
  return ARCHIVES[saved.dataset ?? 'cifar10'].spec.format;
}

/**
 * `source` holding a run's image folder to the folder it trained on (its digest in state.json): a file added,
 * removed or replaced since is refused, saying which, instead of training or scoring on other images (issue #35).
 * Runs of versions that recorded no digest, and other data, pass as they are.
 */
function runFolder(source: DataSource, state: SavedState, run: string, hint: string): DataSource {
  const saved = state.data;
  if (!source.images || saved?.dataset !== 'images' || path.resolve(saved.images!) !== path.resolve(source.images.dir) || !/^[0-9a-f]{64}$/.test(saved.archiveMd5)) return source;
  return { ...source, images: { ...source.images, expect: { digest: saved.archiveMd5, run, hint } } };
}

/** The data source a saved run's state.json records. */
function savedSource(saved: TrainData): Pick<DataSource, 'dataset' | 'labels' | 'images'> {
  if (saved.dataset === 'images') return { dataset: undefined, labels: undefined, images: { dir: saved.images!, skipBad: saved.skipBadImages ?? false } };
  return { dataset: saved.dataset ?? 'cifar10', labels: saved.labels, images: null };
}

/** state.json of the run to resume, checked against the flags given with --resume. */
async function readResumable(opts: TrainingOptions): Promise<{ dir: string; state: SavedState }> {
  const cut = await cutSaveLeftovers(opts.resume!);
  if (cut.length > 0) {
    throw new AlexnetError('CHECKPOINT', `cannot resume from ${opts.resume}: nothing was saved yet (its first save was cut short: ${cut.slice(0, 3).join(', ')}, no state.json)`, `start the run anew: the command that started it (\`alexnet train ... --save ${opts.resume}\`) removes what the cut save left`);
  }
  const state = await readState(opts.resume!);
  checkSameDataset(opts.resume!, state, opts.data);
  // A resumed run takes its recipe and limits from the checkpoint (the schema's `fixed` fields); a flag that says
  // otherwise is an error.
  const differs = fixedConflict(state, { recipe: opts.recipe, ...opts.limits }, opts.explicit);
  if (differs !== null) {
    const show = (v: unknown) => (v === null ? 'none' : String(v));
    throw new AlexnetError('USAGE', `${differs.flag} ${show(differs.asked)} differs from the checkpoint's ${show(differs.saved)}`, `drop ${differs.flag} to resume with the saved recipe, or start a new run without --resume`);
  }
  // The rule of a new total (issue #24): a resume gives exactly the numbers of one run. A schedule laid over the
  // run's epochs (step, cosine, onecycle) would be stretched by a new total, so --epochs may change the total only
  // where the rate does not depend on it (constant, after any warm-up); whatever a new run refuses, so does a resume.
  const epochs = opts.explicit.has('epochs') ? opts.recipe.epochs : state.recipe.epochs;
  if (epochs !== state.recipe.epochs && state.recipe.schedule !== 'constant') {
    throw new AlexnetError('USAGE', `--epochs ${epochs} would stretch the run's ${state.recipe.schedule} schedule, laid over its ${state.recipe.epochs} epochs, and no single run gives such numbers`, state.epoch >= state.recipe.epochs ? `start a new run with --epochs ${epochs} (a schedule's length is set when the run starts)` : `drop --epochs to finish the run's ${state.recipe.epochs} epochs, or start a new run with --epochs ${epochs}`);
  }
  const problem = combinationProblem({ ...state.recipe, epochs });
  if (problem) throw new AlexnetError('USAGE', problem, `pass more --epochs`);
  if (stoppedEarly(state)) {
    await tidyRunDir(opts.resume!);
    throw new AlexnetError('USAGE', `the run ${earlyStopText(state)}`, `it is finished: evaluate it with \`alexnet eval --model ${opts.resume}\`${state.keepBest ? ` (its best epoch: --model ${path.join(opts.resume!, BEST_DIR)})` : ''}, or start a new run`);
  }
  if (state.epoch >= epochs) {
    await tidyRunDir(opts.resume!);
    const done = `${state.epoch} epoch${state.epoch === 1 ? '' : 's'}${state.batch > 0 ? ` and ${state.batch} batches` : ''}`;
    throw new AlexnetError('USAGE', `the checkpoint has already done ${done}${epochs !== state.recipe.epochs ? `, as many as --epochs ${epochs} asks for` : ''}`, state.recipe.schedule === 'constant' ? `pass --epochs N with N > ${state.epoch} to train further` : `the run is finished: to train longer, start a new run with more --epochs (a ${state.recipe.schedule} schedule's length is set when the run starts)`);
  }
  return { dir: opts.resume!, state };
}

/**
 * --dataset, --labels or --images given with --resume must name the run's own data, said before any download or
 * decoding: `--dataset` tried a download, or decoded `--images` into the default data dir, then was refused by
 * record count without being named.
 */
function checkSameDataset(dir: string, state: SavedState, asked: DataRequest): void {
  if (!state.data || !asked.named?.length) return;
  const saved = savedSource(state.data);
  const runs = { '--dataset': datasetOf({ ...asked, images: null }), '--labels': asked.labels ?? 'fine', '--images': asked.images?.dir ?? null };
  const had = { '--dataset': saved.images ? 'images' : (saved.dataset ?? 'cifar10'), '--labels': saved.labels ?? 'fine', '--images': saved.images?.dir ?? null };
  for (const flag of asked.named) {
    if (runs[flag] === had[flag]) continue;
    const was = had['--images'] ? `the image folder ${had['--images']}` : `${had['--dataset']}${had['--dataset'] === 'cifar100' ? ` (${had['--labels']} labels)` : ''}`;
    throw new AlexnetError('USAGE', `${flag} ${runs[flag] ?? ''}`.trimEnd() + ` differs from the data ${dir} was trained on: ${was}`, `drop ${flag} to resume on the run's data, or start a new run without --resume`);
  }
}

/**
 * Where a command on a saved run reads its data (issue #14): the run's own data dir, URL and MD5 (state.json),
 * unless the user said otherwise on the command line.
 */
export function dataSource(asked: DataRequest, saved: TrainData | undefined): DataSource {
  const { explicit: _, ...source } = asked;
  return saved && !asked.explicit ? { ...source, dataDir: saved.dataDir, url: saved.url, md5: saved.md5, ...savedSource(saved) } : source;
}

/** A resumed run must see the data it was trained on: another archive or record count is refused (issue #13). */
function checkSameData(dir: string, saved: TrainState['data'], now: DataInfo): void {
  if (!saved) return;
  const differs = saved.records !== now.records ? `${now.records} records where the run had ${saved.records}` : saved.archiveMd5 !== 'unknown' && now.archiveMd5 !== 'unknown' && saved.archiveMd5 !== now.archiveMd5 ? `archive MD5 ${now.archiveMd5} where the run had ${saved.archiveMd5}` : null;
  if (differs) {
    throw new AlexnetError('USAGE', `the data in ${now.dir} is not what ${dir} was trained on: ${differs}`, `resume with the run's data (drop --data-dir/--url to use ${saved.dataDir}), or start a new run`);
  }
}

export interface StartOptions {
  gpu: boolean;
  quiet?: boolean;
  /** The backend options the command line set (--threads...): one for another named backend is refused. */
  settings?: Settings;
  say: (line: string) => void;
  /** Whether the command needs numbers (train, eval, predict); bench and summary run on Dawn's null adapter too. */
  computes?: boolean;
}

/**
 * The start of every command that runs the network: the backend asked for, its line said, and the checks that it
 * can do what is asked (a backend's option for another named backend is refused before it starts, since it may
 * fail to start for its own reasons).
 */
export async function startBackend(choice: BackendChoice, opts: StartOptions): Promise<ActiveBackend> {
  const settings = opts.settings ?? {};
  if (choice !== 'auto') optionsProblem(choice, choice, settings);
  const backend = await initBackend(choice, { gpu: opts.gpu, quiet: opts.quiet });
  opts.say(`backend: ${backend.detail}`);
  if (opts.computes ?? true) checkComputes(backend);
  const stray = optionsProblem(choice, backend.name, settings);
  if (stray) opts.say(stray);
  return backend;
}

/** Training, evaluating and predicting need numbers: Dawn's null adapter (ALEXNET_DAWN_FLAGS) computes none. */
function checkComputes(backend: ActiveBackend): void {
  if (!backend.computes) {
    throw new AlexnetError('USAGE', `${backend.name} on ${backend.where} computes nothing: only \`alexnet bench\` runs there (it times the host's part of a step)`, 'unset ALEXNET_DAWN_FLAGS (or drop backend=null from it)');
  }
}

/** Batches larger than the backend holds for this model are refused before any data work (issue #13). */
export function checkBatchSizes(backend: ActiveBackend, model: tfl.LayersModel, sizes: [flag: string, size: number][]): void {
  const max = backend.maxBatch(model);
  for (const [flag, size] of sizes) {
    if (size > max) throw new AlexnetError('USAGE', `${flag} ${size} is more than the ${backend.name} backend holds (${max})`, `e.g. ${flag} ${Math.min(max, 512)}`);
  }
}

export interface EvaluationOptions {
  modelDir: string;
  data: DataRequest;
  /** null: the run's --eval-batch-size (its state.json), else the seed's. */
  batchSize: number | null;
  /** null: the run's --limit-test where it had one. */
  limitTest: number | null;
  /** --tta: null, the run's (its recipe's tta), else none. */
  tta: Tta | null;
  backend: BackendChoice;
  gpu: boolean;
  settings: Settings;
  quiet?: boolean;
}

/**
 * Evaluates a saved model. By default it scores what the run validated on (issue #14): its data, its --limit-test,
 * its evaluation batch size and its backend settings, so that its seed-style figures equal the last epoch's Valid Loss and Valid Acc.
 */
export async function runEvaluation(opts: EvaluationOptions, hooks: ObtainHooks = {}): Promise<{ report: EvalReport; data: DataInfo }> {
  const say = hooks.log ?? (() => {});
  await checkModelDir(opts.modelDir);
  const state = await readStateIfAny(opts.modelDir); // validated now, before any download; an exported model has none
  // A checkpoint may come from elsewhere: its recorded data is used only where it is already on this machine, and
  // its URL is never fetched nor its data dir written (it fetched the recorded URL and locked and unpacked in the
  // recorded folder: issue #20). Otherwise the data the user asks for, or the defaults.
  const recorded = state?.data && !opts.data.explicit && (await checkExtracted(state.data.dataDir, recordedFormat(state.data))) ? state.data : undefined;
  // An image folder that is here is the run's data wherever its records went: they are made again in the data
  // dir asked for (the recorded one is never written).
  const folder = state?.data?.dataset === 'images' && !opts.data.explicit && !recorded && (await isDirectory(state.data.images!)) ? state.data : undefined;
  if (state?.data && !opts.data.explicit && !recorded) say(`the run's data (${state.data.dataDir}) is not on this machine; using ${folder ? `the image folder ${folder.images} and ` : ''}${opts.data.dataDir}`);
  const asked = folder ? { ...dataSource(opts.data, undefined), ...savedSource(folder) } : dataSource(opts.data, recorded && { ...recorded, url: opts.data.url, md5: opts.data.md5 });
  // The run's own folder, unless another was asked for: a folder changed since scored another held-out set.
  const source = state && !opts.data.explicit ? runFolder(asked, state, opts.modelDir, `put the folder back as it was, or evaluate on it as it is now with \`alexnet eval --model ${opts.modelDir} --images ${state.data?.images ?? 'DIR'}\``) : asked;
  const limitTest = opts.limitTest ?? state?.limitTest ?? null;
  const batchSize = opts.batchSize ?? state?.recipe.evalBatchSize ?? RECIPE.evalBatchSize.default!;
  // The backend first: `eval --gpu` without a GPU fails at once, not after a 170 MB download (issue #19).
  const backend = await startBackend(opts.backend, { gpu: opts.gpu, quiet: opts.quiet, settings: opts.settings, say });
  const { model, epochs } = await loadTrainedModel(opts.modelDir, state);
  try {
    checkBatchSizes(backend, model, [['--batch-size', batchSize]]);
    const info = await obtainData(source, hooks);
    const classes = model.outputs[0]!.shape[1]!;
    if (info.labeling.classes !== classes) {
      throw new AlexnetError('USAGE', `the model in ${opts.modelDir} has ${classes} classes; the data (${info.labeling.format.title}${source.dataset === 'cifar100' ? `, ${source.labels ?? 'fine'} labels` : ''}) has ${info.labeling.classes}`, classes === 100 ? 'evaluate it on its data: --dataset cifar100' : classes === 20 ? 'evaluate it on its data: --dataset cifar100 --labels coarse' : 'evaluate it on the data it was trained on (--dataset, --labels or --images)');
    }
    // An image folder without test/: the run's held-out validation images, chosen as training chose them.
    const heldOut = info.labeling.format.emptyTest && state !== null && state.recipe.validSplit > 0;
    const data = await loadCifar(source.dataDir, { limitTrain: heldOut ? (state.limitTrain ?? undefined) : 0, limitTest: limitTest ?? undefined, labeling: info.labeling });
    // Scores mean something only where label i is the class the model calls i: a folder of other class names (as
    // many) was scored silently.
    if (state?.classNames && state.classNames.join('\n') !== data.classNames.join('\n')) {
      const list = (n: string[]) => `${n.slice(0, 4).join(', ')}${n.length > 4 ? ', ...' : ''}`;
      throw new AlexnetError('USAGE', `the data's classes (${list(data.classNames)}) are not the ones ${opts.modelDir} was trained on (${list(state.classNames)})`, 'evaluate it on data with its classes, named as its training folders were');
    }
    const split = heldOut && data.test.count === 0 ? holdOut(data.train, heldOutCount(state.recipe.validSplit, data.train.count), state.recipe.seed).valid : data.test;
    say(`model ${opts.modelDir}${epochs !== null ? ` (trained ${epochs} epochs)` : ''} on ${split.count} ${split === data.test ? 'test' : 'held-out validation (the folder has no test/)'} images`);
    // The run's settings too (wasm's threads round differently), so that its figures equal the last epoch's.
    const settings = { ...defaultSettings(), ...state?.settings, ...opts.settings };
    const runner = await backend.runner({ model, recipe: state?.recipe ?? lessonRecipe(0), settings });
    try {
      // Names from the data being evaluated: they are what the labels mean.
      const tta = opts.tta ?? state?.recipe.tta ?? 'none';
      if (tta !== 'none') say(`--tta ${tta}: each image's logits averaged with its mirror's`);
      return { report: await evaluateReport(split, batchSize, data.classNames, runner, { tta, smoothing: state?.recipe.labelSmoothing ?? 0 }), data: info };
    } finally {
      await runner.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** Classes `predict` shows per image unless --top says otherwise. */
const DEFAULT_TOP = 3;

export interface PredictionOptions {
  modelDir: string;
  /** PNG or JPEG files, any size. */
  images: string[];
  /** Null: 3, or all of the model's classes where it has fewer. */
  top: number | null;
  backend: BackendChoice;
  gpu: boolean;
  quiet?: boolean;
}

/**
 * The `top` most probable classes of each image. Every image is read and prepared before the model runs, one at a
 * time, stopping at the first that fails (all at once, 1,000 files hit EMFILE under `ulimit -n 256`, and twenty
 * 100-megapixel JPEGs took 1.2 GB and went on decoding after the first error: issue #20).
 */
export async function runPrediction(opts: PredictionOptions, hooks: { log?: (line: string) => void } = {}): Promise<{ predictions: Prediction[]; classNames: string[] }> {
  await checkModelDir(opts.modelDir);
  const images: Uint8Array[] = [];
  for (const file of opts.images) {
    const bytes = await readRegularFile(file, READ_CAPS.image, 'IMAGE', file, 'pass paths of PNG or JPEG files');
    images.push(toCifarImage(await decodeImage(bytes, file)));
  }
  await startBackend(opts.backend, { gpu: opts.gpu, quiet: opts.quiet, say: hooks.log ?? (() => {}) });
  const { model, classNames } = await loadTrainedModel(opts.modelDir);
  try {
    if (opts.top !== null && opts.top > classNames.length) throw new AlexnetError('USAGE', `--top ${opts.top} is more than the model's ${classNames.length} classes`, `e.g. --top ${Math.min(3, classNames.length)}, or --top ${classNames.length} for all`);
    return { predictions: await predictTop(model, images, classNames, opts.top ?? Math.min(DEFAULT_TOP, classNames.length)), classNames };
  } finally {
    model.dispose();
  }
}

/** The network, layer by layer, built on the backend asked for (its output shape for a zero input included). */
export async function runSummary(opts: { backend: BackendChoice; gpu: boolean; quiet?: boolean; classes?: number }, hooks: { log?: (line: string) => void } = {}): Promise<ModelSummary> {
  await startBackend(opts.backend, { gpu: opts.gpu, quiet: opts.quiet, say: hooks.log ?? (() => {}), computes: false });
  const model = createModel({ seed: 0, classes: opts.classes });
  try {
    return summarize(model);
  } finally {
    model.dispose();
    tf.disposeVariables();
  }
}
