import { parseBackendChoice, type BackendChoice } from '../backends/index.js';
import { MAX_CLASSES } from '../data/cifar.js';
import type { ClassScore } from '../predict.js';
import { runPrediction } from '../run.js';
import { predictionLine, round6 } from '../report.js';
import { logger, processConsole, type Console } from './output.js';
import { parseIntFlag, parsePath } from './parse.js';

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
  /** Null: 3, or all of the model's classes where it has fewer. */
  top: number | null;
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
    top: flags.top === undefined ? null : parseIntFlag('--top', 1, MAX_CLASSES, 3)(flags.top), // at most the model's classes
    backend: parseBackendChoice(flags.backend ?? 'auto'),
    gpu: flags.gpu ?? false,
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
  };
}

export async function predictCommand(opts: PredictOptions, con: Console = processConsole): Promise<ClassScore[][]> {
  const { predictions, classNames } = await runPrediction(opts, { log: logger(con, opts.quiet) });
  const out = predictions.map((p, i) =>
    opts.json
      // `top` as the line shows it (6 places); `probabilities` and `logits` whole (float32 as read), in `classes` order.
      ? JSON.stringify({ type: 'prediction', image: opts.images[i], top: p.top.map((s) => ({ class: s.name, index: s.index, probability: round6(s.probability) })), classes: classNames, probabilities: p.probabilities, logits: p.logits })
      : predictionLine(opts.images[i]!, p.top),
  );
  con.out(out.join('\n') + '\n');
  return predictions.map((p) => p.top);
}
