// Unpacking the archive: stream it through `tar`, keep only the CIFAR-10 members, write them into a
// temporary folder beside the destination, check every batch, and only then rename the folder into place.
// Entries that could write outside the folder (absolute paths, `..`, links) make the whole archive refused.

import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar';
import { AlexnetError } from '../errors.js';
import { READ_CAPS, diskError, readRegularFile } from '../files.js';
import { removeLeftovers } from '../lock.js';
import { TarGuard, TarGuardError } from './tar_guard.js';
import { CIFAR10_LABELS, RECORDS_PER_OFFICIAL_BATCH, RECORD_BYTES, members, parseClassNames, recordBytes, validateBatch, type Labeling, type RecordFormat } from './cifar.js';
import { ARCHIVE_NAME, OFFICIAL_BYTES, bytes, parseSource } from './download.js';

/**
 * The most a member may unpack to: a batch file of the official archive is 30,730,000 bytes (10,000 records),
 * batches.meta.txt 61. A larger member is refused before it is written, so an archive cannot fill the disk
 * under tar's compression-ratio limit (a 10 MB archive wrote 2.3 GB: issue #13).
 */
export const MAX_MEMBER_BYTES = { batch: RECORDS_PER_OFFICIAL_BATCH * RECORD_BYTES, meta: 4096 };
/** A member other than CIFAR-10's own (the official archive has a readme.html of 88 bytes). */
const OTHER_MEMBER_BYTES = 64 * 1024;
/** The most an archive may unpack to: the official one's six batches and a little more (it unpacks to ~184.4 MB). */
export const MAX_UNPACKED_BYTES = 200_000_000;
/** What the unpacked official data takes: six batches and the class names. */
const UNPACKED_MB = Math.ceil((6 * MAX_MEMBER_BYTES.batch) / 1e6);

/** The temporary folders of an unpacking of `format` (and of the folder it replaces), by the pid that made them. */
const tmpDirs = (format: RecordFormat) => new RegExp(`^\\.${format.dir.replace(/[.-]/g, '\\$&')}\\.tmp-(\\d+)(\\.old)?$`);

/** The most bytes member `name` of `format` may have: a batch's official record count, a class list's 4 KB. */
export const memberCap = (format: RecordFormat, name: string) => (format.maxRecords[name] !== undefined ? format.maxRecords[name] * recordBytes(format) : MAX_MEMBER_BYTES.meta);

/**
 * What an archive holds: its format's members, and how to check them (each labeling's class list; the first
 * labeling's label ranges, which cover every label byte).
 */
export interface ArchiveSpec {
  format: RecordFormat;
  labelings: Labeling[];
}

export const CIFAR10_ARCHIVE: ArchiveSpec = { format: CIFAR10_LABELS.format, labelings: [CIFAR10_LABELS] };

export const MANIFEST_FILE = 'manifest.json';

/** Written last into the batches folder: what a later run checks to skip the download. */
export interface Manifest {
  source: string;
  md5: string;
  sizes: Record<string, number>; // member name -> bytes
}

const refusal = (why: string) => new AlexnetError('ARCHIVE', why, 'the archive is unsafe or not CIFAR-10; get the official one, or check --url');

const archiveError = (message: string, format: RecordFormat) =>
  new AlexnetError('ARCHIVE', message, `the archive is not the ${format.title} binary version; check --url, or run \`alexnet download --force\``);

/** Why an entry is refused, or null when its path and type are safe to write. */
export function unsafeEntry(entryPath: string, type: string): string | null {
  if (path.posix.isAbsolute(entryPath) || path.win32.isAbsolute(entryPath)) return 'an absolute path';
  if (entryPath.split(/[\\/]+/).includes('..')) return 'a `..` component';
  if (type === 'SymbolicLink' || type === 'Link') return 'a link';
  return null;
}

/**
 * Extracts `archive` into `<dataDir>/<its folder>` (CIFAR-10's cifar-10-batches-bin). With `expectOfficial`, each
 * batch must hold exactly the official archive's records. Returns the manifest written.
 */
export async function extractCifar(
  archive: string,
  dataDir: string,
  info: { source: string; md5: string; expectOfficial: boolean },
  signal?: AbortSignal,
  spec: ArchiveSpec = CIFAR10_ARCHIVE,
): Promise<Manifest> {
  const { format } = spec;
  const BATCHES_DIR = format.dir;
  const MEMBERS = members(format);
  const finalDir = path.join(dataDir, BATCHES_DIR);
  const name = archiveName(archive, info.source);
  const tmpDir = path.join(dataDir, `.${BATCHES_DIR}.tmp-${process.pid}`);
  await removeLeftovers(dataDir, tmpDirs(format)); // of killed runs, so they do not fill the disk
  const noSpace = (e: unknown) => diskError(e, `unpacking into ${dataDir} (needs ~${UNPACKED_MB} MB for the official data)`, ', or pass another --data-dir');
  try {
    await fsp.mkdir(tmpDir, { recursive: true });
  } catch (e) {
    throw noSpace(e) ?? e;
  }
  try {
    const writes: Promise<void>[] = [];
    const files: WriteStream[] = [];
    const seen = new Set<string>();
    let refused: string | null = null;
    // The first failed write (a full disk) ends the unpacking: tar would otherwise wait forever on the entry
    // whose stream was destroyed, and Node.js would exit mid-await (exit 13).
    let failWrite!: (e: unknown) => void;
    const writeFailed = new Promise<never>((_, reject) => (failWrite = reject));
    writeFailed.catch(() => {});
    const parser = new tar.Parser({
      strict: true,
      onReadEntry: (entry) => {
        const why = unsafeEntry(entry.path, entry.type);
        if (why !== null) {
          refused ??= `archive entry ${JSON.stringify(entry.path)} has ${why}; refusing the archive`;
          entry.resume();
          return;
        }
        const [dir, name, ...rest] = entry.path.split('/').filter((s) => s !== '' && s !== '.');
        if (dir !== BATCHES_DIR || name === undefined || rest.length > 0 || !MEMBERS.includes(name) || entry.type !== 'File') {
          entry.resume(); // e.g. the official archive's readme.html
          return;
        }
        const cap = memberCap(format, name);
        if (entry.size > cap) {
          refused ??= `archive member ${entry.path} is ${bytes(entry.size)}; a ${format.title} ${format.metaFiles.includes(name) ? 'class list' : 'batch'} has at most ${bytes(cap)}; refusing the archive`;
          entry.resume();
          return;
        }
        seen.add(name);
        const file = createWriteStream(path.join(tmpDir, name));
        files.push(file);
        const written = pipeline(entry, file);
        // Listened to now: a full disk rejects these while tar is still parsing (an unhandled rejection
        // crashed Node.js: issue #13).
        written.catch(failWrite);
        writes.push(written);
      },
    });
    const parsed = new Promise<void>((resolve, reject) => {
      parser.on('end', resolve);
      parser.on('error', reject);
    });
    parsed.catch(() => {});
    try {
      await Promise.race([writeFailed, feedGuarded(archive, parser, signal, () => refused !== null, format).then(() => parsed)]);
      await Promise.race([writeFailed, Promise.all(writes)]);
    } catch (e) {
      // A truncated archive can end the parser mid-entry: close what is open before the folder is removed.
      files.forEach((f) => f.destroy());
      await Promise.allSettled(writes);
      if (signal?.aborted) throw signal.reason;
      if (refused !== null) throw refusal(refused); // the parser stopped mid-entry because we stopped feeding it
      if (e instanceof AlexnetError) throw e;
      if (e instanceof TarGuardError) throw new AlexnetError('ARCHIVE', `refusing ${name}: ${e.message}`, `the archive is not the ${format.title} binary version (or is damaged); get the official one, or check --url`);
      const disk = noSpace(e);
      if (disk) throw disk;
      // tar's parser on what holds no header at all (a gzip of zeros, of text...).
      const msg = (e as NodeJS.ErrnoException).code === 'TAR_BAD_ARCHIVE' ? 'it is not a tar archive' : (e as Error).message;
      if (/unexpected end|truncat|zlib/i.test(msg)) {
        const size = await fsp.stat(archive).then((st) => st.size, () => null);
        const local = parseSource(info.source).kind === 'file';
        throw new AlexnetError(
          'ARCHIVE',
          `cannot unpack ${name}: the archive is truncated${size !== null ? ` (${bytes(size)}; the official archive has ${bytes(OFFICIAL_BYTES)})` : ''}`,
          local ? `copy it again (a copy was cut short), then pass it to --url again` : 'run the command again to download it again',
        );
      }
      throw archiveError(`cannot unpack ${name}: ${msg}`, format);
    }
    signal?.throwIfAborted(); // and at each step below, up to the rename: an interrupted unpack leaves nothing
    if (refused !== null) throw refusal(refused);
    const missing = MEMBERS.filter((m) => !seen.has(m));
    if (missing.length > 0) {
      throw archiveError(`${name} lacks ${missing.map((m) => `${BATCHES_DIR}/${m}`).join(', ')}`, format);
    }

    const sizes: Record<string, number> = {};
    for (const name of MEMBERS) {
      signal?.throwIfAborted();
      const bytes = await fsp.readFile(path.join(tmpDir, name));
      sizes[name] = bytes.length;
      if (format.metaFiles.includes(name)) {
        for (const l of spec.labelings.filter((l) => l.namesFile === name)) parseClassNames(bytes.toString('utf8'), name, l.classes, format.title);
        continue;
      }
      const records = validateBatch(bytes, `${BATCHES_DIR}/${name}`, spec.labelings[0]);
      const official = format.maxRecords[name]!;
      if (info.expectOfficial && records !== official) {
        throw archiveError(`${BATCHES_DIR}/${name} has ${records} records; the official archive has ${official} (${official * recordBytes(format)} bytes)`, format);
      }
    }
    const manifest: Manifest = { source: info.source, md5: info.md5, sizes };
    try {
      await fsp.writeFile(path.join(tmpDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    } catch (e) {
      throw noSpace(e) ?? e;
    }

    signal?.throwIfAborted();
    // Swap in the new folder: move any old one aside first, so the data dir never holds a half folder.
    const oldDir = `${tmpDir}.old`;
    const hadOld = await exists(finalDir);
    if (hadOld) await fsp.rename(finalDir, oldDir);
    await fsp.rename(tmpDir, finalDir);
    if (hadOld) await fsp.rm(oldDir, { recursive: true, force: true });
    return manifest;
  } finally {
    await fsp.rm(tmpDir, { recursive: true, force: true });
  }
}

/** The archive as the user knows it, for messages: the file given, or the last part of the URL it came from. */
function archiveName(archive: string, source: string): string {
  if (parseSource(source).kind === 'file') return path.basename(archive);
  try {
    return path.posix.basename(new URL(source).pathname) || ARCHIVE_NAME;
  } catch {
    return ARCHIVE_NAME;
  }
}

/**
 * Most bytes a member may have at the guard: any but CIFAR-10's own at most a small readme's; CIFAR-10's are held
 * to their own caps by the parser's entry check (its message names the member's kind), under the guard's total.
 */
const guardCap = (format: RecordFormat) => (name: string): number => (members(format).includes(name.split('/').filter((s) => s !== '' && s !== '.').pop() ?? '') ? Infinity : OTHER_MEMBER_BYTES);

/**
 * Streams the archive (gzip or plain tar) into `parser` through a TarGuard (./tar_guard.ts): stops reading at the
 * end-of-archive marker, refuses a member that cannot be CIFAR-10's and a total past the official archive's, and
 * stops within a chunk when `signal` fires (Ctrl-C while unpacking went unheard: issue #20) or once the parser has
 * refused the archive.
 */
async function feedGuarded(archive: string, parser: tar.Parser, signal: AbortSignal | undefined, refused: () => boolean, format: RecordFormat): Promise<void> {
  const guard = new TarGuard({ total: MAX_UNPACKED_BYTES, member: guardCap(format), title: format.title });
  const head = Buffer.alloc(2);
  const fh = await fsp.open(archive);
  await fh.read(head, 0, 2, 0).finally(() => fh.close());
  const source = createReadStream(archive, { signal });
  let stream: Readable = source;
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    source.on('error', (e) => gunzip.destroy(e)); // a read error or Ctrl-C ends the iteration below
    stream = source.pipe(gunzip);
  }
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw signal.reason;
      const pass = guard.take(chunk);
      if (pass.length > 0 && !parser.write(pass)) await once(parser, 'drain', { signal });
      if (guard.ended || refused()) break; // a refused archive is not read further
    }
  } finally {
    stream.destroy();
    source.destroy();
  }
  parser.end();
}

/**
 * The manifest of an extracted folder whose files still have their recorded sizes, else null. A folder
 * unpacked by hand (no manifest) passes when every member is there and each batch is whole records.
 */
export async function checkExtracted(dataDir: string, format: RecordFormat = CIFAR10_LABELS.format): Promise<Manifest | null> {
  const dir = path.join(dataDir, format.dir);
  const MEMBERS = members(format);
  const sizes: Record<string, number> = {};
  for (const name of MEMBERS) {
    sizes[name] = await fsp.stat(path.join(dir, name)).then((s) => s.size, () => -1);
  }
  let manifest: Manifest | null = null;
  try {
    manifest = JSON.parse((await readRegularFile(path.join(dir, MANIFEST_FILE), READ_CAPS.json, 'DATA', MANIFEST_FILE, '')).toString('utf8')) as Manifest;
  } catch {
    // no manifest: judge by the sizes alone
  }
  if (manifest !== null) return MEMBERS.every((m) => sizes[m] === manifest.sizes?.[m]) ? manifest : null;
  const least = (m: string) => (m === format.testFile && format.emptyTest ? 0 : 1);
  const whole = MEMBERS.every((m) => (format.metaFiles.includes(m) ? sizes[m]! > 0 : sizes[m]! >= least(m) && sizes[m]! % recordBytes(format) === 0));
  return whole ? { source: dir, md5: 'unknown', sizes } : null;
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(() => true, () => false);
}
