import * as path from 'node:path';
import { initBackend, parseBackendChoice, type BackendChoice } from '../backends/index.js';
import { checkModelDir, loadTrainedModel } from '../checkpoint.js';
import { loadCifar } from '../data/dataset.js';
import { evaluateReport, type EvalReport } from '../evaluate.js';
import { evalJson, evalText } from '../report.js';
import { DEFAULT_RECIPE } from '../train.js';
import { logLine, parseIntFlag, parseThreads } from './common.js';
import { downloadOptions, runDownload, type DataFlags, type DownloadOptions } from './download.js';

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
  batchSize: number;
  limitTest: number | null;
  threads: number;
  backend: BackendChoice;
  gpu: boolean;
  json: boolean;
  quiet: boolean;
}

export function evalOptions(flags: EvalFlags): EvalOptions {
  return {
    modelDir: path.resolve(flags.model),
    data: downloadOptions(flags),
    batchSize: parseIntFlag('--batch-size', 1, 65536)(flags.batchSize ?? String(DEFAULT_RECIPE.evalBatchSize)),
    limitTest: flags.limitTest !== undefined ? parseIntFlag('--limit-test', 1)(flags.limitTest) : null,
    threads: parseThreads(flags.threads),
    backend: parseBackendChoice(flags.backend ?? 'auto'),
    gpu: flags.gpu ?? false,
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
  };
}

export async function runEval(opts: EvalOptions): Promise<EvalReport> {
  const say = opts.quiet ? () => {} : logLine;
  await checkModelDir(opts.modelDir);
  await runDownload({ ...opts.data, quiet: opts.quiet });
  const data = await loadCifar(opts.data.dataDir, { limitTrain: 0, limitTest: opts.limitTest ?? undefined });
  const backend = await initBackend(opts.backend, { gpu: opts.gpu });
  say(`backend: ${backend.detail}`);
  const { model, epochs } = await loadTrainedModel(opts.modelDir);
  say(`model ${opts.modelDir}${epochs !== null ? ` (trained ${epochs} epochs)` : ''} on ${data.test.count} test images`);
  const runner = await backend.runner(model, { threads: opts.threads });
  let report: EvalReport;
  try {
    // Names from the data being evaluated: they are what the labels mean.
    report = await evaluateReport(model, data.test, opts.batchSize, data.classNames, runner);
  } finally {
    await runner.dispose();
    model.dispose();
  }
  process.stdout.write((opts.json ? evalJson(report) : evalText(report)) + '\n');
  return report;
}
