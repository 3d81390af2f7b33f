// `alexnet train`: the flags as typed options, the run (src/run.ts), and what a person or a pipeline sees: one
// line (or JSON object) per epoch on stdout, the progress bar and the log on stderr, a summary with --json.

import { randomInt } from 'node:crypto';
import type { SingleBar } from 'cli-progress';
import { parseBackendChoice } from '../backends/index.js';
import { AlexnetError } from '../errors.js';
import * as path from 'node:path';
import { LIMITS, PRESET_FIELDS, RECIPE, type Limits, type Preset, type Recipe } from '../recipe.js';
import { epochJson, epochLine, hhmmss, lrText, round6, testJson, testLine } from '../report.js';
import { runTraining, type TrainingOptions, type TrainingResult } from '../run.js';
import { BEST_DIR } from '../rundir.js';
import { earlyStopText, type BatchProgress, type EvalProgress } from '../train.js';
import { critical, interruptSignal, isStdoutClosed } from './lifecycle.js';
import { logger, processConsole, type Console, stderrBar } from './output.js';
import { explicitSettings, parseFields, parsePath } from './parse.js';
import { dataRequest, downloadHooks, type DataFlags } from './download.js';
import { dataRecord } from '../data/dataset.js';

export interface TrainCommandOptions extends TrainingOptions {
  json: boolean;
  quiet: boolean;
}

/** Turns flag strings (commander's, by option name) into typed options, once. `isExplicit`: whether a flag came from the command line. */
export function trainOptions(flags: DataFlags & Record<string, unknown>, isExplicit: (flag: string) => boolean): TrainCommandOptions {
  const recipe = parseFields(RECIPE, flags, isExplicit);
  const limits = parseFields(LIMITS, flags, isExplicit);
  // --recipe NAME: its fields, where no flag of the command line sets them.
  for (const [k, v] of Object.entries(PRESET_FIELDS[recipe.values.preset as Preset])) if (!recipe.explicit.has(k as keyof Recipe)) recipe.values[k as keyof Recipe] = v;
  // No --seed: a fresh one, reported in --json and saved in checkpoints so the run can be repeated.
  recipe.values.seed ??= randomInt(2 ** 31);
  return {
    recipe: recipe.values as Recipe,
    limits: { limitTrain: (limits.values.limitTrain as number | undefined) ?? null, limitTest: (limits.values.limitTest as number | undefined) ?? null },
    explicit: new Set<keyof Recipe | keyof Limits | 'backend' | 'gpu'>([...recipe.explicit, ...limits.explicit, ...(['backend', 'gpu'] as const).filter(isExplicit)]),
    data: dataRequest(flags, isExplicit),
    backend: parseBackendChoice(String(flags.backend ?? 'auto')),
    gpu: Boolean(flags.gpu),
    settings: explicitSettings(flags, isExplicit),
    save: typeof flags.save === 'string' ? parsePath('--save', flags.save) : null,
    resume: typeof flags.resume === 'string' ? parsePath('--resume', flags.resume) : null,
    keepBest: Boolean(flags.keepBest),
    overwrite: Boolean(flags.overwrite),
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
  };
}

export async function trainCommand(opts: TrainCommandOptions, con: Console = processConsole): Promise<TrainingResult> {
  const interrupt = interruptSignal();
  const download = downloadHooks(con, opts.quiet, interrupt.signal);
  const bar = opts.quiet || !con.errIsTTY ? null : progressBar();
  const t0 = performance.now();
  try {
    const result = await runTraining(opts, {
      ...download,
      log: (line) => {
        bar?.stop();
        download.log!(line);
      },
      critical,
      onBatch: bar?.onBatch,
      onEval: bar?.onEval,
      onEpochEnd: (m) => {
        bar?.stop();
        con.out((opts.json ? epochJson(m) : epochLine(m)) + '\n');
      },
    });
    bar?.stop();
    if (result.interrupted && isStdoutClosed()) throw new AlexnetError('PIPE', 'stdout was closed'); // checkpoint saved; quietly
    if (result.interrupted) {
      const where = `epoch ${result.state.epoch}, batch ${result.state.batch}`;
      throw new AlexnetError(
        'INTERRUPTED',
        `interrupted by ${interrupt.which() ?? 'a signal'} at ${where}${result.saveDir ? `; checkpoint saved in ${result.saveDir}` : ''}`,
        result.saveDir ? `continue with \`alexnet train --resume ${result.saveDir}\`` : 'pass --save DIR to be able to resume an interrupted run',
      );
    }
    if (result.stoppedEarly) logger(con, opts.quiet)(`--patience ${result.state.recipe.patience}: ${earlyStopText(result.state)}`);
    if (result.test) con.out((opts.json ? testJson(result.test) : testLine(result.test)) + '\n');
    if (opts.json) con.out(summaryJson(result, (performance.now() - t0) / 1000) + '\n');
    if (result.saveDir) logger(con, opts.quiet)(`checkpoint in ${result.saveDir}`);
    return result;
  } finally {
    bar?.stop();
    download.stop();
    interrupt.dispose();
  }
}

/** --json's last line: the run as a whole. */
function summaryJson(r: TrainingResult, seconds: number): string {
  const last = r.history[r.history.length - 1];
  const recipe = r.state.recipe;
  return JSON.stringify({
    type: 'summary',
    backend: r.backend.name,
    gpu: r.backend.gpu,
    threads: Number(r.settings.threads ?? 1),
    epochs: r.history.length,
    seed: recipe.seed,
    batchSize: recipe.batchSize,
    lr: recipe.lr,
    recipe,
    trainImages: r.trainImages,
    validImages: r.validImages,
    testImages: r.testImages,
    data: dataRecord(r.data),
    finalValidAcc: last ? round6(last.validAcc) : null,
    bestValidAcc: round6(Math.max(...r.history.map((h) => h.validAcc))),
    bestEpoch: r.state.best?.epoch ?? null,
    stoppedEarly: r.stoppedEarly,
    test: r.test && { loss: round6(r.test.loss), acc: round6(r.test.acc) },
    bestSavedTo: r.saveDir && r.state.keepBest && r.state.best ? path.join(r.saveDir, BEST_DIR) : null,
    seconds: round6(seconds),
    savedTo: r.saveDir,
  });
}

/**
 * A per-epoch bar on stderr, redrawn at most ~10 times a second; then the epoch's evaluation as a stage of its own
 * (`eval 3/79`: it sat at `10/10 ... ETA 00:00:00` for the ~11 s of a 10,000-image evaluation on wasm: issue #25).
 */
function progressBar(): { onBatch: (p: BatchProgress) => void; onEval: (p: EvalProgress) => void; stop: () => void } {
  let bar: SingleBar | null = null;
  let epoch = -1;
  let stage = '';
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
        stage = '';
        // Rates count from the first batch seen, which is already done when this is called.
        t0 = now;
        startImages = p.images;
        startBatch = p.batch;
        bar = stderrBar(`epoch ${p.epoch} [{bar}] {value}/{total} batches | {ips} img/s | loss {loss} | lr {lr} | ETA {remaining}`);
        bar.start(p.batches, p.batch, { ips: '-', loss: '-', lr: lrText(p.lr), remaining: '-' });
      }
      if (now - lastDrawn >= 100) {
        lastDrawn = now;
        const seconds = (now - t0) / 1000;
        const measured = p.batch > startBatch && seconds > 0;
        const eta = measured ? hhmmss(((p.batches - p.batch) * seconds) / (p.batch - startBatch)) : '-';
        const ips = measured ? ((p.images - startImages) / seconds).toFixed(0) : '-';
        // The loss the training loop last read from the device: the bar never reads on its own (issue #17).
        bar.update(p.batch, { ips, loss: p.runningLoss === null ? '-' : p.runningLoss.toFixed(4), lr: lrText(p.lr), remaining: eta });
      }
    },
    onEval: (p) => {
      const now = performance.now();
      if (stage !== `${p.epoch}-${p.split}` || bar === null) {
        bar?.stop();
        stage = `${p.epoch}-${p.split}`;
        epoch = -1; // the next epoch's batches start a bar of their own
        t0 = now;
        bar = stderrBar(`epoch ${p.epoch} ${p.split === 'valid' ? 'eval' : 'test'} [{bar}] {value}/{total} batches | ETA {remaining}`);
        bar.start(p.batches, 0, { remaining: '-' });
      }
      if (now - lastDrawn >= 100 || p.batch === p.batches) {
        lastDrawn = now;
        const seconds = (now - t0) / 1000;
        bar.update(p.batch, { remaining: p.batch > 0 && seconds > 0 ? hhmmss(((p.batches - p.batch) * seconds) / p.batch) : '-' });
      }
    },
    stop: () => {
      bar?.stop();
      bar = null;
      stage = '';
    },
  };
}
