// `alexnet summary`: the network as a table or JSON, built on the backend asked for (its line on stderr).

import { parseBackendChoice, type BackendChoice } from '../backends/index.js';
import type { ModelSummary } from '../model.js';
import { summaryText } from '../report.js';
import { runSummary } from '../run.js';
import { logger, processConsole, type Console } from './output.js';

export interface SummaryFlags {
  json?: boolean;
  backend?: string;
  gpu?: boolean;
  quiet?: boolean;
}

export interface SummaryOptions {
  json: boolean;
  backend: BackendChoice;
  gpu: boolean;
  quiet: boolean;
}

export function summaryOptions(flags: SummaryFlags): SummaryOptions {
  return { json: Boolean(flags.json), backend: parseBackendChoice(flags.backend ?? 'auto'), gpu: Boolean(flags.gpu), quiet: Boolean(flags.quiet) };
}

export async function summaryCommand(opts: SummaryOptions, con: Console = processConsole): Promise<ModelSummary> {
  const summary = await runSummary(opts, { log: logger(con, opts.quiet) });
  con.out((opts.json ? JSON.stringify({ type: 'network', ...summary }) : summaryText(summary)) + '\n');
  return summary;
}
