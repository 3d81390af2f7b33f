// A run's folder (`--save DIR`) and the best epoch's checkpoint inside it (`DIR/best`, --keep-best), as one thing:
// - one lock covers both: a second writer of DIR, or of DIR/best as a --save or --resume of its own, is refused
//   with the owner's pid (issue #29: `train --save D/best` beside a run keeping its best there was not);
// - a new run never replaces a run silently: a folder that holds one is refused, unless --overwrite clears it
//   (issue #24: a finished run's state.json was replaced, and its best/ left to pass for the new run's);
// - state.json names the best it kept (epoch and weights hash). It is written before best/, so a save cut between
//   the two leaves best/ one epoch behind while the run's own files are the best's: the next run copies them over
//   (repairs). Any other mismatch (best/ removed, replaced, or not a folder) is said, never carried forward;
// - best/ is never written through a symbolic link, and what killed runs left there is cleaned with the rest.

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { METRICS_FILE, MODEL_FILE, STATE_FILE, checkpointFiles, hasCheckpoint, readCheckpointFiles, readStateIfAny, tidyCheckpoint, writeCheckpoint } from './checkpoint.js';
import { MOMENTUM_NAME, WEIGHTS_NAME, type SavedState } from './state.js';
import { AlexnetError } from './errors.js';
import { ATOMIC_TEMPORARIES, diskError, makeDirs, removeMadeDirs, writeFileAtomic } from './files.js';
import { REPORT_FILE, renderReport } from './report-html.js';
import { acquireLock, lockHolder } from './lock.js';
import type { Checkpointer } from './train.js';

/** The best epoch's checkpoint (--keep-best), inside the run's folder. */
export const BEST_DIR = 'best';
const LOCK_FILE = '.alexnet-train.lock';
/** What a run writes into its folder: these, and its weights and momentum files. */
const RUN_FILES = [STATE_FILE, MODEL_FILE, METRICS_FILE, REPORT_FILE];
const isRunFile = (name: string) => RUN_FILES.includes(name) || WEIGHTS_NAME.test(name) || MOMENTUM_NAME.test(name);

export interface ClaimOptions {
  /** Whether the run continues the one in this folder (--resume DIR, saving there); else a new run starts in it. */
  continues: boolean;
  /** --overwrite: a run found in the folder is removed (its best/ too) instead of refused. */
  overwrite: boolean;
  say: (line: string) => void;
}

/**
 * Makes `dir` (or finds it), takes its lock, cleans what killed runs left, and makes sure a new run replaces no
 * run unasked; returns the release.
 */
export async function claimRunDir(dir: string, opts: ClaimOptions): Promise<() => Promise<void>> {
  await refuseBestOfAnother(dir);
  const created = await makeDirs(dir, '--save folder', 'pass --save with a folder you can write to');
  let release: (() => Promise<void>) | null = null;
  try {
    if (!(await fsp.stat(dir)).isDirectory()) throw new AlexnetError('IO', `cannot save into ${dir}: it is a file, not a folder`, 'pass --save with a folder you can write to');
    release = await acquireLock(path.join(dir, LOCK_FILE), {
      what: `a training run saving into ${dir}`,
      wait: false,
      hint: 'wait for it to finish, or pass another --save DIR',
      onNote: opts.say,
    });
    await tidyCheckpoint(dir);
    if ((await bestKind(dir)) === 'folder') await tidyCheckpoint(path.join(dir, BEST_DIR));
    if (!opts.continues) await refuseOrClear(dir, opts);
  } catch (e) {
    await release?.();
    await removeMadeDirs(dir, created);
    if (e instanceof AlexnetError) throw e;
    throw diskError(e, `preparing ${dir} for checkpoints`, ', or pass --save with another folder') ?? e;
  }
  return async () => {
    await release!();
    // A folder made for a run that then saved nothing (a bad flag, no data) is not left behind.
    await removeMadeDirs(dir, created);
  };
}

/** `D/best` of a run in D is that run's: saving or resuming into it is refused, naming the run's pid if it trains. */
async function refuseBestOfAnother(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  if (path.basename(dir) !== BEST_DIR || parent === dir) return;
  const owner = await lockHolder(path.join(parent, LOCK_FILE));
  if (owner) throw new AlexnetError('LOCKED', `${dir} is the best checkpoint of the run training in ${parent} (pid ${owner.pid}; lock ${path.join(parent, LOCK_FILE)})`, `pass another --save DIR (to go on from this best epoch: --resume ${dir} --save NEW_DIR)`);
  if (await hasCheckpoint(parent)) throw new AlexnetError('USAGE', `${dir} is the best checkpoint of the run in ${parent}: only that run writes it`, `pass another --save DIR (to go on from this best epoch: --resume ${dir} --save NEW_DIR)`);
}

/** The run's files and best/ in `dir`, state.json first (the order they are removed in). */
async function runEntries(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => isRunFile(n) || n === BEST_DIR).sort((a, b) => Number(b === STATE_FILE) - Number(a === STATE_FILE));
}

/**
 * What a first save cut short left in `dir` (weights, model.json, metrics.jsonl: its state.json, renamed last, never
 * came), or an --overwrite cut short after state.json went: a run's files and no state.json, so no run. Empty where
 * `dir` holds a run, nothing, or a TensorFlow.js export (model.json with `userDefinedMetadata`, which only export writes).
 */
export async function cutSaveLeftovers(dir: string): Promise<string[]> {
  if (await hasCheckpoint(dir)) return [];
  const found = await runEntries(dir).catch(() => [] as string[]);
  // best/ is written after state.json: a folder holding one was put there otherwise, and is said, not removed.
  if (found.length === 0 || found.includes(BEST_DIR) || (await isExport(dir))) return [];
  return found;
}

/** Whether `dir` holds a TensorFlow.js export: a model.json with `userDefinedMetadata`, which only export writes. */
async function isExport(dir: string): Promise<boolean> {
  const model = await fsp.readFile(path.join(dir, MODEL_FILE), 'utf8').then((t) => JSON.parse(t) as { userDefinedMetadata?: unknown } | null, () => null);
  return model?.userDefinedMetadata !== undefined;
}

/** Removes `names` (a run's files and best/) from `dir`, in that order: a best/ that is a link goes as a link. */
async function removeRunEntries(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    const p = path.join(dir, name);
    // A best/ that is a link goes as a link: what it points to is not the run's.
    const link = (await fsp.lstat(p)).isSymbolicLink();
    if (name === BEST_DIR && !link) await removeBest(p);
    else await fsp.rm(p, { force: true });
  }
}

/** A new run into a folder that holds one: refused, or (--overwrite) the old run's files removed, state.json first. */
async function refuseOrClear(dir: string, opts: ClaimOptions): Promise<void> {
  // A folder without state.json holds no run (a kill in the first save blocked it for good: `--resume` found no
  // state.json, and only --overwrite got out): what the cut save left is removed, and the new run starts.
  const leftovers = await cutSaveLeftovers(dir);
  if (leftovers.length > 0) {
    opts.say(`${dir} holds no run, only what a save cut short left (${leftovers.slice(0, 3).join(', ')}${leftovers.length > 3 ? ', ...' : ''}): removing it`);
    await removeRunEntries(dir, leftovers);
    return;
  }
  const state = await readStateIfAny(dir).catch(() => null);
  // state.json first: from then on the folder holds no run, whatever else a kill leaves.
  const found = await runEntries(dir);
  if (found.length === 0) return;
  if (!(await hasCheckpoint(dir)) && (await isExport(dir))) {
    throw new AlexnetError('USAGE', `${dir} holds a TensorFlow.js export (${found.slice(0, 3).join(', ')}), not a run`, 'pass another --save DIR (a run and an export each have a folder of their own)');
  }
  if (!opts.overwrite) {
    const what = state ? `a run of ${state.epoch} epoch${state.epoch === 1 ? '' : 's'}${state.batch > 0 ? ` and ${state.batch} batches` : ''} (of ${state.recipe.epochs})` : `files of a run (${found.slice(0, 3).join(', ')})`;
    throw new AlexnetError('USAGE', `${dir} holds ${what} already`, `continue it with \`alexnet train --resume ${dir}\`, or pass --overwrite to replace it (its best/ too)`);
  }
  opts.say(`--overwrite: removing the run in ${dir}${found.includes(BEST_DIR) ? ' and its best/' : ''}`);
  await removeRunEntries(dir, found);
}

/** Removes a best/ folder: the run's files in it, then the folder where nothing else is left. */
async function removeBest(best: string): Promise<void> {
  await fsp.rm(path.join(best, STATE_FILE), { force: true });
  for (const n of await fsp.readdir(best)) if (isRunFile(n) || ATOMIC_TEMPORARIES.test(n)) await fsp.rm(path.join(best, n), { force: true });
  await fsp.rmdir(best).catch(() => {});
}

/** What DIR/best is: none, a folder, a symbolic link, or something else (a file). */
async function bestKind(dir: string): Promise<'none' | 'folder' | 'link' | 'other'> {
  const st = await fsp.lstat(path.join(dir, BEST_DIR)).catch(() => null);
  return !st ? 'none' : st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'folder' : 'other';
}

/** The refusal of a best/ that is not a folder of the run's own. */
async function checkBestIsFolder(dir: string, doing: string): Promise<'none' | 'folder'> {
  const kind = await bestKind(dir);
  const best = path.join(dir, BEST_DIR);
  if (kind === 'link') throw new AlexnetError('IO', `will not ${doing} ${best}: it is a symbolic link, and the best checkpoint is a folder of the run's own`, `remove the link (what it points to stays as it is), then run the command again`);
  if (kind === 'other') throw new AlexnetError('IO', `will not ${doing} ${best}: it is a file, not the run's best checkpoint`, `move it away, then run the command again`);
  return kind;
}

/**
 * Before a resumed run trains on (--keep-best), DIR/best is checked against the best its state.json names (`reset`
 * clears it where best/ starts anew): a best/ one save behind the run's own files is repaired from them; a missing one (removed by
 * hand, or --keep-best turned on now) starts anew, said on stderr; anything else is refused. `from` is the folder
 * resumed; a run saved into another folder (`--save NEW`) takes a copy of its best/.
 */
export async function checkBest(from: string, to: string, state: SavedState, reset: (best: null) => void, say: (line: string) => void): Promise<void> {
  if (!state.keepBest) return;
  const kind = await checkBestIsFolder(from, 'use');
  const fromBest = path.join(from, BEST_DIR);
  const held = kind === 'folder' ? await readStateIfAny(fromBest).catch(() => null) : null;
  const best = state.best;
  if (!best) return;
  const holds = held !== null && (best.weightsSha256 !== undefined ? held.weightsSha256 === best.weightsSha256 : held.epoch === best.epoch + 1 && held.best?.validAcc === best.validAcc);
  // An earlier checkpoint of this very run (its epochs are the run's first ones), or none: what a cut save leaves.
  const ours = held === null || (held.epoch <= best.epoch && held.recipe.seed === state.recipe.seed && held.history.every((m, i) => JSON.stringify(m) === JSON.stringify(state.history[i])));
  if (!holds && ours && best.weightsSha256 !== undefined && best.weightsSha256 === state.weightsSha256) {
    // The save of the best epoch was cut between the run's state.json and best/: the run's files are the best's.
    say(`${fromBest} was one save behind the run (a save cut short): copying the best epoch (${best.epoch}) into it again`);
    await copyCheckpoint(from, path.join(to, BEST_DIR));
    return;
  }
  if (!holds && held === null) {
    say(`${fromBest} ${kind === 'none' ? 'is missing' : 'holds no checkpoint'}: the best of the epochs from here on is kept in ${path.join(to, BEST_DIR)}`);
    reset(null);
    return;
  }
  if (!holds) {
    throw new AlexnetError('CHECKPOINT', `${fromBest} holds epoch ${held!.epoch - 1} (weights ${held!.weightsSha256.slice(0, 16)}), not the run's best, epoch ${best.epoch}${best.weightsSha256 ? ` (weights ${best.weightsSha256.slice(0, 16)})` : ''}`, `put the run's own best back in ${fromBest}, or move it away to keep the best of the epochs from here on`);
  }
  if (path.resolve(from) !== path.resolve(to)) await copyCheckpoint(fromBest, path.join(to, BEST_DIR));
}

/** Copies the checkpoint in `from` into `to` (a folder it makes), set-atomic as any save. */
async function copyCheckpoint(from: string, to: string): Promise<void> {
  const { files, state } = await readCheckpointFiles(from);
  await fsp.mkdir(to).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
  await writeCheckpoint(to, files, state);
}

/**
 * Saves a run's checkpoint into `dir` after every epoch (and when interrupted), then report.html. The best epoch
 * (with --keep-best) goes to DIR/best after the run's own state.json, which names it by its weights' hash.
 */
export function checkpointer(dir: string, backend: string): Checkpointer {
  return {
    save: async (model, state, optimizer, best) => {
      try {
        const files = await checkpointFiles(model, optimizer);
        if (best && state.best) state.best = { ...state.best, weightsSha256: files.weightsSha256 };
        await writeCheckpoint(dir, files, state);
        if (best && state.keepBest) {
          const bestDir = path.join(dir, BEST_DIR);
          if ((await checkBestIsFolder(dir, 'write')) === 'none') await fsp.mkdir(bestDir);
          await writeCheckpoint(bestDir, files, state);
        }
        await writeFileAtomic(path.join(dir, REPORT_FILE), await renderReport(state, { generated: new Date(), backend }));
      } catch (e) {
        if (e instanceof AlexnetError) throw e;
        // Said after the failure: a save that failed after its state.json still left a whole checkpoint (issue #24).
        const hint = (await hasCheckpoint(dir)) ? `; the last checkpoint in ${dir} is whole: continue with \`alexnet train --resume ${dir}\`` : ', then run the command again (nothing was saved yet)';
        throw diskError(e, `saving the checkpoint in ${dir}`, hint) ?? e;
      }
    },
  };
}

/**
 * What killed saves left in a run's folder (and its best/), cleaned where no run holds it: for a finished run,
 * which has no next save to clean them (issue #24). Quiet where a run holds the lock: that run cleans its own.
 */
export async function tidyRunDir(dir: string): Promise<void> {
  if (await lockHolder(path.join(dir, LOCK_FILE))) return;
  let release: (() => Promise<void>) | null = null;
  try {
    release = await acquireLock(path.join(dir, LOCK_FILE), { what: `a training run saving into ${dir}`, wait: false, hint: '' });
    await tidyCheckpoint(dir);
    if ((await bestKind(dir)) === 'folder') await tidyCheckpoint(path.join(dir, BEST_DIR));
  } catch {
    // Tidying is a courtesy: a folder that cannot be written keeps its leftovers, and the refusal is what is said.
  } finally {
    await release?.();
  }
}
