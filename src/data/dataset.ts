// Where the data lives, getting it there once, and loading the splits the trainer reads.

import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { AlexnetError } from '../errors.js';
import { READ_CAPS, errnoCode, errnoWords, makeDirs, readRegularFile, removeMadeDirs } from '../files.js';
import { acquireLock } from '../lock.js';
import { CIFAR10_ARCHIVE, checkExtracted, extractCifar, memberCap, type ArchiveSpec, type Manifest } from './archive.js';
import {
  CIFAR100_FORMAT, CIFAR100_LABELS, CIFAR10_LABELS, IMAGE_BYTES,
  decodeBatch, parseClassNames, printable, recordBytes, type Labeling, type Split,
} from './cifar.js';
import { CIFAR100_MD5, CIFAR100_URL, DOWNLOAD_NAME, OFFICIAL_MD5, OFFICIAL_URL, fetchArchive, parseSource, shownUrl, transferOf, type FetchResult, type TransferOptions } from './download.js';
import { ensureFolderRecords, type FolderOptions } from './folder.js';

/** The data sets `--dataset` names: the official archives this tool downloads (an image folder is `--images DIR`). */
export const DATASETS = ['cifar10', 'cifar100'] as const;
export type ArchiveDataset = (typeof DATASETS)[number];
export type DatasetId = ArchiveDataset | 'images';
/** CIFAR-100's labels: its 100 fine classes, or its 20 coarse superclasses. */
export const LABEL_KINDS = ['fine', 'coarse'] as const;
export type LabelKind = (typeof LABEL_KINDS)[number];

/** Each archive: its layout and checks, where it is downloaded from and its MD5. */
export const ARCHIVES: Record<ArchiveDataset, { spec: ArchiveSpec; url: string; md5: string }> = {
  cifar10: { spec: CIFAR10_ARCHIVE, url: OFFICIAL_URL, md5: OFFICIAL_MD5 },
  cifar100: { spec: { format: CIFAR100_FORMAT, labelings: [CIFAR100_LABELS.fine, CIFAR100_LABELS.coarse] }, url: CIFAR100_URL, md5: CIFAR100_MD5 },
};

/** `$ALEXNET_DATA_DIR`, else `$XDG_CACHE_HOME/alexnet`, else `~/.cache/alexnet`. */
/** The lock file of a download in progress, in the data dir. */
const LOCK_FILE = '.alexnet-download.lock';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ALEXNET_DATA_DIR) return path.resolve(env.ALEXNET_DATA_DIR);
  if (env.XDG_CACHE_HOME) return path.resolve(env.XDG_CACHE_HOME, 'alexnet');
  return path.join(os.homedir(), '.cache', 'alexnet');
}

export interface EnsureDataOptions extends DataSource, TransferOptions, FolderHooks {
  onLog?: (message: string) => void;
}

export interface EnsureDataResult {
  dir: string; // <dataDir>/cifar-10-batches-bin
  downloaded: boolean; // false when the data was already in place
  manifest: Manifest;
  /** What the records' labels mean: CIFAR-10's, CIFAR-100's fine or coarse, an image folder's classes. */
  labeling: Labeling;
}

/** The official archive's records: 50,000 training and 10,000 test images. */
export const OFFICIAL_RECORDS = 60_000;

/** Where the data in a data dir came from, as its manifest says: for the stderr notice, --json and state.json. */
export interface DataInfo {
  dir: string; // <dataDir>/cifar-10-batches-bin
  source: string; // the URL or path it was unpacked from
  archiveMd5: string; // 'unknown' for a folder unpacked by hand
  records: number; // training and test records together
  /** The official archive: true, false, or null when it cannot be told (unpacked by hand, 60,000 records). */
  official: boolean | null;
  dataset: DatasetId;
  labeling: Labeling;
}

/** The data as --json and state.json record it: CIFAR-10's as it always was, other data sets with their name. */
export function dataRecord(d: DataInfo): { dir: string; source: string; archiveMd5: string; records: number; official: boolean | null; dataset?: DatasetId; classes?: number } {
  const base = { dir: d.dir, source: d.source, archiveMd5: d.archiveMd5, records: d.records, official: d.official };
  return d.dataset === 'cifar10' ? base : { ...base, dataset: d.dataset, classes: d.labeling.classes };
}

export function dataInfo(r: EnsureDataResult, dataset: DatasetId): DataInfo {
  const records = Object.entries(r.manifest.sizes)
    .filter(([name]) => name.endsWith('.bin'))
    .reduce((n, [, size]) => n + size / recordBytes(r.labeling.format), 0);
  const md5 = r.manifest.md5;
  const official = dataset === 'images' ? false : records !== OFFICIAL_RECORDS ? false : md5 === ARCHIVES[dataset].md5 ? true : md5 === 'unknown' ? null : false;
  return { dir: r.dir, source: r.manifest.source, archiveMd5: md5, records, official, dataset, labeling: r.labeling };
}

/** The one-line stderr notice for data that is not the official archive, or null for the official one (and for an image folder, which is the user's own). */
export function dataNotice(d: DataInfo): string | null {
  if (d.official !== false || d.dataset === 'images') return null;
  return `data: NOT the official ${d.labeling.format.title} (archive MD5 ${printable(d.archiveMd5)}, ${d.records.toLocaleString('en-US')} records, from ${printable(d.source)})`;
}

/** Where a command's data is, and where to get the archive when it is not there. */
export interface DataSource {
  dataDir: string;
  url: string; // default OFFICIAL_URL (the data set's)
  md5: string | null; // null: --no-verify
  force: boolean; // download and unpack again even when the data is there
  /** `--dataset`; default cifar10. */
  dataset?: ArchiveDataset;
  /** `--labels`, CIFAR-100's; default fine. */
  labels?: LabelKind;
  /**
   * `--images DIR`: train on a folder of images instead (its records are kept in the data dir); `expect`: the run's
   * own folder, as it was when it trained (a resume, an `eval` of the run).
   */
  images?: { dir: string; skipBad: boolean; expect?: FolderOptions['expect'] } | null;
}

/** Which data set a source names. */
export const datasetOf = (s: DataSource): DatasetId => (s.images ? 'images' : (s.dataset ?? 'cifar10'));

/** What an archive's records mean as the source asks (CIFAR-100: fine or coarse). */
export const archiveLabeling = (s: DataSource): Labeling => ((s.dataset ?? 'cifar10') === 'cifar100' ? CIFAR100_LABELS[s.labels ?? 'fine'] : CIFAR10_LABELS);

/**
 * How obtainData reports, and how its transfer goes: its signal is aborted by Ctrl-C, and the download then stops
 * (its .part kept for a resume) with an INTERRUPTED error.
 */
/** What an image folder's records report while made, and checks the command makes before any file is decoded. */
export type FolderHooks = Pick<FolderOptions, 'onDecode' | 'check'>;

export interface ObtainHooks extends TransferOptions, FolderHooks {
  /** A line for the log (stderr): retries, `CIFAR-10 ready in ...`, the notice for data that is not official. */
  log?: (line: string) => void;
}

/**
 * ensureData, then what the log says of it: where the data is, and a notice when it is not the official
 * CIFAR-10 (a generated or edited archive would otherwise train silently: issue #14).
 */
export async function obtainData(source: DataSource, hooks: ObtainHooks = {}): Promise<DataInfo> {
  const say = hooks.log ?? (() => {});
  const interrupted = (during: string, hint: string) => {
    const reason = hooks.signal?.reason;
    return new AlexnetError('INTERRUPTED', `${reason instanceof Error ? reason.message : 'interrupted'}${during}`, hint);
  };
  let result: EnsureDataResult;
  try {
    // An image folder's lines are its own; a download's are marked as such.
    result = await ensureData({ ...source, ...transferOf(hooks), onDecode: hooks.onDecode, check: hooks.check, onLog: (m) => say(source.images ? m : `download: ${m}`) });
  } catch (e) {
    if (hooks.signal?.aborted) throw interrupted(' while getting the data', 'run the command again (a download resumes where it stopped)');
    throw e;
  }
  if (hooks.signal?.aborted) throw interrupted('', 'run the command again');
  const info = dataInfo(result, datasetOf(source));
  const records = info.records.toLocaleString('en-US');
  const title = info.labeling.format.title;
  // An image folder's records say their own lines (src/data/folder.ts).
  if (info.dataset !== 'images') {
    say(result.downloaded
      ? `${title} ready in ${result.dir} (${records} records)`
      : `${title} already in ${result.dir} (${records} records); nothing downloaded (\`alexnet download --force\` fetches it again)`);
  }
  const notice = dataNotice(info);
  if (notice) say(notice);
  return info;
}

/** Makes sure the batches are in `<dataDir>/cifar-10-batches-bin`, downloading and unpacking if needed. */
export async function ensureData(opts: EnsureDataOptions): Promise<EnsureDataResult> {
  if (opts.images) return ensureFolderRecords(opts.images.dir, opts.dataDir, { skipBad: opts.images.skipBad, force: opts.force, log: opts.onLog, signal: opts.signal, onDecode: opts.onDecode, check: opts.check, expect: opts.images.expect });
  const { format } = ARCHIVES[opts.dataset ?? 'cifar10'].spec;
  const labeling = archiveLabeling(opts);
  const dir = path.join(opts.dataDir, format.dir);
  if (!opts.force) {
    const manifest = await checkExtracted(opts.dataDir, format);
    if (manifest) return { dir, downloaded: false, manifest, labeling };
  }
  const created = await makeDirs(opts.dataDir, 'data dir', 'pass a writable --data-dir');
  // One download per data dir: a second run waits for the first and then uses its result.
  let release: () => Promise<void>;
  try {
    release = await acquireLock(path.join(opts.dataDir, LOCK_FILE), { what: `a download into ${opts.dataDir}`, wait: true, hint: '', onNote: opts.onLog, signal: opts.signal });
  } catch (e) {
    if (['EACCES', 'EPERM', 'EROFS'].includes(errnoCode(e) ?? '')) throw new AlexnetError('IO', `cannot write into data dir ${opts.dataDir}: ${errnoWords(e)}`, 'pass a writable --data-dir');
    throw e;
  }
  let done = false;
  try {
    // A run that waited finds the data the first one unpacked.
    const manifest = opts.force ? null : await checkExtracted(opts.dataDir, format);
    const result = manifest ? { dir, downloaded: false, manifest, labeling } : await fetchAndUnpack(opts, dir);
    done = true;
    return result;
  } finally {
    await release();
    // A data dir this run created and left empty goes too: nothing is left behind by a failed download.
    if (!done) await removeMadeDirs(opts.dataDir, created);
  }
}

async function fetchAndUnpack(opts: EnsureDataOptions, dir: string): Promise<EnsureDataResult> {
  const dest = path.join(opts.dataDir, DOWNLOAD_NAME);
  const isHttp = parseSource(opts.url).kind === 'http';
  const fetched = (isHttp && (await keptArchive(dest, opts))) || await fetchArchive({
    url: opts.url,
    dest,
    md5: opts.md5,
    ...transferOf(opts),
    onLog: opts.onLog,
  });
  let manifest: Manifest;
  const archive = ARCHIVES[opts.dataset ?? 'cifar10'];
  try {
    manifest = await extractCifar(fetched.archivePath, opts.dataDir, {
      source: shownUrl(opts.url), // printed in the data notice: a password stays out of it
      md5: fetched.md5,
      expectOfficial: fetched.md5 === archive.md5,
    }, opts.signal, archive.spec);
  } catch (e) {
    // A verified download is kept for the next run when unpacking failed on the disk (full, read-only), as it is
    // when the run is killed: issue #13. An archive that is itself bad goes.
    if (isHttp && !(e instanceof AlexnetError && e.code === 'IO')) await fsp.rm(dest, { force: true });
    throw e;
  }
  // The batches are the data; the verified archive is not kept (170 MB). A hand-copied file is the user's.
  if (isHttp) await fsp.rm(dest, { force: true });
  return { dir, downloaded: true, manifest, labeling: archiveLabeling(opts) };
}

/** An archive a previous run downloaded and verified but could not unpack, if it is still whole; else null. */
async function keptArchive(dest: string, opts: EnsureDataOptions): Promise<FetchResult | null> {
  if (opts.md5 === null || !(await fsp.stat(dest).then((st) => st.isFile(), () => false))) return null;
  try {
    const r = await fetchArchive({ url: dest, dest, md5: opts.md5, signal: opts.signal });
    opts.onLog?.(`using ${dest}, downloaded and verified by an earlier run`);
    return r;
  } catch {
    await fsp.rm(dest, { force: true });
    return null;
  }
}

export interface CifarData {
  train: Split;
  test: Split;
  classNames: string[];
}

export interface LoadOptions {
  limitTrain?: number; // first N training records (across batches, in file order)
  limitTest?: number; // first N test records
  /** What is read: CIFAR-10 (the default), CIFAR-100's fine or coarse labels, an image folder's records. */
  labeling?: Labeling;
}

/** Reads and decodes the splits. Each split is one typed array: decoded once, never copied again. */
export async function loadCifar(dataDir: string, opts: LoadOptions = {}): Promise<CifarData> {
  const labeling = opts.labeling ?? CIFAR10_LABELS;
  const { format } = labeling;
  const dir = path.join(dataDir, format.dir);
  if ((await checkExtracted(dataDir, format)) === null) {
    throw new AlexnetError(
      'DATA',
      `no ${format.title} data in ${dir}`,
      `run \`alexnet download --data-dir ${dataDir}\`, or pass --url with a copy of the archive`,
    );
  }
  const [train, test] = await Promise.all([
    loadSplit(dir, format.trainFiles, opts.limitTrain, labeling),
    loadSplit(dir, [format.testFile], opts.limitTest, labeling),
  ]);
  // checkExtracted found the class names; reading or parsing them fails only with the tool's own error.
  // A name is at most 64 characters (parseClassNames), at most 4 bytes each in UTF-8, and a line break.
  const cap = Math.max(READ_CAPS.classNames, labeling.classes * (4 * 64 + 2));
  const meta = await readRegularFile(path.join(dir, labeling.namesFile), cap, 'DATA', `${format.dir}/${labeling.namesFile}`, 'run `alexnet download --force` to fetch the data again');
  return { train, test, classNames: parseClassNames(meta.toString('utf8'), labeling.namesFile, labeling.classes, format.title) };
}

/**
 * Reads the first `limit` records (all, without one) of the batch files into one split. Each file is held to the
 * archive's per-member cap before it is read, and only the records wanted are read: a hand-unpacked 2.1 GB
 * data_batch_1.bin failed with ERR_FS_FILE_TOO_LARGE and a stack, a 1.2 GB one took 1.3 GB to use 32 images
 * (issue #20).
 */
async function loadSplit(dir: string, files: string[], limit: number | undefined, labeling: Labeling): Promise<Split> {
  const { format } = labeling;
  const BATCHES_DIR = format.dir;
  const RECORD_BYTES = recordBytes(format);
  const buffers: Buffer[] = [];
  let count = 0;
  for (const name of files) {
    if (limit !== undefined && count >= limit) break;
    const file = path.join(dir, name);
    const fh = await fsp.open(file).catch((e) => Promise.reject(new AlexnetError('DATA', `cannot read ${BATCHES_DIR}/${name}: ${errnoWords(e)}`, 'run `alexnet download --force` to fetch the data again')));
    try {
      const { size } = await fh.stat();
      const cap = memberCap(format, name);
      if (size > cap) {
        throw new AlexnetError('DATA', `${BATCHES_DIR}/${name} is ${size.toLocaleString('en-US')} bytes; a ${format.title} batch has at most ${cap.toLocaleString('en-US')}`, `the data in ${dir} is not ${format.title}; run \`alexnet download --force\` to fetch it again`);
      }
      const records = Math.floor(size / RECORD_BYTES);
      const take = limit === undefined ? records : Math.min(records, limit - count);
      const buf = Buffer.alloc(take === records ? size : take * RECORD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0).catch((e: unknown) => Promise.reject(new AlexnetError('DATA', `cannot read ${BATCHES_DIR}/${name}: ${errnoWords(e)}`, 'check the disk the data is on, or run `alexnet download --force`')));
      if (bytesRead !== buf.length) throw new AlexnetError('DATA', `${BATCHES_DIR}/${name} changed while it was read`, 'run the command again');
      buffers.push(buf);
      count += take;
    } finally {
      await fh.close();
    }
  }
  const split: Split = { images: new Uint8Array(count * IMAGE_BYTES), labels: new Uint16Array(count), count };
  let offset = 0;
  files.forEach((name, i) => {
    const buf = buffers[i];
    if (buf === undefined || buf.length === 0) return; // an image folder's empty test split
    decodeBatch(buf, `${BATCHES_DIR}/${name}`, split, offset, labeling);
    offset += buf.length / RECORD_BYTES;
  });
  return split;
}
