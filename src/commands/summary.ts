// `alexnet summary`: the network as a table or JSON, built on the backend asked for (its line on stderr).

import { parseBackendChoice, type BackendChoice } from '../backends/index.js';
import type { ModelSummary } from '../model.js';
import { summaryText } from '../report.js';
import { runSummary } from '../run.js';
import { MAX_CLASSES, MIN_CLASSES, NUM_CLASSES } from '../data/cifar.js';
import { logger, processConsole, type Console } from './output.js';
import { parseIntFlag } from './parse.js';

export interface SummaryFlags {
  json?: boolean;
  classes?: string;
  backend?: string;
  gpu?: boolean;
  quiet?: boolean;
}

export interface SummaryOptions {
  json: boolean;
  /** The head's width: 10 (CIFAR-10), 100 (CIFAR-100), an image folder's classes. */
  classes: number;
  backend: BackendChoice;
  gpu: boolean;
  quiet: boolean;
}

export function summaryOptions(flags: SummaryFlags): SummaryOptions {
  return { json: Boolean(flags.json), classes: parseIntFlag('--classes', MIN_CLASSES, MAX_CLASSES, NUM_CLASSES)(flags.classes ?? String(NUM_CLASSES)), backend: parseBackendChoice(flags.backend ?? 'auto'), gpu: Boolean(flags.gpu), quiet: Boolean(flags.quiet) };
}

export async function summaryCommand(opts: SummaryOptions, con: Console = processConsole): Promise<ModelSummary> {
  const summary = await runSummary(opts, { log: logger(con, opts.quiet) });
  con.out((opts.json ? JSON.stringify({ type: 'network', ...summary }) : summaryText(summary)) + '\n');
  return summary;
}
