import { randomInt } from 'node:crypto';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import * as fsp from 'node:fs/promises';
import { diskError } from '../data/download.js';
import { writeFileAtomic } from '../files.js';
import { acquireLock } from '../lock.js';
import { initBackend, parseBackendChoice, type BackendChoice } from '../backends/index.js';
import { loadCheckpoint, readState, saveCheckpoint, type SavedState } from '../checkpoint.js';
import { loadCifar, type DataInfo } from '../data/dataset.js';
import { AlexnetError } from '../errors.js';
import { INIT_CHOICES, type Init } from '../model.js';
import { epochJson, epochLine, hhmmss, round6 } from '../report.js';
import { DEFAULT_RECIPE, train, type BatchProgress, type Checkpointer, type Recipe, type TrainState } from '../train.js';
import { critical, interruptSignal, isStdoutClosed, logLine, parseIntFlag, parsePositiveFloat, parseThreads, stderrIsTTY } from './common.js';
import { dataFlagsGiven, downloadOptions, runDataSource, runDownload, type DataFlags, type DownloadOptions } from './download.js';

export interface TrainFlags extends DataFlags {
  epochs?: string;
  batchSize?: string;
  lr?: string;
  evalBatchSize?: string;
  seed?: string;
  init?: string;
  backend?: string;
  gpu?: boolean;
  limitTrain?: string;
  limitTest?: string;
  threads?: string;
  json?: boolean;
  save?: string;
  resume?: string;
}

export interface TrainCommandOptions {
  data: DownloadOptions;
  recipe: Recipe;
  /** Recipe fields the user set on the command line (checked against a resumed checkpoint). */
  explicit: Set<keyof Recipe | 'limitTrain' | 'limitTest'>;
  backend: BackendChoice;
  gpu: boolean;
  limitTrain: number | null;
  limitTest: number | null;
  threads: number;
  /** Whether --threads was given; if not, a resumed run keeps the checkpoint's count (the same rounding). */
  threadsExplicit: boolean;
  /** Whether --epochs was given; if not, a resumed run goes on to the checkpoint's target. */
  epochsExplicit: boolean;
  /** Whether any of --data-dir, --url, --md5, --no-verify was given; if not, a resumed run uses the checkpoint's. */
  dataExplicit: boolean;
  json: boolean;
  quiet: boolean;
  save: string | null;
  resume: string | null;
}

/** Turns flag strings into typed options, once. `isExplicit` says whether a flag came from the command line. */
export function trainOptions(flags: TrainFlags, isExplicit: (flag: string) => boolean): TrainCommandOptions {
  const init = flags.init ?? 'pytorch';
  if (!(INIT_CHOICES as readonly string[]).includes(init)) {
    throw new AlexnetError('USAGE', `unknown --init ${JSON.stringify(init)}`, `use one of ${INIT_CHOICES.join(', ')}`);
  }
  const recipe: Recipe = {
    epochs: flags.epochs !== undefined ? parseIntFlag('--epochs', 1, undefined, DEFAULT_RECIPE.epochs)(flags.epochs) : DEFAULT_RECIPE.epochs,
    batchSize: flags.batchSize !== undefined ? parseIntFlag('--batch-size', 1, 65536, DEFAULT_RECIPE.batchSize)(flags.batchSize) : DEFAULT_RECIPE.batchSize,
    evalBatchSize: flags.evalBatchSize !== undefined ? parseIntFlag('--eval-batch-size', 1, 65536, DEFAULT_RECIPE.evalBatchSize)(flags.evalBatchSize) : DEFAULT_RECIPE.evalBatchSize,
    lr: flags.lr !== undefined ? parsePositiveFloat('--lr')(flags.lr) : DEFAULT_RECIPE.lr,
    // No --seed: a fresh one, reported in --json and saved in checkpoints so the run can be repeated.
    seed: flags.seed !== undefined ? parseIntFlag('--seed', 0, 2 ** 32 - 1)(flags.seed) : randomInt(2 ** 31),
    init: init as Init,
  };
  const explicit = new Set<keyof Recipe | 'limitTrain' | 'limitTest'>();
  for (const [flag, key] of [['batchSize', 'batchSize'], ['evalBatchSize', 'evalBatchSize'], ['lr', 'lr'], ['seed', 'seed'], ['init', 'init'], ['limitTrain', 'limitTrain'], ['limitTest', 'limitTest']] as const) {
    if (isExplicit(flag)) explicit.add(key);
  }
  return {
    data: downloadOptions(flags),
    recipe,
    explicit,
    backend: parseBackendChoice(flags.backend ?? 'auto'),
    gpu: flags.gpu ?? false,
    limitTrain: flags.limitTrain !== undefined ? parseIntFlag('--limit-train', 1, undefined, 5000)(flags.limitTrain) : null,
    limitTest: flags.limitTest !== undefined ? parseIntFlag('--limit-test', 1, undefined, 1000)(flags.limitTest) : null,
    threads: parseThreads(flags.threads),
    threadsExplicit: isExplicit('threads'),
    epochsExplicit: isExplicit('epochs'),
    dataExplicit: dataFlagsGiven(isExplicit),
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
    save: flags.save !== undefined ? path.resolve(flags.save) : null,
    resume: flags.resume !== undefined ? path.resolve(flags.resume) : null,
  };
}

/** A resumed run takes its recipe from the checkpoint; a flag that says otherwise is an error, not ignored. */
function checkResume(opts: TrainCommandOptions, state: TrainState): void {
  const saved: Record<string, unknown> = { ...state.recipe, limitTrain: state.limitTrain, limitTest: state.limitTest };
  const asked: Record<string, unknown> = { ...opts.recipe, limitTrain: opts.limitTrain, limitTest: opts.limitTest };
  for (const key of opts.explicit) {
    if (asked[key] !== saved[key]) {
      const flag = '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
      throw new AlexnetError('USAGE', `${flag} ${String(asked[key])} differs from the checkpoint's ${String(saved[key])}`, `drop ${flag} to resume with the saved recipe, or start a new run without --resume`);
    }
  }
  const epochs = opts.epochsExplicit ? opts.recipe.epochs : state.recipe.epochs;
  if (state.epoch >= epochs && state.batch === 0) {
    throw new AlexnetError('USAGE', `the checkpoint has already done ${state.epoch} epochs`, `pass --epochs N with N > ${state.epoch} to train further`);
  }
}

/** A resumed run must see the data it was trained on: another archive or record count is refused (issue #13). */
function checkSameData(dir: string, saved: TrainState['data'], now: DataInfo): void {
  if (!saved) return;
  const differs = saved.records !== now.records ? `${now.records} records where the run had ${saved.records}` : saved.archiveMd5 !== 'unknown' && now.archiveMd5 !== 'unknown' && saved.archiveMd5 !== now.archiveMd5 ? `archive MD5 ${now.archiveMd5} where the run had ${saved.archiveMd5}` : null;
  if (differs) {
    throw new AlexnetError('USAGE', `the data in ${now.dir} is not what ${dir} was trained on: ${differs}`, `resume with the run's data (drop --data-dir/--url to use ${saved.dataDir}), or start a new run`);
  }
}

export async function runTrain(opts: TrainCommandOptions): Promise<void> {
  const say = opts.quiet ? () => {} : logLine;
  const resumed = opts.resume ? await loadCheckpointFirst(opts) : null;
  const saveDir = opts.save ?? opts.resume;
  // Checked and claimed before anything slow: a --save that cannot be written fails now, not after an epoch,
  // and a second run into the same folder is refused (issue #13).
  const release = saveDir ? await claimSaveDir(saveDir, say) : null;
  try {
    await trainInto(opts, resumed, saveDir, say);
  } finally {
    await release?.();
  }
}

async function trainInto(opts: TrainCommandOptions, resumed: { dir: string; state: SavedState } | null, saveDir: string | null, say: (m: string) => void): Promise<void> {
  const limitTrain = resumed ? resumed.state.limitTrain : opts.limitTrain;
  const limitTest = resumed ? resumed.state.limitTest : opts.limitTest;
  // `--resume DIR` alone continues the interrupted run exactly: its target epochs and its data (issue #14).
  const recipe = resumed ? { ...resumed.state.recipe, epochs: opts.epochsExplicit ? opts.recipe.epochs : resumed.state.recipe.epochs } : opts.recipe;
  const saved = resumed?.state.data;
  const source = runDataSource(opts.data, saved, opts.dataExplicit);

  // The backend first: a missing GPU (--gpu) fails at once, not after a 170 MB download.
  const backend = await initBackend(opts.backend, { gpu: opts.gpu });
  say(`backend: ${backend.detail}`);
  for (const [flag, size] of [['--batch-size', recipe.batchSize], ['--eval-batch-size', recipe.evalBatchSize]] as const) {
    if (size > backend.maxBatch) {
      throw new AlexnetError('USAGE', `${flag} ${size} is more than the ${backend.name} backend holds (${backend.maxBatch})`, `e.g. ${flag} ${Math.min(backend.maxBatch, 512)}`);
    }
  }
  const info = await runDownload(source);
  if (resumed) checkSameData(resumed.dir, saved, info);
  const data = await loadCifar(source.dataDir, { limitTrain: limitTrain ?? undefined, limitTest: limitTest ?? undefined });
  if (resumed && resumed.state.batch >= Math.ceil(data.train.count / recipe.batchSize)) {
    throw new AlexnetError('CHECKPOINT', `cannot resume from ${resumed.dir}: state.json: batch ${resumed.state.batch} is past the epoch's ${Math.ceil(data.train.count / recipe.batchSize)} batches`, 'the checkpoint was modified or damaged; resume from a complete one');
  }
  // A resumed run keeps its thread count unless told otherwise: the rounding depends on it.
  const threads = !opts.threadsExplicit && resumed?.state.threads ? resumed.state.threads : opts.threads;
  const used = backend.threadsFor(threads);
  if (used !== undefined && used > 1) say(`threads: ${used} (each batch is shared out among them; --threads 1 for one)`);
  // Loading the weights needs the backend, so the model is read only now.
  const resume = resumed ? await loadCheckpoint(resumed.dir, resumed.state) : undefined;
  if (resume) say(`resuming from ${resumed!.dir} at epoch ${resume.state.epoch}${resume.state.batch > 0 ? `, batch ${resume.state.batch}` : ''}`);

  const ckpt = saveDir ? checkpointer(saveDir, backend.detail) : undefined;
  const interrupt = interruptSignal();
  const bar = opts.quiet || !stderrIsTTY() ? null : progressBar();
  const t0 = performance.now();
  try {
    const result = await train({
      recipe,
      train: data.train,
      test: data.test,
      classNames: data.classNames,
      data: { dataDir: source.dataDir, url: source.url, md5: source.md5, archiveMd5: info.archiveMd5, records: info.records, official: info.official },
      limitTrain,
      limitTest,
      resume,
      checkpointer: ckpt && { save: (m, s) => critical(() => ckpt.save(m, s)) },
      signal: interrupt.signal,
      backend,
      threads,
      onBatch: bar?.onBatch,
      onEpochEnd: (m) => {
        bar?.stop();
        process.stdout.write((opts.json ? epochJson(m) : epochLine(m)) + '\n');
      },
    });
    bar?.stop();
    if (result.interrupted && isStdoutClosed()) throw new AlexnetError('PIPE', 'stdout was closed'); // checkpoint saved; quietly
    if (result.interrupted) {
      const where = `epoch ${result.state.epoch}, batch ${result.state.batch}`;
      throw new AlexnetError(
        'INTERRUPTED',
        `interrupted by ${interrupt.which() ?? 'a signal'} at ${where}${saveDir ? `; checkpoint saved in ${saveDir}` : ''}`,
        saveDir ? `continue with \`alexnet train --resume ${saveDir}\`` : 'pass --save DIR to be able to resume an interrupted run',
      );
    }
    if (opts.json) {
      const last = result.history[result.history.length - 1];
      const seconds = (performance.now() - t0) / 1000;
      process.stdout.write(JSON.stringify({
        type: 'summary',
        backend: backend.name,
        gpu: backend.gpu,
        threads: used ?? 1,
        epochs: result.history.length,
        seed: recipe.seed,
        batchSize: recipe.batchSize,
        lr: recipe.lr,
        trainImages: data.train.count,
        testImages: data.test.count,
        data: { dir: info.dir, source: info.source, archiveMd5: info.archiveMd5, records: info.records, official: info.official },
        finalValidAcc: last ? round6(last.validAcc) : null,
        bestValidAcc: round6(Math.max(...result.history.map((h) => h.validAcc))),
        seconds: round6(seconds),
        savedTo: saveDir,
      }) + '\n');
    }
    if (saveDir) say(`checkpoint in ${saveDir}`);
  } finally {
    bar?.stop();
    interrupt.dispose();
  }
}

/** Saves checkpoints in `dir`, each followed by report.html (the curves and confusion matrix so far). */
function checkpointer(dir: string, backend: string): Checkpointer {
  return {
    save: async (model, state) => {
      try {
        await saveCheckpoint(dir, model, state);
        const { renderReport, REPORT_FILE } = await import('../report-html.js');
        await writeFileAtomic(path.join(dir, REPORT_FILE), await renderReport(state, { generated: new Date(), backend }));
      } catch (e) {
        throw diskError(e, `saving the checkpoint in ${dir}`, `free space there (the previous checkpoint in ${dir} is whole), then \`alexnet train --resume ${dir}\``) ?? e;
      }
    },
  };
}

const LOCK_FILE = '.alexnet-train.lock';

/** Makes `dir` (or finds it), checks that it can be written, and takes its lock; returns the release. */
async function claimSaveDir(dir: string, say: (m: string) => void): Promise<() => Promise<void>> {
  const hint = 'pass --save with a folder you can write to';
  try {
    // A recursive mkdir reports ENOENT on a read-only file system; a plain one then says why.
    const created = await fsp.mkdir(dir, { recursive: true }).catch((e) => ((e as NodeJS.ErrnoException).code === 'ENOENT' ? fsp.mkdir(dir).then(() => dir) : Promise.reject(e)));
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    const release = await acquireLock(path.join(dir, LOCK_FILE), {
      what: `a training run saving into ${dir}`,
      wait: false,
      hint: 'wait for it to finish, or pass another --save DIR',
      onNote: say,
    });
    return async () => {
      await release();
      // A folder made for a run that then saved nothing (a bad flag, no data) is not left behind.
      if (created !== undefined) await fsp.rmdir(dir).catch(() => {});
    };
  } catch (e) {
    if (e instanceof AlexnetError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new AlexnetError('IO', `cannot save into ${dir}: it is a file, not a folder`, hint);
    throw diskError(e, `preparing ${dir} for checkpoints`, hint) ?? e;
  }
}

async function loadCheckpointFirst(opts: TrainCommandOptions): Promise<{ dir: string; state: SavedState }> {
  const state = await readState(opts.resume!);
  checkResume(opts, state);
  return { dir: opts.resume!, state };
}

/** A per-epoch bar on stderr, redrawn at most ~10 times a second. */
function progressBar(): { onBatch: (p: BatchProgress) => void; stop: () => void } {
  let bar: SingleBar | null = null;
  let epoch = -1;
  let lastDrawn = 0;
  let t0 = 0;
  let startImages = 0;
  let startBatch = 0;
  return {
    onBatch: (p) => {
      const now = performance.now();
      if (p.epoch !== epoch || bar === null) {
        bar?.stop();
        epoch = p.epoch;
        // Rates count from the first batch seen, which is already done when this is called.
        t0 = now;
        startImages = p.images;
        startBatch = p.batch;
        bar = new SingleBar({
          stream: process.stderr,
          format: `epoch ${p.epoch} [{bar}] {value}/{total} batches | {ips} img/s | loss {loss} | ETA {remaining}`,
          hideCursor: true,
          clearOnComplete: true,
          fps: 10,
        });
        bar.start(p.batches, p.batch, { ips: '-', loss: '-', remaining: '-' });
      }
      if (now - lastDrawn >= 100) {
        lastDrawn = now;
        const seconds = (now - t0) / 1000;
        const measured = p.batch > startBatch && seconds > 0;
        const eta = measured ? hhmmss(((p.batches - p.batch) * seconds) / (p.batch - startBatch)) : '-';
        const ips = measured ? ((p.images - startImages) / seconds).toFixed(0) : '-';
        // The loss the training loop last read from the device: the bar never reads on its own (issue #17).
        bar.update(p.batch, { ips, loss: p.runningLoss === null ? '-' : p.runningLoss.toFixed(4), remaining: eta });
      }
    },
    stop: () => {
      bar?.stop();
      bar = null;
    },
  };
}
