import * as path from 'node:path';
import { initBackend, parseBackendChoice, type BackendChoice } from '../backends/index.js';
import { checkModelDir, loadTrainedModel } from '../checkpoint.js';
import { NUM_CLASSES } from '../data/cifar.js';
import { decodeImage, toCifarImage } from '../data/image.js';
import { READ_CAPS, readRegularFile } from '../files.js';
import { predictTop, type ClassScore } from '../predict.js';
import { checkComputes } from '../run.js';
import { predictionLine, round6 } from '../report.js';
import { logger, parseIntFlag, processConsole, type Console } from './common.js';

export interface PredictFlags {
  model: string;
  top?: string;
  backend?: string;
  gpu?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export interface PredictOptions {
  modelDir: string;
  images: string[];
  top: number;
  backend: BackendChoice;
  gpu: boolean;
  json: boolean;
  quiet: boolean;
}

export function predictOptions(images: string[], flags: PredictFlags): PredictOptions {
  return {
    modelDir: path.resolve(flags.model),
    images,
    top: parseIntFlag('--top', 1, NUM_CLASSES, 3)(flags.top ?? '3'),
    backend: parseBackendChoice(flags.backend ?? 'auto'),
    gpu: flags.gpu ?? false,
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
  };
}

/** Reads and prepares every image before anything is printed, so a bad one fails the command cleanly. */
async function readImages(files: string[]): Promise<Uint8Array[]> {
  return Promise.all(files.map(async (file) => {
    const bytes = await readRegularFile(file, READ_CAPS.image, 'IMAGE', file, 'pass paths of PNG or JPEG files');
    return toCifarImage(decodeImage(bytes, file));
  }));
}

export async function runPredict(opts: PredictOptions, con: Console = processConsole): Promise<ClassScore[][]> {
  const say = logger(con, opts.quiet);
  await checkModelDir(opts.modelDir);
  const images = await readImages(opts.images);
  const backend = await initBackend(opts.backend, { gpu: opts.gpu, quiet: opts.quiet });
  say(`backend: ${backend.detail}`);
  checkComputes(backend);
  const { model, classNames } = await loadTrainedModel(opts.modelDir);
  const results = await predictTop(model, images, classNames, opts.top);
  model.dispose();
  const out = results.map((top, i) =>
    opts.json
      ? JSON.stringify({ type: 'prediction', image: opts.images[i], top: top.map((s) => ({ class: s.name, index: s.index, probability: round6(s.probability) })) })
      : predictionLine(opts.images[i]!, top),
  );
  con.out(out.join('\n') + '\n');
  return results;
}
