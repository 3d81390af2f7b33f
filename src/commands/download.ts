import { dataInfo, dataNotice, defaultDataDir, ensureData, ensureDataDefaults, type DataInfo } from '../data/dataset.js';
import { AlexnetError } from '../errors.js';
import { downloadProgress, interruptSignal, logLine, parseMd5, retryDelayFromEnv } from './common.js';

/** Flags shared by `download` and `train` (which downloads first when the data is missing). */
export interface DataFlags {
  dataDir?: string;
  url?: string;
  md5?: string;
  verify?: boolean; // false with --no-verify
  force?: boolean;
  quiet?: boolean;
}

export interface DownloadOptions {
  dataDir: string;
  url: string;
  md5: string | null;
  force: boolean;
  quiet: boolean;
}

export function downloadOptions(flags: DataFlags): DownloadOptions {
  if (flags.md5 !== undefined && flags.verify === false) {
    throw new AlexnetError('USAGE', '--md5 and --no-verify contradict each other', 'pass one of them');
  }
  return {
    dataDir: flags.dataDir ?? defaultDataDir(),
    url: flags.url ?? ensureDataDefaults.url,
    md5: flags.verify === false ? null : flags.md5 !== undefined ? parseMd5(flags.md5) : ensureDataDefaults.md5,
    force: flags.force ?? false,
    quiet: flags.quiet ?? false,
  };
}

/** Whether any flag that says where the data is (--data-dir, --url, --md5, --no-verify) came from the command line. */
export const dataFlagsGiven = (isExplicit: (flag: string) => boolean): boolean => ['dataDir', 'url', 'md5', 'verify'].some(isExplicit);

/**
 * Where a command on a saved run reads its data (issue #14): the run's own data dir, URL and MD5 (state.json),
 * unless the user said otherwise on the command line.
 */
export function runDataSource(asked: DownloadOptions, saved: { dataDir: string; url: string; md5: string | null } | undefined, flagsGiven: boolean): DownloadOptions {
  return saved && !flagsGiven ? { ...asked, dataDir: saved.dataDir, url: saved.url, md5: saved.md5 } : asked;
}

/**
 * Downloads (or finds) the data, with progress and messages on stderr, and says so when the data there is
 * not the official CIFAR-10 (a generated or edited archive would otherwise train silently: issue #14).
 */
export async function runDownload(opts: DownloadOptions): Promise<DataInfo> {
  const progress = downloadProgress(opts.quiet);
  const interrupt = interruptSignal();
  const say = opts.quiet ? () => {} : logLine;
  try {
    const result = await ensureData({
      ...opts,
      onProgress: progress.onProgress,
      onLog: (m) => {
        progress.stop();
        say(`download: ${m}`);
      },
      retryDelayMs: retryDelayFromEnv(),
      signal: interrupt.signal,
    });
    progress.stop();
    if (interrupt.signal.aborted) throw new AlexnetError('INTERRUPTED', `interrupted by ${interrupt.which()}`, 'run the command again');
    const info = dataInfo(result);
    const records = info.records.toLocaleString('en-US');
    say(result.downloaded
      ? `CIFAR-10 ready in ${result.dir} (${records} records)`
      : `CIFAR-10 already in ${result.dir} (${records} records); nothing downloaded (--force to download again)`);
    const notice = dataNotice(info);
    if (notice) say(notice);
    return info;
  } catch (e) {
    progress.stop();
    if (interrupt.signal.aborted) throw new AlexnetError('INTERRUPTED', `interrupted by ${interrupt.which() ?? 'a signal'} during the download`, 'run the command again to resume');
    throw e;
  } finally {
    interrupt.dispose();
  }
}
