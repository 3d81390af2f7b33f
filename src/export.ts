// `alexnet export`: a trained model where users deploy it (issue #27): ONNX for ONNX Runtime and its kin
// (src/onnx.ts), or a TensorFlow.js folder that `tf.loadLayersModel` loads in a browser. The model is read as
// `eval` reads it (its weights checked against state.json), and the result appears whole or not at all: a file
// by writeFileAtomic, a folder written under a temporary name and renamed. The class names go beside the model, a
// line each in output order (`model.labels.txt` beside `model.onnx`, `labels.txt` in a tfjs folder): ONNX Runtime
// for Node cannot read a model's metadata, so a Node user could not name the classes from the .onnx alone. With
// `--input raw` the model takes a decoder's pixels and normalises inside (src/onnx.ts; a Rescaling layer in tfjs).

import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { BackendChoice } from './backends/index.js';
import { checkModelDir, checkpointFiles, hasCheckpoint, loadTrainedModel, MODEL_FILE, STATE_FILE } from './checkpoint.js';
import { AlexnetError } from './errors.js';
import { ATOMIC_TEMPORARIES, errnoCode, makeDirs, removeMadeDirs, writeFileAtomic } from './files.js';
import { pidAlive, removeLeftovers } from './lock.js';
import { ONNX_INPUTS, OPSET, onnxModel, readLayers, type InputKind, type NetLayer } from './onnx.js';
import { startBackend } from './run.js';
import { WEIGHTS_NAME } from './state.js';
import { NORMALISE_WORDS } from './batches.js';
import tfl from './tfl.cjs';

/** What a tfjs export takes, in words (its model.json's userDefinedMetadata says it). */
const TFJS_INPUTS: Record<InputKind, string> = {
  normalized: `float32 [N, 32, 32, 3] (NHWC, RGB), each value ${NORMALISE_WORDS}`,
  raw: 'float32 [N, 32, 32, 3] (NHWC, RGB), pixels 0-255 as tf.browser.fromPixels gives them; normalised inside (a Rescaling layer)',
};
/** The class names file of a tfjs folder. */
const LABELS_FILE = 'labels.txt';
/** The class names file beside an .onnx file: `model.onnx` -> `model.labels.txt`. */
export const onnxLabelsPath = (out: string) => path.join(path.dirname(out), `${path.basename(out).replace(/\.onnx$/i, '')}.labels.txt`);
const labelsText = (classNames: string[]) => classNames.join('\n') + '\n';

export const EXPORT_FORMATS = ['onnx', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  modelDir: string;
  format: ExportFormat;
  /** The .onnx file, or the folder for tfjs. */
  out: string;
  /** What the model takes: what the network sees, or (raw) a decoder's pixels, normalised inside. */
  input: InputKind;
  /** Replace an earlier export at `out` (a tfjs folder only when it holds nothing else). */
  overwrite: boolean;
  backend: BackendChoice;
  gpu: boolean;
  quiet?: boolean;
  producerVersion: string;
}

export interface ExportResult {
  format: ExportFormat;
  out: string;
  bytes: number;
  classNames: string[];
  epochs: number | null;
  /** What the exported model takes, in words. */
  input: string;
  /** The class names file written beside the model. */
  labels: string;
}

/** A tfjs export's own files: model.json, its hashed weights, labels.txt. Only a folder of these is replaced by --overwrite. */
const isExportFile = (name: string) => name === MODEL_FILE || name === LABELS_FILE || WEIGHTS_NAME.test(name) || ATOMIC_TEMPORARIES.test(name);

export async function runExport(opts: ExportOptions, hooks: { log?: (line: string) => void } = {}): Promise<ExportResult> {
  await checkModelDir(opts.modelDir);
  // First: an export an older version moved aside is back at --out before --out is judged.
  await tidyExportLeftovers(opts.out);
  await checkOut(opts);
  await startBackend(opts.backend, { gpu: opts.gpu, quiet: opts.quiet, say: hooks.log ?? (() => {}) });
  const { model, classNames, epochs } = await loadTrainedModel(opts.modelDir);
  try {
    const created = await makeDirs(path.dirname(opts.out), 'folder', 'pass another --out');
    let done = false;
    try {
      const result = opts.format === 'onnx'
        ? await writeOnnx(opts, await readLayers(model, opts.modelDir), classNames, model.inputs[0]!.shape.slice(1) as number[])
        : await writeTfjs(opts, await checkpointFiles(opts.input === 'raw' ? withRescaling(model) : model), classNames);
      done = true;
      return { format: opts.format, out: opts.out, bytes: result.bytes, classNames, epochs, input: result.input, labels: result.labels };
    } finally {
      if (!done) await removeMadeDirs(path.dirname(opts.out), created);
    }
  } finally {
    model.dispose();
  }
}

/** `p` with its folder's symbolic links resolved, where the folder exists (else as given). */
const realFolder = async (p: string) => path.join(await fsp.realpath(path.dirname(p)).catch(() => path.dirname(p)), path.basename(p));
const isInside = (p: string, dir: string) => p === dir || p.startsWith(dir + path.sep);

/**
 * Refuses an `out` that is the model being read or a file of a run, with or without --overwrite: `export --model RUN
 * --out RUN/state.json --overwrite` destroyed the checkpoint it read (so did model.json, metrics.jsonl, the weights,
 * and another run's best/state.json).
 */
async function checkNotARun(opts: ExportOptions, st: Stats | null): Promise<void> {
  const out = await realFolder(opts.out);
  const model = await fsp.realpath(opts.modelDir).catch(() => path.resolve(opts.modelDir));
  const hint = opts.format === 'onnx' ? 'pass an --out outside it, e.g. --out model.onnx' : 'pass an --out outside it, e.g. --out web-model';
  if (isInside(model, out)) throw new AlexnetError('USAGE', `--out ${opts.out} holds the model being read (--model ${opts.modelDir})`, hint);
  if (st && isInside(out, model)) throw new AlexnetError('USAGE', `--out ${opts.out} is a file of the model being read (--model ${opts.modelDir}): an export never replaces it`, hint);
  if (st && (await hasCheckpoint(path.dirname(out)))) throw new AlexnetError('USAGE', `--out ${opts.out} belongs to the run in ${path.dirname(opts.out)} (a folder with ${STATE_FILE}): an export never replaces a run's files`, hint);
}

/** Refuses, before any work, an `out` that this export must not replace, or would replace without --overwrite. */
async function checkOut(opts: ExportOptions): Promise<void> {
  const st = await fsp.lstat(opts.out).catch(() => null);
  await checkReplace(opts, st);
  await checkNotARun(opts, st);
  if (opts.format === 'onnx') {
    // The labels beside it are part of the export: replaced with it, never a file of a run's.
    const labels = { ...opts, out: onnxLabelsPath(opts.out) };
    const lst = await fsp.lstat(labels.out).catch(() => null);
    await checkReplace(labels, lst);
    await checkNotARun(labels, lst);
  }
}

async function checkReplace(opts: ExportOptions, st: Stats | null): Promise<void> {
  if (!st) return;
  const again = '`alexnet export ... --overwrite` replaces it';
  if (opts.format === 'onnx') {
    if (!st.isFile()) throw new AlexnetError('USAGE', `--out ${opts.out} is ${st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}`, 'pass the path of the .onnx file to write, e.g. --out model.onnx');
    if (!opts.overwrite) throw new AlexnetError('USAGE', `--out ${opts.out} exists`, `pass another --out, or ${again}`);
    return;
  }
  if (!st.isDirectory()) throw new AlexnetError('USAGE', `--out ${opts.out} is not a directory`, 'pass a folder for the TensorFlow.js model, e.g. --out web-model');
  const names = await fsp.readdir(opts.out);
  if (names.length === 0) return;
  const foreign = names.filter((n) => !isExportFile(n));
  if (foreign.length > 0) {
    throw new AlexnetError('USAGE', `--out ${opts.out} holds other files than an export's (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''})`, 'pass a new or empty folder as --out (a checkpoint folder is never written into)');
  }
  if (!opts.overwrite) throw new AlexnetError('USAGE', `--out ${opts.out} holds an earlier export`, `pass another --out, or ${again}`);
}

async function writeOnnx(opts: ExportOptions, layers: NetLayer[], classNames: string[], inputShape: number[]) {
  const bytes = onnxModel(layers, { classNames, inputShape, producerVersion: opts.producerVersion, input: opts.input });
  const labels = onnxLabelsPath(opts.out);
  await writeFileAtomic(labels, labelsText(classNames));
  await writeFileAtomic(opts.out, bytes);
  return { bytes: bytes.length, input: `${ONNX_INPUTS[opts.input].words}; ONNX opset ${OPSET}`, labels };
}

/**
 * The network behind a Rescaling layer (Keras's, in tfjs-layers) that takes 0-255 pixels to x / 127.5 - 1, the
 * seed's normalisation (float32's rounding of 1/127.5 aside: within 1e-7 of the values training uses). The layers
 * are the model's own, shared: nothing is copied.
 */
function withRescaling(model: tfl.LayersModel): tfl.LayersModel {
  const [, h, w, c] = model.inputs[0]!.shape as number[];
  return tfl.sequential({ layers: [tfl.layers.rescaling({ scale: 1 / 127.5, offset: -1, inputShape: [h!, w!, c!], name: 'normalise' }), ...model.layers] });
}

/** `s` as a literal part of a regular expression. */
const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * What killed exports to `out` left beside it: writeFileAtomic's `.NAME.tmp-PID-HEX` (an .onnx file, or a tfjs
 * folder being made) and an older version's `.NAME.tmp-PID-HEX-old` (the export it moved aside), their makers'
 * pids dead. Such a moved-aside export is whole: where `out` is gone (a kill between that version's two renames
 * left nothing there), it is put back first.
 */
async function tidyExportLeftovers(out: string): Promise<void> {
  const dir = path.dirname(out);
  const pattern = new RegExp(`^\\.${literal(path.basename(out))}\\.tmp-(\\d+)-[0-9a-f]{12}(-old)?$`);
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const aside = names.find((n) => pattern.exec(n)?.[2] !== undefined && !pidAlive(Number(pattern.exec(n)![1])));
  if (aside && !(await fsp.lstat(out).catch(() => null))) await fsp.rename(path.join(dir, aside), out).catch(() => {});
  await removeLeftovers(dir, pattern);
}

/**
 * The checkpoint's model.json and weights, with the class names and the input in model.json's
 * `userDefinedMetadata` (which `tf.loadLayersModel` keeps: `model.getUserDefinedMetadata()`). At every instant `out`
 * holds the earlier export or the new one, whole, as a checkpoint is saved (src/checkpoint.ts): a new folder is
 * written under a temporary name and renamed into place; an earlier export gets the new weights beside its own
 * (hash-named, so they do not collide), then model.json, which names them, renamed over, then loses its old weights.
 * (Moving the earlier folder aside and the new one in, two renames, left neither where a kill fell between them.)
 */
async function writeTfjs(opts: ExportOptions, files: Awaited<ReturnType<typeof checkpointFiles>>, classNames: string[]) {
  const input = TFJS_INPUTS[opts.input];
  const modelJson = JSON.stringify({ ...(JSON.parse(files.modelJson) as object), userDefinedMetadata: { classNames, input } });
  if (await fsp.lstat(opts.out).then(() => true, () => false)) {
    await removeLeftovers(opts.out, ATOMIC_TEMPORARIES);
    await writeFileAtomic(path.join(opts.out, LABELS_FILE), labelsText(classNames));
    await writeFileAtomic(path.join(opts.out, files.weightsFile), files.weights);
    await writeFileAtomic(path.join(opts.out, MODEL_FILE), modelJson);
    for (const n of await fsp.readdir(opts.out)) if (WEIGHTS_NAME.test(n) && n !== files.weightsFile) await fsp.rm(path.join(opts.out, n), { force: true });
  } else {
    const tmp = path.join(path.dirname(opts.out), `.${path.basename(opts.out)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(tmp);
    try {
      await writeFileAtomic(path.join(tmp, LABELS_FILE), labelsText(classNames));
      await writeFileAtomic(path.join(tmp, files.weightsFile), files.weights);
      await writeFileAtomic(path.join(tmp, MODEL_FILE), modelJson);
      await fsp.rename(tmp, opts.out);
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      if (errnoCode(e) === 'ENOTEMPTY' || errnoCode(e) === 'EEXIST') throw new AlexnetError('IO', `--out ${opts.out} changed while the export was written`, 'run the command again');
      throw e;
    }
  }
  return { bytes: files.weights.length + Buffer.byteLength(modelJson), input, labels: path.join(opts.out, LABELS_FILE) };
}
