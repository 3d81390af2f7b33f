// `alexnet export`: a trained model where users deploy it (issue #27): ONNX for ONNX Runtime and its kin
// (src/onnx.ts), or a TensorFlow.js folder that `tf.loadLayersModel` loads in a browser. The model is read as
// `eval` reads it (its weights checked against state.json), and the result appears whole or not at all: a file
// by writeFileAtomic, a folder written under a temporary name and renamed.

import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { BackendChoice } from './backends/index.js';
import { checkModelDir, checkpointFiles, loadTrainedModel, MODEL_FILE } from './checkpoint.js';
import { AlexnetError } from './errors.js';
import { errnoCode, makeDirs, removeMadeDirs, writeFileAtomic } from './files.js';
import { INPUT_WORDS, OPSET, onnxModel, readLayers, type NetLayer } from './onnx.js';
import { startBackend } from './run.js';
import { WEIGHTS_NAME } from './state.js';
import { NORMALISE_WORDS } from './batches.js';

/** What a tfjs export takes, in words (its model.json's userDefinedMetadata says it). */
const TFJS_INPUT_WORDS = `float32 [N, 32, 32, 3] (NHWC, RGB), each value ${NORMALISE_WORDS}`;

export const EXPORT_FORMATS = ['onnx', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  modelDir: string;
  format: ExportFormat;
  /** The .onnx file, or the folder for tfjs. */
  out: string;
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
}

/** A tfjs export's own files: model.json and its hashed weights. Only a folder of these is replaced by --overwrite. */
const isExportFile = (name: string) => name === MODEL_FILE || WEIGHTS_NAME.test(name);

export async function runExport(opts: ExportOptions, hooks: { log?: (line: string) => void } = {}): Promise<ExportResult> {
  await checkModelDir(opts.modelDir);
  await checkOut(opts);
  await startBackend(opts.backend, { gpu: opts.gpu, quiet: opts.quiet, say: hooks.log ?? (() => {}) });
  const { model, classNames, epochs } = await loadTrainedModel(opts.modelDir);
  try {
    const created = await makeDirs(path.dirname(opts.out), 'folder', 'pass another --out');
    let done = false;
    try {
      const result = opts.format === 'onnx'
        ? await writeOnnx(opts, await readLayers(model, opts.modelDir), classNames, model.inputs[0]!.shape.slice(1) as number[])
        : await writeTfjs(opts, await checkpointFiles(model), classNames);
      done = true;
      return { format: opts.format, out: opts.out, bytes: result.bytes, classNames, epochs, input: result.input };
    } finally {
      if (!done) await removeMadeDirs(path.dirname(opts.out), created);
    }
  } finally {
    model.dispose();
  }
}

/** Refuses, before any work, an `out` that holds something this export would replace without --overwrite. */
async function checkOut(opts: ExportOptions): Promise<void> {
  const st = await fsp.lstat(opts.out).catch(() => null);
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
  const bytes = onnxModel(layers, { classNames, inputShape, producerVersion: opts.producerVersion });
  await writeFileAtomic(opts.out, bytes);
  return { bytes: bytes.length, input: `${INPUT_WORDS}; ONNX opset ${OPSET}` };
}

/**
 * The checkpoint's model.json and weights, with the class names and the input in model.json's
 * `userDefinedMetadata` (which `tf.loadLayersModel` keeps: `model.getUserDefinedMetadata()`). Written into a
 * temporary folder beside `out`, then renamed: an earlier export is replaced only once the new one is whole.
 */
async function writeTfjs(opts: ExportOptions, files: Awaited<ReturnType<typeof checkpointFiles>>, classNames: string[]) {
  const modelJson = { ...(JSON.parse(files.modelJson) as object), userDefinedMetadata: { classNames, input: TFJS_INPUT_WORDS } };
  const tmp = path.join(path.dirname(opts.out), `.${path.basename(opts.out)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(tmp);
  let old: string | null = null;
  try {
    await writeFileAtomic(path.join(tmp, files.weightsFile), files.weights);
    await writeFileAtomic(path.join(tmp, MODEL_FILE), JSON.stringify(modelJson));
    // A folder that exists is moved aside (checkOut allowed it: empty, or an earlier export), then removed.
    if (await fsp.lstat(opts.out).then(() => true, () => false)) {
      old = `${tmp}-old`;
      await fsp.rename(opts.out, old);
    }
    await fsp.rename(tmp, opts.out);
  } catch (e) {
    if (old) await fsp.rename(old, opts.out).catch(() => {});
    await fsp.rm(tmp, { recursive: true, force: true });
    if (errnoCode(e) === 'ENOTEMPTY') throw new AlexnetError('IO', `--out ${opts.out} changed while the export was written`, 'run the command again');
    throw e;
  }
  if (old) await fsp.rm(old, { recursive: true, force: true });
  return { bytes: files.weights.length + Buffer.byteLength(JSON.stringify(modelJson)), input: TFJS_INPUT_WORDS };
}
