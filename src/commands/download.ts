import * as path from 'node:path';
import { defaultDataDir, ensureDataDefaults, obtainData, type DataInfo, type DataSource, type ObtainHooks } from '../data/dataset.js';
import { parseSource } from '../data/download.js';
import { AlexnetError } from '../errors.js';
import type { DataRequest } from '../run.js';
import { interruptSignal } from './lifecycle.js';
import { downloadProgress, logger, processConsole, type Console } from './output.js';
import { networkTimingFromEnv, parseMd5, parsePath } from './parse.js';

/** Flags of every command that reads CIFAR-10 (and downloads it first when it is missing). */
export interface DataFlags {
  dataDir?: string;
  url?: string;
  md5?: string;
  verify?: boolean; // false with --no-verify
  force?: boolean;
  quiet?: boolean;
}

/**
 * --url: a URL as given, a path made absolute (the run's state.json records it, and a resume may start in
 * another folder); not empty.
 */
function urlFlag(value: string): string {
  parsePath('--url', value);
  return parseSource(value).kind === 'file' && !/^file:/i.test(value) ? path.resolve(value) : value;
}

/** Where the data is and where to get it, from the flags; `isExplicit` says whether a flag came from the command line. */
export function dataRequest(flags: DataFlags, isExplicit: (flag: string) => boolean = (f) => (flags as Record<string, unknown>)[f] !== undefined): DataRequest {
  if (flags.md5 !== undefined && flags.verify === false) {
    throw new AlexnetError('USAGE', '--md5 and --no-verify contradict each other', 'pass one of them');
  }
  return {
    dataDir: flags.dataDir !== undefined ? parsePath('--data-dir', flags.dataDir) : defaultDataDir(),
    url: flags.url !== undefined ? urlFlag(flags.url) : ensureDataDefaults.url,
    md5: flags.verify === false ? null : flags.md5 !== undefined ? parseMd5(flags.md5) : ensureDataDefaults.md5,
    force: flags.force ?? false,
    explicit: ['dataDir', 'url', 'md5', 'verify'].some(isExplicit),
  };
}

/** The hooks that show a download: a bar or progress lines, the log lines, the retry delay and the signal. */
export function downloadHooks(con: Console, quiet: boolean, signal?: AbortSignal): ObtainHooks & { stop: () => void } {
  const progress = downloadProgress(con, quiet);
  const say = logger(con, quiet);
  return {
    onProgress: progress.onProgress,
    log: (line) => {
      progress.stop();
      say(line);
    },
    ...networkTimingFromEnv(),
    signal,
    stop: progress.stop,
  };
}

/** Downloads (or finds) the data, with progress and messages on stderr, and stops for Ctrl-C. */
export async function downloadCommand(source: DataSource, opts: { quiet: boolean }, con: Console = processConsole): Promise<DataInfo> {
  const interrupt = interruptSignal();
  const hooks = downloadHooks(con, opts.quiet, interrupt.signal);
  try {
    return await obtainData(source, hooks);
  } finally {
    hooks.stop();
    interrupt.dispose();
  }
}
