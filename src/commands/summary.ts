import { initBackend, parseBackendChoice } from '../backends/index.js';
import { createModel, summarize, type ModelSummary } from '../model.js';
import { summaryText } from '../report.js';
import * as tf from '../tf.js';
import { logger, processConsole, type Console } from './common.js';

export interface SummaryFlags {
  json?: boolean;
  backend?: string;
  gpu?: boolean;
  quiet?: boolean;
}

export async function runSummary(flags: SummaryFlags, con: Console = processConsole): Promise<ModelSummary> {
  const backend = await initBackend(parseBackendChoice(flags.backend ?? 'auto'), { gpu: flags.gpu, quiet: flags.quiet });
  logger(con, Boolean(flags.quiet))(`backend: ${backend.detail}`);
  const model = createModel({ seed: 0 });
  const summary = summarize(model);
  model.dispose();
  tf.disposeVariables();
  con.out((flags.json ? JSON.stringify({ type: 'network', ...summary }) : summaryText(summary)) + '\n');
  return summary;
}
