// Reading and writing the user's files without surprises (issue #13):
// - every file the tool writes appears whole or not at all: written under an unpredictable temporary name in
//   the same folder, opened with O_CREAT|O_EXCL|O_NOFOLLOW (a planted file or symlink is never written
//   through), synced, then renamed over the target; a target that exists and is not a regular file (a device
//   such as /dev/full, a folder, a symlink) is refused rather than replaced;
// - every file the tool reads must be a regular file under a size cap: a symlink to /dev/zero used 20 GB and a
//   FIFO hung `predict` (opened with O_NONBLOCK, so a FIFO is seen, not waited on).

import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { AlexnetError, type ErrorCode } from './errors.js';

const MB = 1024 * 1024;

/**
 * What an errno code means, in the words of this tool's messages: the one mapping every file error goes through.
 * Node.js 20 has no name for EDQUOT: it reports `Unknown system error -122`, so errno -122 is read as EDQUOT.
 */
const ERRNO_WORDS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a file is in the way',
  EEXIST: 'a file is in the way',
  EISDIR: 'it is a directory',
  EIO: 'an input/output error (the disk or the file system failed)',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EFBIG: 'the file is too large',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
};

/** The errno code of `e`, with Node.js 20's unnamed EDQUOT named. */
export function errnoCode(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException | undefined;
  if (err?.errno === -122 && (err.code === undefined || /Unknown system error/.test(err.code))) return 'EDQUOT';
  return err?.code;
}

/** `e` as words: `no space left on device`; an unknown code as itself. */
export function errnoWords(e: unknown): string {
  const code = errnoCode(e);
  return (code !== undefined && ERRNO_WORDS[code]) || code || (e as Error)?.message || String(e);
}

/** Errors that no retry cures and that the user fixes on the disk (issue #13). */
const DISK_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO']);

/** What the user does about each disk error, the first words of its hint ("free space there" fits no EIO). */
const DISK_FIXES: Record<string, string> = {
  ENOSPC: 'free space there',
  EDQUOT: 'free space there (or have your quota raised)',
  EROFS: 'make it writable',
  EACCES: 'get write access there',
  EPERM: 'get write access there',
  EIO: 'check the disk (the kernel log says what failed)',
};

/**
 * The tool's error for a disk error while `doing` (e.g. `downloading into DIR`), or null for any other error. Its
 * hint is the errno's fix followed by `then` (e.g. `, or pass another --data-dir`).
 */
export function diskError(e: unknown, doing: string, then: string): AlexnetError | null {
  const code = errnoCode(e);
  return code !== undefined && DISK_CODES.has(code) ? new AlexnetError('IO', `${errnoWords(e)} while ${doing}`, `${DISK_FIXES[code]}${then}`) : null;
}

/** How many folders makeDirs makes at most: far more than any real path has (PATH_MAX is 4096 bytes). */
const MAX_LEVELS = 2048;

/**
 * Makes `dir` and its parents, one level at a time; returns the first folder it made (to remove on failure), or
 * undefined when `dir` was there. Node.js 20's recursive mkdir spins forever under /proc (ENOENT and EEXIST in
 * turn, at 100% CPU, deaf to SIGTERM: issue #29) and reports ENOENT on a read-only file system, so each level is
 * made by a plain mkdir, which fails once and says why. The error names the level that could not be made
 * (`what`: `data dir`, `--save folder`); `hint`: what else to do (`pass another --data-dir`), after a disk error's own fix.
 */
export async function makeDirs(dir: string, what: string, hint: string): Promise<string | undefined> {
  const missing: string[] = [];
  for (let p = path.resolve(dir); missing.length <= MAX_LEVELS; p = path.dirname(p)) {
    const st = await fsp.stat(p).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? null : Promise.reject(levelError(e, dir, p, what, hint))));
    if (st?.isDirectory()) break;
    if (st) throw new AlexnetError('IO', `cannot create ${what} ${dir}: ${p === dir ? 'it' : p} is a file, not a folder`, hint);
    if (p === path.dirname(p)) break; // the root itself is missing: mkdir says why below
    missing.unshift(p);
  }
  if (missing.length > MAX_LEVELS) throw new AlexnetError('IO', `cannot create ${what} ${dir}: it is more than ${MAX_LEVELS} folders deep`, hint);
  for (const p of missing) {
    try {
      await fsp.mkdir(p);
    } catch (e) {
      // Made by another process meanwhile is fine; anything else names the level.
      if (errnoCode(e) !== 'EEXIST' || !(await fsp.stat(p).then((s) => s.isDirectory(), () => false))) throw levelError(e, dir, p, what, hint);
    }
  }
  return missing[0];
}

/** Removes the folders makeDirs made for `dir` (from `dir` up to `first`), where they are still empty. */
export async function removeMadeDirs(dir: string, first: string | undefined): Promise<void> {
  if (first === undefined) return;
  for (let p = path.resolve(dir); p.length >= first.length; p = path.dirname(p)) {
    if (!(await fsp.rmdir(p).then(() => true, () => false))) return;
    if (p === first) return;
  }
}

function levelError(e: unknown, dir: string, level: string, what: string, hint: string): AlexnetError {
  const code = errnoCode(e);
  const where = level === path.resolve(dir) ? '' : ` (its folder ${level} cannot be made)`;
  const fix = code !== undefined && DISK_FIXES[code] ? `${DISK_FIXES[code]}, or ${hint}` : hint;
  return new AlexnetError('IO', `cannot create ${what} ${dir}: ${errnoWords(e)}${where}`, fix);
}

/** Caps on what the tool reads; each is far above what a real file of the kind holds. */
export const READ_CAPS = {
  image: 64 * MB, // a 100-megapixel JPEG is ~30 MB
  json: 16 * MB, // model.json ~10 KB, state.json grows ~300 bytes an epoch
  weights: 64 * MB, // 576,778 floats: 2.3 MB
  classNames: 4096, // batches.meta.txt: 61 bytes
} as const;

/**
 * The bytes of `file`, which must be a regular file of at most `cap` bytes (symlinks to one are followed).
 * Errors carry `code` (IMAGE, CHECKPOINT, DATA...) and name `what` (e.g. `state.json`).
 */
export async function readRegularFile(file: string, cap: number, code: ErrorCode, what: string, hint: string): Promise<Buffer> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw openError(e, code, what, hint);
  }
  try {
    checkReadable(await fh.stat(), cap, code, what, hint);
    // A read that fails midway (EIO) is named too, not a stack (issue #20).
    const buf = await fh.readFile().catch((e: unknown) => Promise.reject(readError(e, code, what, hint)));
    return checkGrown(buf, cap, code, what, hint);
  } finally {
    await fh.close();
  }
}

/** Refuses what is not a regular file of at most `cap` bytes (readRegularFile's checks). */
function checkReadable(st: Stats, cap: number, code: ErrorCode, what: string, hint: string): void {
  if (st.isDirectory()) throw new AlexnetError(code, `cannot read ${what}: it is a directory`, hint);
  if (!st.isFile()) throw new AlexnetError(code, `cannot read ${what}: not a regular file (a device, FIFO or socket)`, hint);
  if (st.size > cap) throw new AlexnetError(code, `cannot read ${what}: ${st.size.toLocaleString('en-US')} bytes is more than the ${cap.toLocaleString('en-US')} such a file can have`, hint);
}

const readError = (e: unknown, code: ErrorCode, what: string, hint: string) => new AlexnetError(code, `cannot read ${what}: ${errnoWords(e)}`, errnoCode(e) === 'EIO' ? `${DISK_FIXES.EIO}, then run the command again` : hint);

function checkGrown(buf: Buffer, cap: number, code: ErrorCode, what: string, hint: string): Buffer {
  if (buf.length > cap) throw new AlexnetError(code, `cannot read ${what}: it grew past ${cap.toLocaleString('en-US')} bytes while being read`, hint);
  return buf;
}

const openError = (e: unknown, code: ErrorCode, what: string, hint: string) => new AlexnetError(code, `cannot read ${what}: ${errnoCode(e) === 'ENOENT' ? 'no such file' : errnoWords(e)}`, hint);

/**
 * readRegularFile without the event loop's round trips, for many small files (an image folder's 60,000 JPEGs of
 * ~1 KB: four awaited calls a file took 4.3 s of the 49 s that 50,000 took to become records; these take under 1).
 */
export function readRegularFileSync(file: string, cap: number, code: ErrorCode, what: string, hint: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw openError(e, code, what, hint);
  }
  try {
    checkReadable(fstatSync(fd), cap, code, what, hint);
    let buf: Buffer;
    try {
      buf = readFileSync(fd);
    } catch (e) {
      throw readError(e, code, what, hint);
    }
    return checkGrown(buf, cap, code, what, hint);
  } finally {
    closeSync(fd);
  }
}

/** Refuses a write target that exists and is not a regular file: it would be replaced, or written through. */
export async function checkWriteTarget(file: string): Promise<void> {
  const st = await fsp.lstat(file).catch(() => null);
  if (st && !st.isFile()) {
    const kind = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file (a device, FIFO or socket)';
    throw new AlexnetError('IO', `will not write ${file}: it is ${kind}`, 'pass the path of a regular file, or of one that does not exist yet');
  }
}

/** The temporaries writeFileAtomic makes (`.NAME.tmp-PID-HEX`), the pid that made them in group 1. */
export const ATOMIC_TEMPORARIES = /^\..+\.tmp-(\d+)-[0-9a-f]{12}$/;

/** Writes `data` to `file` atomically (see the header); `tmp` names the temporary file, for tests of crashes. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await checkWriteTarget(file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
