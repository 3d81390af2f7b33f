import { initBackend, parseBackendChoice, type BackendChoice } from '../backends/index.js';
import { checkModelDir, loadTrainedModel } from '../checkpoint.js';
import { NUM_CLASSES } from '../data/cifar.js';
import { decodeImage, toCifarImage } from '../data/image.js';
import { READ_CAPS, readRegularFile } from '../files.js';
import { predictTop, type ClassScore } from '../predict.js';
import { checkComputes } from '../run.js';
import { predictionLine, round6 } from '../report.js';
import { logger, parseIntFlag, parsePath, processConsole, type Console } from './common.js';

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
    modelDir: parsePath('--model', flags.model),
    images: images.map((f) => {
      parsePath('IMAGE', f); // refuses an empty one; the path is printed as given
      return f;
    }),
    top: parseIntFlag('--top', 1, NUM_CLASSES, 3)(flags.top ?? '3'),
    backend: parseBackendChoice(flags.backend ?? 'auto'),
    gpu: flags.gpu ?? false,
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
  };
}

/**
 * Reads and prepares every image before anything is printed, so a bad one fails the command cleanly: one at a
 * time, stopping at the first that fails (all at once, 1,000 files hit EMFILE under `ulimit -n 256`, and twenty
 * 100-megapixel JPEGs took 1.2 GB and went on decoding after the first error: issue #20).
 */
async function readImages(files: string[]): Promise<Uint8Array[]> {
  const images: Uint8Array[] = [];
  for (const file of files) {
    const bytes = await readRegularFile(file, READ_CAPS.image, 'IMAGE', file, 'pass paths of PNG or JPEG files');
    images.push(toCifarImage(decodeImage(bytes, file)));
  }
  return images;
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
