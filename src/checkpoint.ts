// Checkpoints: the model in TensorFlow.js's format (model.json + a weights file, loadable by
// tf.loadLayersModel), state.json (recipe, epoch, position in the epoch, data) and metrics.jsonl.
//
// A checkpoint is atomic as a set (issue #13: a kill between two renames used to leave neither the old nor the
// new one usable). The weights go to a new file named by their hash, `weights-<sha>.bin`, beside the old one;
// then model.json (which names it) and state.json (which names it and records its SHA-256) are each renamed
// into place; only then is the previous weights file removed. A reader of state.json (resume) finds the
// weights it names, whole; a reader of model.json (eval, predict, tfjs) likewise. Each file is written as
// src/files.ts writes: a temporary name, then a rename. state.json is validated field by field on load.
//
// With momentum (issue #21), the optimiser's buffers go the same way, to `momentum-<sha>.bin` beside the weights,
// named and hashed in state.json, so that a resumed run continues with the very buffers it stopped with.

import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_CLASS_NAMES, MAX_CLASSES, MIN_CLASSES, NUM_CLASSES } from './data/cifar.js';
import { AlexnetError } from './errors.js';
import { ATOMIC_TEMPORARIES, READ_CAPS, readRegularFile, writeFileAtomic } from './files.js';
import { removeLeftovers } from './lock.js';
import { INPUT_SHAPE } from './model.js';
import { MOMENTUM_NAME, WEIGHTS_NAME, migrateState, stateProblem, type SavedState, type TrainState } from './state.js';
import tf from './tf.cjs';
import tfl from './tfl.cjs';


export const MODEL_FILE = 'model.json';
export const STATE_FILE = 'state.json';
export const METRICS_FILE = 'metrics.jsonl';
/** Checkpoints before the set-atomic layout used this one name; they still load. */
const LEGACY_WEIGHTS_FILE = 'weights.bin';

/** The steps of a save, in order; `onStep` (tests) runs after each, to show a crash between any two is safe. */
export type SaveStep = 'weights' | 'momentum' | 'model' | 'metrics' | 'state' | 'cleanup';

/** `name-<first 16 hex digits of the SHA-256>.bin` and the whole SHA-256 of `bytes`. */
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function hashed(name: string, bytes: Uint8Array): { file: string; sha: string } {
  const sha = sha256(bytes);
  return { file: `${name}-${sha.slice(0, 16)}.bin`, sha };
}

/** A checkpoint's files in memory: the model serialised once, written to the run's folder and, when best, to best/. */
export interface CheckpointFiles {
  weights: Uint8Array;
  weightsFile: string;
  weightsSha256: string;
  momentum: { bytes: Uint8Array; file: string; sha: string } | null;
  modelJson: string;
}

/** The model's weights and topology, and the momentum buffers where the recipe has momentum, as the files they become. */
export async function checkpointFiles(model: tfl.LayersModel, optimizer: Float32Array | null = null): Promise<CheckpointFiles> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const weights = new Uint8Array(artifacts!.weightData as ArrayBuffer);
  const { file: weightsFile, sha } = hashed('weights', weights);
  const momentumBytes = optimizer && new Uint8Array(optimizer.buffer, optimizer.byteOffset, optimizer.byteLength);
  return {
    weights,
    weightsFile,
    weightsSha256: sha,
    momentum: momentumBytes && { bytes: momentumBytes, ...hashed('momentum', momentumBytes) },
    modelJson: JSON.stringify({
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
      convertedBy: null,
      modelTopology: artifacts!.modelTopology,
      weightsManifest: [{ paths: [`./${weightsFile}`], weights: artifacts!.weightSpecs }],
    }),
  };
}

/**
 * Saves the checkpoint into `dir`, atomic as a set (see the header); `optimizer`: the momentum buffers, where the
 * recipe has momentum.
 */
export async function saveCheckpoint(dir: string, model: tfl.LayersModel, state: TrainState, onStep?: (step: SaveStep) => void, optimizer: Float32Array | null = null): Promise<void> {
  await writeCheckpoint(dir, await checkpointFiles(model, optimizer), state, onStep);
}

/** The weights and momentum files a checkpoint's state.json names now, or none (no state.json, or unreadable). */
async function namedFiles(dir: string): Promise<string[]> {
  const text = await fsp.readFile(path.join(dir, STATE_FILE), 'utf8').catch(() => null);
  try {
    const s = JSON.parse(text ?? 'null') as Partial<SavedState> | null;
    return [s?.weightsFile, s?.momentumFile].filter((f): f is string => typeof f === 'string');
  } catch {
    return [];
  }
}

/**
 * Writes `files` and `state` into `dir` (which must exist), atomic as a set (see the header). A reader that read the
 * previous state.json and finds its weights gone reads the new one (loadTrainedModel: issue #29).
 */
export async function writeCheckpoint(dir: string, files: CheckpointFiles, state: TrainState, onStep?: (step: SaveStep) => void): Promise<void> {
  const { weights, weightsFile, momentum } = files;
  const saved: SavedState = { ...state, weightsSha256: files.weightsSha256, weightsFile, ...(momentum ? { momentumFile: momentum.file, momentumSha256: momentum.sha } : {}) };
  const weightsPath = path.join(dir, weightsFile);
  const momentumPath = momentum && path.join(dir, momentum.file);
  const exists = async (p: string | null) => p !== null && Boolean(await fsp.lstat(p).catch(() => null));
  const existed = await exists(weightsPath); // the same weights as a save before
  const momentumExisted = await exists(momentumPath);
  const first = !(await hasCheckpoint(dir));
  // What saves killed midway left (`.weights-....bin.tmp-PID-...`, 2.3 MB each, kept forever: issue #20).
  await removeLeftovers(dir, ATOMIC_TEMPORARIES);
  try {
    if (!existed) await writeFileAtomic(weightsPath, weights);
    onStep?.('weights');
    if (momentumPath && !momentumExisted) await writeFileAtomic(momentumPath, momentum.bytes);
    onStep?.('momentum');
    await writeFileAtomic(path.join(dir, MODEL_FILE), files.modelJson);
    onStep?.('model');
    await writeFileAtomic(path.join(dir, METRICS_FILE), state.history.map((m) => JSON.stringify(m) + '\n').join(''));
    onStep?.('metrics');
    await writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(saved, null, 2) + '\n');
  } catch (e) {
    if (first) {
      // Nothing to keep whole: the first save is rolled back entirely (it left model and weights without a
      // state.json, which neither resumes nor is told apart from a whole checkpoint: issue #20).
      await Promise.all([weightsPath, momentumPath, ...[MODEL_FILE, METRICS_FILE, STATE_FILE].map((f) => path.join(dir, f))].map((f) => f && fsp.rm(f, { force: true })));
      throw e;
    }
    // state.json still names the previous weights; model.json may name these, so they stay if it was written.
    const named = await readModelJson(dir).then((m) => m.weightsFile, () => null);
    if (!existed && named !== weightsFile) await fsp.rm(weightsPath, { force: true });
    if (momentumPath && !momentumExisted) await fsp.rm(momentumPath, { force: true }); // only state.json names it
    throw e;
  }
  onStep?.('state');
  await removeUnnamed(dir, [weightsFile, ...(momentum ? [momentum.file] : [])]);
  onStep?.('cleanup');
}

/** Removes the weights and momentum files of `dir` that are not in `keep` (older saves', a killed save's). */
async function removeUnnamed(dir: string, keep: string[]): Promise<void> {
  for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
    if ((WEIGHTS_NAME.test(f) || MOMENTUM_NAME.test(f)) && !keep.includes(f)) await fsp.rm(path.join(dir, f), { force: true });
  }
}

/**
 * What killed saves left in `dir`, removed: their temporaries, and weights or momentum files that neither state.json
 * nor model.json names (a kill after state.json's rename left the old 2.3 MB weights for good: issue #24). The
 * caller holds the run's lock.
 */
export async function tidyCheckpoint(dir: string): Promise<void> {
  await removeLeftovers(dir, ATOMIC_TEMPORARIES);
  if (!(await hasCheckpoint(dir))) return;
  const model = await readModelJson(dir).then((m) => [m.weightsFile], () => [] as string[]);
  await removeUnnamed(dir, [...(await namedFiles(dir)), ...model]);
}

/** A saved checkpoint's files read back (state.json validated, every file checked), to copy it whole elsewhere. */
export async function readCheckpointFiles(dir: string): Promise<{ files: CheckpointFiles; state: TrainState }> {
  const saved = await readState(dir, 'copy');
  const file = saved.weightsFile ?? LEGACY_WEIGHTS_FILE;
  const hint = 'the checkpoint was modified or damaged';
  const weights = new Uint8Array(await readRegularFile(path.join(dir, file), READ_CAPS.weights, 'CHECKPOINT', `${file} in ${dir}`, hint));
  checkWeights(dir, saved, weights, 'copy');
  const { json } = await readModelJson(dir);
  // Named by the hash state.json recorded (and checkWeights held them to): a legacy weights.bin gets its hashed name.
  const weightsFile = `weights-${saved.weightsSha256.slice(0, 16)}.bin`;
  json.weightsManifest = [{ ...json.weightsManifest[0]!, paths: [`./${weightsFile}`] }];
  const momentum = saved.momentumFile ? await readMomentum(dir, saved, weights.length) : null;
  const { weightsSha256: _s, weightsFile: _f, momentumFile: _m, momentumSha256: _ms, ...state } = saved;
  return {
    files: { weights, weightsFile, weightsSha256: saved.weightsSha256, momentum: momentum && { bytes: new Uint8Array(momentum.buffer), file: saved.momentumFile!, sha: saved.momentumSha256! }, modelJson: JSON.stringify(json) },
    state,
  };
}

/** Whether `dir` holds a checkpoint to fall back on: a state.json (the last file a save renames into place). */
export const hasCheckpoint = (dir: string): Promise<boolean> => fsp.lstat(path.join(dir, STATE_FILE)).then(() => true, () => false);


const ckptError = (dir: string, what: string) =>
  new AlexnetError('CHECKPOINT', `cannot load the model in ${dir}: ${what}`, `pass a directory written by \`alexnet train --save DIR\``);

interface ModelJson {
  modelTopology: tf.io.ModelArtifacts['modelTopology'];
  weightsManifest: tf.io.WeightsManifestConfig;
}

/** model.json, read as a regular file of bounded size, and the name of the weights file it names. */
async function readModelJson(dir: string): Promise<{ json: ModelJson; weightsFile: string }> {
  const hint = 'pass a directory written by `alexnet train --save DIR`';
  const text = (await readRegularFile(path.join(dir, MODEL_FILE), READ_CAPS.json, 'CHECKPOINT', `${MODEL_FILE} in ${dir}`, hint)).toString('utf8');
  let json: ModelJson;
  try {
    json = JSON.parse(text) as ModelJson;
  } catch {
    throw ckptError(dir, `${MODEL_FILE} is not valid JSON`);
  }
  const paths = Array.isArray(json?.weightsManifest) ? json.weightsManifest.flatMap((g) => (Array.isArray(g?.paths) ? g.paths : [])) : [];
  const name = paths.length === 1 ? String(paths[0]).replace(/^\.\//, '') : '';
  // Only a weights file of ours, in the same folder: a tampered manifest cannot point elsewhere.
  if (!WEIGHTS_NAME.test(name)) throw ckptError(dir, `${MODEL_FILE} does not name one weights file of this tool (weights-<hash>.bin)`);
  return { json, weightsFile: name };
}

/**
 * Loads model.json and a weights file from `dir` (the one `weightsFile` names, else model.json's). The weights'
 * size is checked against the manifest before TensorFlow.js sees them: a 4 KB tampered model.json made it
 * allocate more than 3 GB (issue #13).
 */
export async function loadModel(dir: string, weightsFile?: string): Promise<{ model: tfl.LayersModel; weights: Uint8Array }> {
  const { json, weightsFile: named } = await readModelJson(dir);
  const file = weightsFile ?? named;
  const weights = new Uint8Array(await readRegularFile(path.join(dir, file), READ_CAPS.weights, 'CHECKPOINT', `${file} in ${dir}`, 'pass a directory written by `alexnet train --save DIR`'));
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights ?? []);
  const expected = weightSpecs.reduce((n, s) => n + (Array.isArray(s.shape) ? s.shape.reduce((a: number, b: number) => a * b, 1) : NaN) * 4, 0);
  if (!Number.isSafeInteger(expected) || expected !== weights.length || weightSpecs.some((s) => s.dtype !== 'float32')) {
    throw ckptError(dir, `its weights do not fit its layers (${MODEL_FILE} describes ${Number.isSafeInteger(expected) ? expected.toLocaleString('en-US') : 'an impossible number of'} bytes of float32, ${file} has ${weights.length.toLocaleString('en-US')})`);
  }
  // NaN weights with a matching hash gave `Test Loss: NaN` and exit 0 (issue #20): a model holds finite numbers.
  const { values, nonFinite } = floats(weights);
  if (nonFinite) throw ckptError(dir, `its weights hold a non-finite value (${nonFinite})`);
  try {
    const buf = values.buffer as ArrayBuffer;
    const model = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData: buf }));
    return { model, weights };
  } catch (e) {
    const message = (e as Error).message.split('\n')[0]!;
    throw ckptError(dir, /shape/i.test(message) ? `its weights do not fit its layers (${message})` : message);
  }
}

/** Reads and validates state.json alone: cheap, so a bad --resume fails before any download or backend start. */
export async function readState(dir: string, verb = 'resume from'): Promise<SavedState> {
  const hint = 'pass a directory written by `alexnet train --save DIR`';
  const st = await fsp.stat(dir).catch(() => null);
  if (st === null) throw new AlexnetError('CHECKPOINT', `cannot ${verb} ${dir}: no such directory`, hint);
  if (!st.isDirectory()) throw new AlexnetError('CHECKPOINT', `cannot ${verb} ${dir}: it is a file, not a checkpoint directory`, hint);
  const file = path.join(dir, STATE_FILE);
  if (!(await fsp.lstat(file).catch(() => null))) throw new AlexnetError('CHECKPOINT', `cannot ${verb} ${dir}: no ${STATE_FILE}`, hint);
  const text = (await readRegularFile(file, READ_CAPS.json, 'CHECKPOINT', `${STATE_FILE} in ${dir}`, hint)).toString('utf8');
  let saved: unknown;
  try {
    saved = JSON.parse(text);
  } catch {
    throw new AlexnetError('CHECKPOINT', `cannot ${verb} ${dir}: ${STATE_FILE} is not valid JSON`, hint);
  }
  if ((saved as { version?: unknown })?.version !== undefined && (saved as { version?: unknown }).version !== 1) {
    throw new AlexnetError('CHECKPOINT', `cannot ${verb} ${dir}: unknown state version ${JSON.stringify((saved as { version: unknown }).version)}`, 'use the alexnet version that wrote it');
  }
  const problem = stateProblem(saved);
  if (problem) throw new AlexnetError('CHECKPOINT', `cannot ${verb} ${dir}: ${STATE_FILE}: ${problem}`, 'the checkpoint was modified or damaged; resume from a complete one');
  // What older versions saved, as this version's state (src/state.ts): valid, since stateProblem checked it so.
  return migrateState(saved as Record<string, unknown>);
}

/** state.json of `dir` validated, or null where there is none (a model exported elsewhere). */
export async function readStateIfAny(dir: string): Promise<SavedState | null> {
  return (await hasCheckpoint(dir)) ? readState(dir, 'use the model in') : null;
}

/** Refuses weights that are not the ones state.json recorded (tampered, bit-flipped, or from another save). */
function checkWeights(dir: string, saved: SavedState, weights: Uint8Array, verb: string): void {
  const sha = sha256(weights);
  if (sha !== saved.weightsSha256) {
    throw new AlexnetError('CHECKPOINT', `cannot ${verb} ${dir}: ${saved.weightsFile ?? LEGACY_WEIGHTS_FILE} does not belong to ${STATE_FILE}`, 'the checkpoint was modified; resume from a complete one');
  }
}

/**
 * Loads a checkpoint to resume: the model, the state (read here unless given) and the optimiser's momentum buffers
 * (null without momentum), checked against each other.
 */
export async function loadCheckpoint(dir: string, known?: SavedState): Promise<{ model: tfl.LayersModel; state: TrainState; optimizer: Float32Array | null }> {
  const saved = known ?? (await readState(dir));
  const { model, weights } = await loadModel(dir, saved.weightsFile ?? LEGACY_WEIGHTS_FILE);
  let optimizer: Float32Array | null = null;
  try {
    checkWeights(dir, saved, weights, 'resume from');
    if (saved.momentumFile) optimizer = await readMomentum(dir, saved, weights.length);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const { weightsSha256: _sha, weightsFile: _file, momentumFile: _m, momentumSha256: _msha, ...state } = saved;
  return { model, state, optimizer };
}

/** The momentum buffers state.json names: its hash checked, one float32 per weight, all finite. */
async function readMomentum(dir: string, saved: SavedState, weightBytes: number): Promise<Float32Array> {
  const hint = 'the checkpoint was modified or damaged; resume from a complete one';
  const bytes = await readRegularFile(path.join(dir, saved.momentumFile!), READ_CAPS.weights, 'CHECKPOINT', `${saved.momentumFile} in ${dir}`, hint);
  const fail = (why: string) => new AlexnetError('CHECKPOINT', `cannot resume from ${dir}: ${saved.momentumFile} ${why}`, hint);
  if (sha256(bytes) !== saved.momentumSha256) throw fail(`does not belong to ${STATE_FILE}`);
  if (bytes.length !== weightBytes) throw fail(`has ${bytes.length.toLocaleString('en-US')} bytes where the weights have ${weightBytes.toLocaleString('en-US')}`);
  const { values, nonFinite } = floats(bytes);
  if (nonFinite) throw fail(`holds a non-finite value (${nonFinite})`);
  return values;
}

/** A file's float32 values (a copy, aligned), and its first value that is not finite, in words (`NaN at 0 of 576,778`), or null. */
function floats(bytes: Uint8Array): { values: Float32Array; nonFinite: string | null } {
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const bad = values.findIndex((v) => !Number.isFinite(v));
  return { values, nonFinite: bad < 0 ? null : `${values[bad]} at ${bad.toLocaleString('en-US')} of ${values.length.toLocaleString('en-US')}` };
}

/** Cheap checks before any backend starts: the directory exists, with model.json and the weights it names. */
export async function checkModelDir(dir: string): Promise<void> {
  const hint = 'pass the directory given to `alexnet train --save DIR`';
  let isDir = false;
  try {
    isDir = (await fsp.stat(dir)).isDirectory();
  } catch {
    throw new AlexnetError('CHECKPOINT', `no model in ${dir}: the directory does not exist`, hint);
  }
  if (!isDir) throw new AlexnetError('CHECKPOINT', `no model in ${dir}: not a directory`, hint);
  if (!(await fsp.lstat(path.join(dir, MODEL_FILE)).catch(() => null))) throw new AlexnetError('CHECKPOINT', `no model in ${dir}: ${MODEL_FILE} is missing`, hint);
  const { weightsFile } = await readModelJson(dir);
  if (!(await fsp.lstat(path.join(dir, weightsFile)).catch(() => null))) throw new AlexnetError('CHECKPOINT', `no model in ${dir}: ${weightsFile} is missing`, hint);
}

export interface TrainedModel {
  model: tfl.LayersModel;
  /** From state.json when the run saved them, else the official names. */
  classNames: string[];
  /** Epochs the model was trained for, when state.json says. */
  epochs: number | null;
}

/**
 * Loads a saved model to use (`eval`, `predict`): any Layers model that maps [N, 32, 32, 3] images to 10
 * logits, checked before it is run so that a wrong model fails with its shapes named, not deep in a kernel.
 * Where state.json is there (a run of this tool), it is validated and the weights must be the ones it
 * recorded: all-NaN or bit-flipped weights used to give `Test Loss: NaN` with exit 0 (issue #13); `known` is
 * state.json already read (readStateIfAny), so that it is read once. A model
 * exported elsewhere, without state.json, is used as it is, with the official class names.
 */
export async function loadTrainedModel(dir: string, known?: SavedState | null): Promise<TrainedModel> {
  // A run that trains while this reads (`eval` to watch it: issue #29) replaces state.json and, a save later,
  // removes the weights it named: where a read fails and state.json (or model.json) has moved on meanwhile, the
  // newer checkpoint is read instead. A failure with the checkpoint unchanged is the checkpoint's own.
  for (let attempt = 0; ; attempt++) {
    const state = attempt === 0 && known !== undefined ? known : await readStateIfAny(dir);
    const named = state ? null : await readModelJson(dir).then((m) => m.weightsFile, () => null);
    try {
      return await loadWhole(dir, state);
    } catch (e) {
      const now = state ? await readStateIfAny(dir).then((s) => s?.weightsSha256, () => null) : await readModelJson(dir).then((m) => m.weightsFile, () => null);
      const movedOn = now != null && now !== (state ? state.weightsSha256 : named);
      if (attempt >= READ_ATTEMPTS - 1 || !movedOn) throw e;
    }
  }
}

/** Reads of a checkpoint that a run replaces meanwhile: a save takes ~50 ms, an epoch seconds; 5 is plenty. */
const READ_ATTEMPTS = 5;

async function loadWhole(dir: string, state: SavedState | null): Promise<TrainedModel> {
  // The weights state.json names: a crash between the renames of a save leaves model.json one save ahead.
  const { model, weights } = await loadModel(dir, state ? (state.weightsFile ?? LEGACY_WEIGHTS_FILE) : undefined);
  try {
    if (state) checkWeights(dir, state, weights, 'use the model in');
    const input = model.inputs[0]?.shape ?? [];
    const output = model.outputs[0]?.shape ?? [];
    const want = (shape: (number | null)[]) => `[${shape.map((d) => d ?? 'N').join(', ')}]`;
    // The run's classes where state.json names them (CIFAR-100's 100, an image folder's), else any count in range.
    const classes = state?.classNames?.length ?? (output.length === 2 && output[1]! >= MIN_CLASSES && output[1]! <= MAX_CLASSES ? output[1]! : NUM_CLASSES);
    if (model.inputs.length !== 1 || want(input) !== want([null, ...INPUT_SHAPE]) || model.outputs.length !== 1 || want(output) !== want([null, classes])) {
      throw ckptError(dir, `it maps ${want(input)} to ${want(output)}, not ${want([null, ...INPUT_SHAPE])} images to ${want([null, classes])} logits`);
    }
    return { model, classNames: state?.classNames ?? (classes === NUM_CLASSES ? DEFAULT_CLASS_NAMES : Array.from({ length: classes }, (_, i) => `class ${i}`)), epochs: state?.epoch ?? null };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
