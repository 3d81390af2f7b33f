// `alexnet eval`: the flags as typed options, the evaluation (src/run.ts), and the report on stdout.

import { parseBackendChoice } from '../backends/index.js';
import type { EvalReport } from '../evaluate.js';
import { LIMITS, RECIPE, parseField } from '../recipe.js';
import { evalJson, evalText } from '../report.js';
import { runEvaluation, type EvaluationOptions } from '../run.js';
import { interruptSignal } from './lifecycle.js';
import { processConsole, type Console } from './output.js';
import { explicitSettings, parsePath } from './parse.js';
import { dataRequest, downloadHooks, type DataFlags } from './download.js';

export interface EvalCommandOptions extends EvaluationOptions {
  json: boolean;
  quiet: boolean;
}

export function evalOptions(flags: DataFlags & Record<string, unknown>, isExplicit: (flag: string) => boolean = (f) => flags[f] !== undefined): EvalCommandOptions {
  return {
    modelDir: parsePath('--model', String(flags.model)),
    data: dataRequest(flags, isExplicit),
    // --batch-size here is the evaluation batch: the run's --eval-batch-size unless given.
    batchSize: typeof flags.batchSize === 'string' ? parseField(RECIPE.evalBatchSize, flags.batchSize, '--batch-size') : null,
    limitTest: typeof flags.limitTest === 'string' ? parseField(LIMITS.limitTest, flags.limitTest) : null,
    tta: typeof flags.tta === 'string' ? parseField(RECIPE.tta, flags.tta) : null,
    backend: parseBackendChoice(String(flags.backend ?? 'auto')),
    gpu: Boolean(flags.gpu),
    settings: explicitSettings(flags, isExplicit),
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
  };
}

export async function evalCommand(opts: EvalCommandOptions, con: Console = processConsole): Promise<EvalReport> {
  const interrupt = interruptSignal();
  const hooks = downloadHooks(con, opts.quiet, interrupt.signal);
  try {
    const { report, data } = await runEvaluation(opts, hooks);
    con.out((opts.json ? evalJson(report, data) : evalText(report)) + '\n');
    return report;
  } finally {
    hooks.stop();
    interrupt.dispose();
  }
}
