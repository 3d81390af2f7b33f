import { initBackend, parseBackendChoice } from '../backends/index.js';
import { createModel, summarize, type ModelSummary } from '../model.js';
import { summaryText } from '../report.js';
import * as tf from '../tf.js';
import { logLine } from './common.js';

export interface SummaryFlags {
  json?: boolean;
  backend?: string;
  gpu?: boolean;
  quiet?: boolean;
}

export async function runSummary(flags: SummaryFlags): Promise<ModelSummary> {
  const backend = await initBackend(parseBackendChoice(flags.backend ?? 'auto'), { gpu: flags.gpu });
  if (!flags.quiet) logLine(`backend: ${backend.detail}`);
  const model = createModel({ seed: 0 });
  const summary = summarize(model);
  model.dispose();
  tf.disposeVariables();
  process.stdout.write((flags.json ? JSON.stringify(summary) : summaryText(summary)) + '\n');
  return summary;
}
