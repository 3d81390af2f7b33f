// Checkpoints: the model in TensorFlow.js's format (model.json + weights.bin, loadable by tf.loadLayersModel),
// state.json (recipe, epoch, position in the epoch) and metrics.jsonl. Every file is written under a
// temporary name and renamed, weights first and state.json last, so a reader sees either the old or the
// new checkpoint; state.json records the weights' SHA-256 so a mismatched pair is caught, not trained on.

import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from './tf.js';
import { writeFileAtomic } from './atomic.js';
import { DEFAULT_CLASS_NAMES, NUM_CLASSES } from './data/cifar.js';
import { AlexnetError } from './errors.js';
import { INPUT_SHAPE } from './model.js';
import type { TrainState } from './train.js';

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
export const STATE_FILE = 'state.json';
export const METRICS_FILE = 'metrics.jsonl';

export interface SavedState extends TrainState {
  weightsSha256: string;
}

export async function saveCheckpoint(dir: string, model: tf.LayersModel, state: TrainState): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const weights = new Uint8Array(artifacts!.weightData as ArrayBuffer);
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    modelTopology: artifacts!.modelTopology,
    weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts!.weightSpecs }],
  };
  const saved: SavedState = { ...state, weightsSha256: createHash('sha256').update(weights).digest('hex') };
  await writeFileAtomic(path.join(dir, WEIGHTS_FILE), weights);
  await writeFileAtomic(path.join(dir, MODEL_FILE), JSON.stringify(modelJson));
  await writeFileAtomic(path.join(dir, METRICS_FILE), state.history.map((m) => JSON.stringify(m) + '\n').join(''));
  await writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(saved, null, 2) + '\n');
}

const ckptError = (dir: string, what: string) =>
  new AlexnetError('CHECKPOINT', `cannot load the model in ${dir}: ${what}`, `pass a directory written by \`alexnet train --save DIR\``);

/** Loads model.json + weights.bin from `dir`. */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; weights: Uint8Array }> {
  let modelJson: { modelTopology: tf.io.ModelArtifacts['modelTopology']; weightsManifest: tf.io.WeightsManifestConfig };
  let weights: Uint8Array;
  try {
    modelJson = JSON.parse(await fsp.readFile(path.join(dir, MODEL_FILE), 'utf8'));
  } catch (e) {
    throw ckptError(dir, (e as NodeJS.ErrnoException).code === 'ENOENT' ? `no ${MODEL_FILE}` : `${MODEL_FILE} is not valid JSON`);
  }
  try {
    weights = new Uint8Array(await fsp.readFile(path.join(dir, WEIGHTS_FILE)));
  } catch {
    throw ckptError(dir, `no ${WEIGHTS_FILE}`);
  }
  try {
    const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights);
    const buf = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
    const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData: buf }));
    return { model, weights };
  } catch (e) {
    const message = (e as Error).message.split('\n')[0]!;
    throw ckptError(dir, /shape/i.test(message) ? `its weights do not fit its layers (${message})` : message);
  }
}

/** Reads state.json alone: cheap, so a bad --resume fails before any download or backend start. */
export async function readState(dir: string): Promise<SavedState> {
  let saved: SavedState;
  try {
    saved = JSON.parse(await fsp.readFile(path.join(dir, STATE_FILE), 'utf8')) as SavedState;
  } catch (e) {
    throw new AlexnetError(
      'CHECKPOINT',
      `cannot resume from ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `no ${STATE_FILE}` : `${STATE_FILE} is not valid JSON`}`,
      'pass a directory written by `alexnet train --save DIR`',
    );
  }
  if (saved.version !== 1) throw new AlexnetError('CHECKPOINT', `cannot resume from ${dir}: unknown state version ${saved.version}`, 'use the alexnet version that wrote it');
  return saved;
}

/** Loads a checkpoint to resume: the model and the state (read here unless given), checked against each other. */
export async function loadCheckpoint(dir: string, known?: SavedState): Promise<{ model: tf.LayersModel; state: TrainState }> {
  const saved = known ?? (await readState(dir));
  const { model, weights } = await loadModel(dir);
  const sha = createHash('sha256').update(weights).digest('hex');
  if (sha !== saved.weightsSha256) {
    model.dispose();
    throw new AlexnetError('CHECKPOINT', `cannot resume from ${dir}: ${WEIGHTS_FILE} does not belong to ${STATE_FILE}`, 'the checkpoint was modified; resume from a complete one');
  }
  const { weightsSha256: _, ...state } = saved;
  return { model, state };
}

/** Cheap checks before any backend starts: the directory exists and has model.json and weights.bin. */
export async function checkModelDir(dir: string): Promise<void> {
  const hint = 'pass the directory given to `alexnet train --save DIR`';
  let isDir = false;
  try {
    isDir = (await fsp.stat(dir)).isDirectory();
  } catch {
    throw new AlexnetError('CHECKPOINT', `no model in ${dir}: the directory does not exist`, hint);
  }
  if (!isDir) throw new AlexnetError('CHECKPOINT', `no model in ${dir}: not a directory`, hint);
  for (const file of [MODEL_FILE, WEIGHTS_FILE]) {
    try {
      await fsp.access(path.join(dir, file));
    } catch {
      throw new AlexnetError('CHECKPOINT', `no model in ${dir}: ${file} is missing`, hint);
    }
  }
}

export interface TrainedModel {
  model: tf.LayersModel;
  /** From state.json when the run saved them, else the official names. */
  classNames: string[];
  /** Epochs the model was trained for, when state.json says. */
  epochs: number | null;
}

/**
 * Loads a saved model to use (`eval`, `predict`): any Layers model that maps [N, 32, 32, 3] images to 10
 * logits, checked before it is run so that a wrong model fails with its shapes named, not deep in a kernel.
 * The commands call checkModelDir first, before any backend starts; loadModel names a missing file anyway.
 */
export async function loadTrainedModel(dir: string): Promise<TrainedModel> {
  const { model } = await loadModel(dir);
  const input = model.inputs[0]?.shape ?? [];
  const output = model.outputs[0]?.shape ?? [];
  const want = (shape: (number | null)[]) => `[${shape.map((d) => d ?? 'N').join(', ')}]`;
  if (model.inputs.length !== 1 || want(input) !== want([null, ...INPUT_SHAPE]) || model.outputs.length !== 1 || want(output) !== want([null, NUM_CLASSES])) {
    model.dispose();
    throw ckptError(dir, `it maps ${want(input)} to ${want(output)}, not ${want([null, ...INPUT_SHAPE])} images to ${want([null, NUM_CLASSES])} logits`);
  }
  let classNames = DEFAULT_CLASS_NAMES;
  let epochs: number | null = null;
  try {
    const state = JSON.parse(await fsp.readFile(path.join(dir, STATE_FILE), 'utf8')) as Partial<SavedState>;
    if (Array.isArray(state.classNames) && state.classNames.length === NUM_CLASSES) classNames = state.classNames.map(String);
    if (typeof state.epoch === 'number') epochs = state.epoch;
  } catch {
    // A model without state.json (exported elsewhere) is still usable; it just has the official names.
  }
  return { model, classNames, epochs };
}
