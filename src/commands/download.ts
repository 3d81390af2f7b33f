import * as path from 'node:path';
import { ARCHIVES, DATASETS, LABEL_KINDS, defaultDataDir, obtainData, type ArchiveDataset, type DataInfo, type DataSource, type LabelKind, type ObtainHooks } from '../data/dataset.js';
import { parseSource } from '../data/download.js';
import { AlexnetError } from '../errors.js';
import type { DataRequest } from '../run.js';
import { interruptSignal } from './lifecycle.js';
import { decodeProgress, downloadProgress, logger, processConsole, type Console } from './output.js';
import { networkTimingFromEnv, parseMd5, parsePath } from './parse.js';

/** Flags of every command that reads a data set (and downloads it first when it is missing). */
export interface DataFlags {
  dataDir?: string;
  url?: string;
  md5?: string;
  verify?: boolean; // false with --no-verify
  force?: boolean;
  quiet?: boolean;
  dataset?: string;
  labels?: string;
  images?: string;
  skipBadImages?: boolean;
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
  const dataset = flags.dataset ?? 'cifar10';
  if (!(DATASETS as readonly string[]).includes(dataset)) throw new AlexnetError('USAGE', `--dataset must be ${DATASETS.join(' or ')}, got ${JSON.stringify(dataset)}`, 'e.g. --dataset cifar100, or --images DIR for a folder of your own images');
  if (flags.labels !== undefined && !(LABEL_KINDS as readonly string[]).includes(flags.labels)) throw new AlexnetError('USAGE', `--labels must be ${LABEL_KINDS.join(' or ')}, got ${JSON.stringify(flags.labels)}`, 'e.g. --dataset cifar100 --labels coarse (its 20 superclasses)');
  if (flags.labels !== undefined && dataset !== 'cifar100') throw new AlexnetError('USAGE', '--labels is CIFAR-100\'s (fine: 100 classes, coarse: 20)', 'add --dataset cifar100, or drop --labels');
  if (flags.skipBadImages && flags.images === undefined) throw new AlexnetError('USAGE', '--skip-bad-images needs --images DIR', 'add --images DIR, or drop --skip-bad-images');
  if (flags.images !== undefined) {
    const other = [flags.dataset !== undefined && '--dataset', flags.url !== undefined && '--url', flags.md5 !== undefined && '--md5', flags.verify === false && '--no-verify'].filter(Boolean);
    if (other.length > 0) throw new AlexnetError('USAGE', `--images reads a folder: ${other.join(', ')} ${other.length === 1 ? 'is' : 'are'} for a downloaded data set`, `drop ${other.join(' and ')}`);
  }
  const archive = ARCHIVES[dataset as ArchiveDataset];
  return {
    dataDir: flags.dataDir !== undefined ? parsePath('--data-dir', flags.dataDir) : defaultDataDir(),
    url: flags.url !== undefined ? urlFlag(flags.url) : archive.url,
    md5: flags.verify === false ? null : flags.md5 !== undefined ? parseMd5(flags.md5) : archive.md5,
    force: flags.force ?? false,
    ...(dataset === 'cifar10' ? {} : { dataset: dataset as ArchiveDataset, labels: (flags.labels as LabelKind | undefined) ?? 'fine' }),
    ...(flags.images !== undefined ? { images: { dir: parsePath('--images', flags.images), skipBad: Boolean(flags.skipBadImages) } } : {}),
    explicit: ['dataDir', 'url', 'md5', 'verify', 'dataset', 'labels', 'images', 'skipBadImages'].some(isExplicit),
    named: (['dataset', 'labels', 'images'] as const).filter(isExplicit).map((f) => `--${f}` as const),
  };
}

/** The hooks that show a download: a bar or progress lines, the log lines, the retry delay and the signal. */
export function downloadHooks(con: Console, quiet: boolean, signal?: AbortSignal): ObtainHooks & { stop: () => void } {
  const progress = downloadProgress(con, quiet);
  const decoding = decodeProgress(con, quiet);
  const say = logger(con, quiet);
  return {
    onProgress: progress.onProgress,
    onDecode: decoding.onDecode,
    log: (line) => {
      progress.stop();
      decoding.stop();
      say(line);
    },
    ...networkTimingFromEnv(),
    signal,
    stop: () => {
      progress.stop();
      decoding.stop();
    },
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
