import * as path from 'node:path';
import { initBackend, parseBackendChoice, type BackendChoice } from '../backends/index.js';
import { checkModelDir, loadTrainedModel, readStateIfAny } from '../checkpoint.js';
import { loadCifar } from '../data/dataset.js';
import { evaluateReport, type EvalReport } from '../evaluate.js';
import { evalJson, evalText } from '../report.js';
import { DEFAULT_RECIPE } from '../train.js';
import { logLine, parseIntFlag, parseThreads } from './common.js';
import { dataFlagsGiven, downloadOptions, runDataSource, runDownload, type DataFlags, type DownloadOptions } from './download.js';

export interface EvalFlags extends DataFlags {
  model: string;
  batchSize?: string;
  limitTest?: string;
  threads?: string;
  backend?: string;
  gpu?: boolean;
  json?: boolean;
}

export interface EvalOptions {
  modelDir: string;
  data: DownloadOptions;
  /** Whether --data-dir, --url, --md5 or --no-verify was given; if not, the run's data (its state.json). */
  dataExplicit: boolean;
  /** null: the run's --eval-batch-size (its state.json), else the seed's 128. */
  batchSize: number | null;
  /** null: the run's --limit-test where it had one. */
  limitTest: number | null;
  threads: number;
  backend: BackendChoice;
  gpu: boolean;
  json: boolean;
  quiet: boolean;
}

export function evalOptions(flags: EvalFlags, isExplicit: (flag: string) => boolean = (f) => (flags as unknown as Record<string, unknown>)[f] !== undefined): EvalOptions {
  return {
    modelDir: path.resolve(flags.model),
    data: downloadOptions(flags),
    dataExplicit: dataFlagsGiven(isExplicit),
    batchSize: flags.batchSize !== undefined ? parseIntFlag('--batch-size', 1, 65536, DEFAULT_RECIPE.evalBatchSize)(flags.batchSize) : null,
    limitTest: flags.limitTest !== undefined ? parseIntFlag('--limit-test', 1, undefined, 1000)(flags.limitTest) : null,
    threads: parseThreads(flags.threads),
    backend: parseBackendChoice(flags.backend ?? 'auto'),
    gpu: flags.gpu ?? false,
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
  };
}

/**
 * By default `eval` scores what the run validated on (issue #14): its data, its --limit-test and its evaluation
 * batch size, so that its seed-style figures equal the last epoch's Valid Loss and Valid Acc.
 */
export async function runEval(opts: EvalOptions): Promise<EvalReport> {
  const say = opts.quiet ? () => {} : logLine;
  await checkModelDir(opts.modelDir);
  const state = await readStateIfAny(opts.modelDir); // validated now, before any download; an exported model has none
  const source = runDataSource(opts.data, state?.data, opts.dataExplicit);
  const limitTest = opts.limitTest ?? state?.limitTest ?? null;
  const batchSize = opts.batchSize ?? state?.recipe?.evalBatchSize ?? DEFAULT_RECIPE.evalBatchSize;
  const info = await runDownload({ ...source, quiet: opts.quiet });
  const data = await loadCifar(source.dataDir, { limitTrain: 0, limitTest: limitTest ?? undefined });
  const backend = await initBackend(opts.backend, { gpu: opts.gpu });
  say(`backend: ${backend.detail}`);
  const { model, epochs } = await loadTrainedModel(opts.modelDir, state);
  say(`model ${opts.modelDir}${epochs !== null ? ` (trained ${epochs} epochs)` : ''} on ${data.test.count} test images`);
  const runner = await backend.runner(model, { threads: opts.threads });
  let report: EvalReport;
  try {
    // Names from the data being evaluated: they are what the labels mean.
    report = await evaluateReport(model, data.test, batchSize, data.classNames, runner);
  } finally {
    await runner.dispose();
    model.dispose();
  }
  process.stdout.write((opts.json ? evalJson(report, info) : evalText(report)) + '\n');
  return report;
}
