// `--images DIR`: the user's own images as a data set (issue #27), as torchvision's ImageFolder and Keras's
// image_dataset_from_directory read them: DIR/<class>/<images>, or DIR/train/<class>/... with DIR/test/<class>/...;
// the class names are the folder names, sorted. Files beside the class folders (a README.md, a LICENSE) and hidden
// entries (.DS_Store, .git) are not part of the data: they are left out and counted in one line (issue #35: the
// public JPEG layout of CIFAR-10, with its README.md at the top, was refused). Sub-folders of a class folder are
// read at any depth, with an explicit stack (a deep or wide tree cannot overflow the call stack), each real folder
// once: a symbolic link to a folder already read, to the class folder, the images folder or one above them (a loop)
// is named and left out. Each image is made 32x32 as `predict` makes it (src/data/image.ts: decoded by libvips, a
// centre crop to square, then area averaging), once, several at a time: the decoded split is kept in the data dir
// as CIFAR-style records (2 label bytes, big-endian, then the planar pixels) with the class names and a manifest of
// the folder's files (path, size, mtime) and its digest, so that later runs read it as fast as CIFAR-10, a change
// to the folder rebuilds it (saying what changed), and a resumed run or `eval` of a run refuses a folder that is no
// longer the one it trained on.

import { createHash } from 'node:crypto';
import { readdirSync, realpathSync, statSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { AlexnetError } from '../errors.js';
import { READ_CAPS, diskError, errnoWords, makeDirs, readRegularFile, readRegularFileSync, removeMadeDirs } from '../files.js';
import { acquireLock, removeLeftovers } from '../lock.js';
import { mulberry32 } from '../random.js';
import { hasControlChars } from '../text.js';
import { checkExtracted, MANIFEST_FILE, type Manifest } from './archive.js';
import { CHANNELS, IMAGE_BYTES, MAX_CLASSES, MIN_CLASSES, PLANE_BYTES, type Labeling, type RecordFormat } from './cifar.js';
import { IMAGE_EXTENSIONS, IMAGE_WORDS, decodeImage, toCifarImage } from './image.js';

export const FOLDER_NAMES_FILE = 'class_names.txt';
/** The most images a folder may hold: 300,000 records are ~920 MB in memory, more than most machines train on. */
export const MAX_FOLDER_IMAGES = 300_000;
/** The most entries (files and folders) a folder's walk reads before it gives up: `--images /sys/class` walked on. */
const MAX_WALK_ENTRIES = 2 * MAX_FOLDER_IMAGES;

/** The records made of an image folder, in `<dataDir>/<dir>`. */
export function folderFormat(dir: string): RecordFormat {
  return { title: 'image folder', dir, trainFiles: ['train.bin'], testFile: 'test.bin', metaFiles: [FOLDER_NAMES_FILE], labelBytes: 2, maxRecords: { 'train.bin': MAX_FOLDER_IMAGES, 'test.bin': MAX_FOLDER_IMAGES }, emptyTest: true };
}

export function folderLabeling(dir: string, classes: number): Labeling {
  return { format: folderFormat(dir), namesFile: FOLDER_NAMES_FILE, classes, byte: 'wide', ranges: [classes] };
}

/** A folder's records live in the data dir under a name of the folder's absolute path. */
export const recordsDirOf = (root: string) => `images-${createHash('sha256').update(root).digest('hex').slice(0, 16)}`;

interface FileEntry {
  /** Relative to the images folder, with `/`. */
  file: string;
  size: number;
  mtimeMs: number;
  split: 'train' | 'test';
  label: number;
}

/** What the folder holds: its class names, its files, whether it has a test/ split, and what was left out. */
export interface Listing {
  classNames: string[];
  files: FileEntry[];
  split: boolean;
  /** Files beside the class folders and hidden entries, relative to the images folder. */
  leftOut: string[];
  /** Symbolic links to folders already read (loops), relative to the images folder. */
  loops: string[];
  /** Files that are not images by their name, left out with --skip-bad-images. */
  notImages: string[];
}

/** The manifest of a folder's records: the archive manifest's fields (checkExtracted), and the listing they were made from. */
interface FolderManifest extends Manifest {
  classNames: string[];
  files: [file: string, size: number, mtimeMs: number][];
  skipped: number;
  skipBad: boolean;
}

const folderError = (message: string, hint: string) => new AlexnetError('DATA', message, hint);
const rel = (root: string, p: string) => path.relative(root, p).split(path.sep).join('/');

type Entry = { name: string; path: string; kind: 'dir' | 'file' | 'other'; link: boolean };

const statOrNull = (p: string) => {
  try {
    return statSync(p);
  } catch {
    return null;
  }
};
const realOr = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
};

/**
 * The entries of `dir`, sorted by name, a symbolic link's kind being its target's; hidden ones go to `hidden`. The
 * walk's calls are synchronous: 50,000 awaited stats took 2.5 s, as long as PIL takes to decode the files.
 */
function dirEntries(dir: string, root: string, hidden: string[]): Entry[] {
  let dirents;
  try {
    dirents = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw folderError(`cannot read ${dir === root ? `--images ${root}` : dir}: ${errnoWords(e)}`, 'pass a readable folder of class folders to --images');
  }
  const out: Entry[] = [];
  for (const e of dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = path.join(dir, e.name);
    if (e.name.startsWith('.')) {
      hidden.push(rel(root, p));
      continue;
    }
    const link = e.isSymbolicLink();
    const st = link ? statOrNull(p) : null;
    const isDir = link ? Boolean(st?.isDirectory()) : e.isDirectory();
    const isFile = link ? Boolean(st?.isFile()) || st === null : e.isFile(); // a dangling link is a file that cannot be read
    out.push({ name: e.name, path: p, kind: isDir ? 'dir' : isFile ? 'file' : 'other', link });
  }
  return out;
}

/** The class folders of `dir` (sorted), each name checked; files beside them go to `leftOut`. */
function classFolders(dir: string, root: string, leftOut: string[]): string[] {
  const entries = dirEntries(dir, root, leftOut);
  for (const e of entries) if (e.kind !== 'dir') leftOut.push(rel(root, e.path));
  const names = entries.filter((e) => e.kind === 'dir').map((e) => e.name);
  const bad = names.find((n) => hasControlChars(n) || n.length > 64 || n !== n.trim());
  if (bad !== undefined) throw folderError(`class folder ${JSON.stringify(bad)} in ${dir}: a class name must be at most 64 characters, without control characters or spaces at its ends`, 'rename the folder');
  return names;
}

/** Why a file is not an image of the data set by its name, or null. */
function nameProblem(file: string): string | null {
  if (hasControlChars(file)) return 'its name has control characters';
  if (!IMAGE_EXTENSIONS.test(file)) return `not a ${IMAGE_WORDS} file (by its name)`;
  return null;
}

/** The walk's shared state: what it left out, and how many entries it has read (bounded). */
interface Walk {
  root: string;
  realRoot: string;
  listing: Listing;
  skipBad: boolean;
  entries: number;
}

/**
 * Every file under a class folder, at any depth, sorted (depth-first, by name), hidden ones aside; with an explicit
 * stack, so that no depth or width overflows the call stack (130,000 files in one folder did, spread into one
 * push). Each real folder is read once: a link to one already read (a loop, a link to the parent) is left out.
 */
function filesUnder(classDir: string, walk: Walk): string[] {
  const out: string[] = [];
  const seen = new Set<string>([walk.realRoot]);
  // A link above the images folder (`/`, `..` of the root) holds the whole folder: a loop too.
  const above = (real: string) => walk.realRoot === real || walk.realRoot.startsWith(real.endsWith(path.sep) ? real : real + path.sep);
  const stack: string[] = [classDir];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const real = realOr(dir);
    if (seen.has(real) || above(real)) {
      walk.listing.loops.push(rel(walk.root, dir));
      continue;
    }
    seen.add(real);
    const entries = dirEntries(dir, walk.root, walk.listing.leftOut);
    walk.entries += entries.length;
    if (walk.entries > MAX_WALK_ENTRIES) throw folderError(`--images ${walk.root} holds more than ${MAX_WALK_ENTRIES.toLocaleString('en-US')} files and folders`, 'pass a folder of class folders of images (train on a part of a larger one)');
    const subdirs: string[] = [];
    for (const e of entries) {
      if (e.kind === 'dir') subdirs.push(e.path);
      else if (e.kind === 'other') walk.listing.leftOut.push(rel(walk.root, e.path));
      else {
        // Told by name while listing, before anything is decoded: `--images /sys/class` is refused at its first file.
        const why = nameProblem(rel(walk.root, e.path));
        if (why === null) out.push(e.path);
        else if (walk.skipBad) walk.listing.notImages.push(rel(walk.root, e.path));
        else throw new AlexnetError('IMAGE', `--images: ${e.path}: ${why}`, 'remove the file, or pass --skip-bad-images to leave such files out (they are counted)');
      }
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!); // popped in name order
  }
  return out;
}

/** Reads the folder's layout and each file's size and mtime: what its records are made of. */
export async function listFolder(root: string, opts: { skipBad?: boolean } = {}): Promise<Listing> {
  const st = await fsp.stat(root).catch(() => null);
  if (!st?.isDirectory()) throw folderError(`--images ${root}: ${st ? 'not a folder' : 'no such folder'}`, `pass a folder of class folders: DIR/<class>/<image> (${IMAGE_WORDS})`);
  const listing: Listing = { classNames: [], files: [], split: false, leftOut: [], loops: [], notImages: [] };
  const walk: Walk = { root, realRoot: realOr(root), listing, skipBad: opts.skipBad ?? false, entries: 0 };
  const top = classFolders(root, root, listing.leftOut);
  // DIR/train/<class> (the public JPEG copy of CIFAR-10's training half), with or without DIR/test/<class>.
  const layout = top.includes('train') && top.every((n) => n === 'train' || n === 'test');
  const split = layout && top.includes('test');
  const trainDir = layout ? path.join(root, 'train') : root;
  const classNames = layout ? classFolders(trainDir, root, listing.leftOut) : top;
  if (classNames.length < MIN_CLASSES || classNames.length > MAX_CLASSES) {
    throw folderError(`${trainDir} has ${classNames.length} class folder${classNames.length === 1 ? '' : 's'}${classNames.length === 1 ? ` (${classNames[0]})` : ''}; a data set needs ${MIN_CLASSES} to ${MAX_CLASSES}`, `put each class's images in a folder of its own: ${trainDir}/<class>/<image>`);
  }
  const add = (splitName: 'train' | 'test', base: string, names: string[]) => {
    for (const [label, name] of names.entries()) {
      const found = filesUnder(path.join(base, name), walk);
      if (found.length === 0) throw folderError(`class folder ${path.join(base, name)} holds no images`, 'add images to it, or remove the folder');
      for (const p of found) {
        const s = statOrNull(p);
        listing.files.push({ file: rel(root, p), size: s?.size ?? -1, mtimeMs: s?.mtimeMs ?? -1, split: splitName, label });
      }
      if (listing.files.length > MAX_FOLDER_IMAGES) throw folderError(`--images ${root} holds more than ${MAX_FOLDER_IMAGES.toLocaleString('en-US')} files`, 'train on a part of it (a folder with fewer images)');
    }
  };
  add('train', trainDir, classNames);
  if (split) {
    const testNames = classFolders(path.join(root, 'test'), root, listing.leftOut);
    if (testNames.join('\n') !== classNames.join('\n')) {
      const missing = classNames.filter((n) => !testNames.includes(n));
      const extra = testNames.filter((n) => !classNames.includes(n));
      throw folderError(`${path.join(root, 'test')} has other classes than ${trainDir}${missing.length ? ` (missing: ${missing.slice(0, 3).join(', ')})` : ''}${extra.length ? ` (not in train/: ${extra.slice(0, 3).join(', ')})` : ''}`, 'give test/ the same class folders as train/');
    }
    add('test', path.join(root, 'test'), classNames);
  }
  listing.classNames = classNames;
  listing.split = split;
  return listing;
}

/**
 * The digest of what a folder's records are made of: its classes, its files (path, size, mtime) and whether bad
 * files were skipped. A run records it (state.json's data.archiveMd5), so that a resume or an `eval` of the run
 * tells a folder that changed since.
 */
export function listingDigest(classNames: string[], files: [string, number, number][], skipBad: boolean): string {
  return createHash('sha256').update(JSON.stringify([classNames, files, skipBad])).digest('hex');
}

/** What the walk left out, in one line, or null. */
function leftOutLine(root: string, l: Listing): string | null {
  const parts = [
    l.leftOut.length > 0 && `${count(l.leftOut.length, 'file')} beside the class folders or hidden (${l.leftOut.slice(0, 3).join(', ')}${l.leftOut.length > 3 ? ', ...' : ''})`,
    l.loops.length > 0 && `${count(l.loops.length, 'link')} to a folder read already, a loop (${l.loops.slice(0, 3).join(', ')}${l.loops.length > 3 ? ', ...' : ''})`,
    l.notImages.length > 0 && `--skip-bad-images: ${count(l.notImages.length, 'file')} not an image by name (${l.notImages.slice(0, 3).join(', ')}${l.notImages.length > 3 ? ', ...' : ''})`,
  ].filter(Boolean);
  return parts.length > 0 ? `image folder ${root}: left out ${parts.join('; ')}` : null;
}

export interface FolderOptions {
  skipBad: boolean;
  force: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Files decoded so far of all: a bar on a terminal (the command draws it). */
  onDecode?: (done: number, total: number) => void;
  /**
   * Checks of the flags against what the folder holds, run after it is listed and before anything is decoded (a
   * missing --valid-split for a folder without test/ was refused only after 60,000 files were decoded).
   */
  check?: (folder: { trainFiles: number; testFiles: number; split: boolean }) => void;
  /**
   * The digest of the folder a run trained on (listingDigest), where a resume or an `eval` of the run reads it: a
   * folder that differs now is refused, saying what changed, instead of training or scoring on other images.
   */
  expect?: { digest: string; run: string; hint: string };
}

const FOLDER_TMP = /^\.images-[0-9a-f]{16}\.tmp-(\d+)(\.old)?$/;

/**
 * The records of the image folder `imagesDir` in `dataDir`: the ones made before where the folder has not changed
 * since (same files, sizes and mtimes, the same --skip-bad-images, the class names as its folders say), else made
 * anew (saying why).
 */
export async function ensureFolderRecords(imagesDir: string, dataDir: string, opts: FolderOptions) {
  const root = path.resolve(imagesDir);
  const say = opts.log ?? (() => {});
  const listing = await listFolder(root, { skipBad: opts.skipBad });
  await refuseDataDirInside(root, dataDir);
  const line = leftOutLine(root, listing);
  if (line) say(line);
  const digest = listingDigest(listing.classNames, listing.files.map((f) => [f.file, f.size, f.mtimeMs]), opts.skipBad);
  const dir = recordsDirOf(root);
  const labeling = folderLabeling(dir, listing.classNames.length);
  if (opts.expect && opts.expect.digest !== digest) {
    const kept = await keptRecords(dataDir, labeling, listing.classNames);
    const change = kept && kept.md5 === opts.expect.digest ? changeOf(kept, listing, opts.skipBad) : null;
    throw new AlexnetError('DATA', `the image folder ${root} is not the one ${opts.expect.run} was trained on${change ? ` (${change} since)` : ' (its files differ)'}`, opts.expect.hint);
  }
  const trainFiles = listing.files.filter((f) => f.split === 'train').length;
  opts.check?.({ trainFiles, testFiles: listing.files.length - trainFiles, split: listing.split });
  const where = path.join(dataDir, dir);
  const created = await makeDirs(dataDir, 'data dir', 'pass a writable --data-dir');
  const release = await acquireLock(path.join(dataDir, `.${dir}.lock`), { what: `the records of ${root}`, wait: true, hint: '', onNote: say, signal: opts.signal });
  let done = false;
  try {
    const kept = opts.force ? null : await keptRecords(dataDir, labeling, listing.classNames);
    const change = kept ? changeOf(kept, listing, opts.skipBad) : null;
    if (kept && change === null) {
      say(`image folder ${root}: ${count(listing.files.length - kept.skipped, 'image')} in ${listing.classNames.length} classes, read from its records in ${where}${kept.skipped ? ` (${count(kept.skipped, 'file')} skipped when they were made)` : ''}`);
      done = true;
      // Records made by a version that recorded no digest are the same records: the digest is the listing's.
      return { dir: where, downloaded: false, manifest: { ...kept, md5: digest } as Manifest, labeling };
    }
    if (kept) say(`image folder ${root} changed since its records were made (${change}): making them again`);
    const manifest = await makeRecords(root, listing, dataDir, dir, digest, opts);
    say(`image folder ${root}: ${count(listing.files.length - manifest.skipped, 'image')} in ${listing.classNames.length} classes (${listing.split ? 'train/ and test/' : 'no test/ folder'}), kept as records in ${where}`);
    done = true;
    return { dir: where, downloaded: true, manifest: manifest as Manifest, labeling };
  } finally {
    await release();
    // A data dir this call made is removed when nothing was kept in it: a failure leaves nothing behind.
    if (!done) await removeMadeDirs(dataDir, created);
  }
}

/** A data dir inside the images folder would be read as a class folder by the next run: refused. */
async function refuseDataDirInside(root: string, dataDir: string): Promise<void> {
  const realRoot = await fsp.realpath(root);
  // The data dir may not exist yet: its nearest existing folder tells where it is.
  let p = path.resolve(dataDir);
  let tail = '';
  while (!(await fsp.stat(p).then(() => true, () => false)) && path.dirname(p) !== p) {
    tail = path.join(path.basename(p), tail);
    p = path.dirname(p);
  }
  const real = path.join(await fsp.realpath(p).catch(() => p), tail);
  if (real === realRoot || real.startsWith(realRoot + path.sep)) {
    throw new AlexnetError('USAGE', `the data dir ${dataDir} is inside --images ${root}: its records would be read as images of a class`, 'pass a --data-dir outside the image folder (the default, $XDG_CACHE_HOME/alexnet or ~/.cache/alexnet, is one)');
  }
}

const count = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

/**
 * The records made before, where they are whole and their class names are the folder's (`classNames`): a
 * class_names.txt edited in the cache became the run's class names; the folders name the classes, so such records
 * are made again.
 */
async function keptRecords(dataDir: string, labeling: Labeling, classNames: string[]): Promise<FolderManifest | null> {
  if (!(await checkExtracted(dataDir, labeling.format))) return null;
  try {
    const dir = path.join(dataDir, labeling.format.dir);
    const text = await readRegularFile(path.join(dir, MANIFEST_FILE), 64 * 1024 * 1024, 'DATA', MANIFEST_FILE, '');
    const m = JSON.parse(text.toString('utf8')) as FolderManifest;
    const names = (await readRegularFile(path.join(dir, FOLDER_NAMES_FILE), READ_CAPS.classNames * 256, 'DATA', FOLDER_NAMES_FILE, '')).toString('utf8');
    if (names !== classNames.join('\n') + '\n' || m.classNames?.join('\n') !== classNames.join('\n')) return null;
    return Array.isArray(m.files) ? m : null;
  } catch {
    return null;
  }
}

/** What changed between the records' listing and the folder's now, in words, or null when nothing did. */
function changeOf(kept: FolderManifest, now: Listing, skipBad: boolean): string | null {
  if (kept.skipBad !== skipBad) return skipBad ? '--skip-bad-images given' : '--skip-bad-images not given';
  if (kept.classNames.join('\n') !== now.classNames.join('\n')) return 'other classes';
  const before = new Map(kept.files.map(([f, size, mtime]) => [f, `${size}/${mtime}`]));
  let added = 0;
  let changed = 0;
  for (const f of now.files) {
    const was = before.get(f.file);
    if (was === undefined) added++;
    else if (was !== `${f.size}/${f.mtimeMs}`) changed++;
    before.delete(f.file);
  }
  const removed = before.size;
  if (added + changed + removed === 0) return null;
  return [added && `${count(added, 'file')} added`, removed && `${count(removed, 'file')} removed`, changed && `${count(changed, 'file')} changed`].filter(Boolean).join(', ');
}

/** Images decoded at once: libvips decodes on libuv's threads (4 by default), and the box filter runs here meanwhile. */
const DECODE_AHEAD = Math.min(16, Math.max(4, 2 * availableParallelism()));

/**
 * Decodes every image into the records of each split, DECODE_AHEAD at a time (each file read, decoded and made
 * 32x32 as it comes; the records in the listing's order whatever order they finish in), in a fixed shuffled order
 * (so that --limit-train takes some of every class), written into a temporary folder and renamed into place.
 */
async function makeRecords(root: string, listing: Listing, dataDir: string, dir: string, digest: string, opts: FolderOptions): Promise<FolderManifest> {
  const say = opts.log ?? (() => {});
  const recordSize = 2 + IMAGE_BYTES;
  const hint = 'fix or remove the file, or pass --skip-bad-images to leave such files out (they are counted)';
  const total = listing.files.length;
  if (total >= 1000) say(`image folder ${root}: decoding ${count(total, 'file')} into 32x32 records (once; later runs read the records)`);
  /** A record, or why the file is not one. */
  const made: (Uint8Array | string | undefined)[] = new Array(total);
  const one = async (i: number): Promise<Uint8Array | string> => {
    const f = listing.files[i]!;
    const file = path.join(root, ...f.file.split('/'));
    if (f.size < 0) return 'it cannot be read';
    try {
      const pixels = toCifarImage(await decodeImage(readRegularFileSync(file, READ_CAPS.image, 'IMAGE', file, hint), file));
      const rec = new Uint8Array(recordSize);
      rec[0] = f.label >> 8;
      rec[1] = f.label & 0xff;
      for (let p = 0; p < PLANE_BYTES; p++) for (let c = 0; c < CHANNELS; c++) rec[2 + c * PLANE_BYTES + p] = pixels[p * CHANNELS + c]!;
      return rec;
    } catch (e) {
      if (!(e instanceof AlexnetError)) throw e;
      return e.message.replace(`cannot read ${file}: `, '');
    }
  };
  let next = 0;
  let done = 0;
  let bad = false;
  const worker = async () => {
    // Without --skip-bad-images, the first bad file stops the others from taking more.
    while (!bad && next < total) {
      opts.signal?.throwIfAborted();
      const i = next++;
      made[i] = await one(i);
      if (typeof made[i] === 'string' && !opts.skipBad) bad = true;
      opts.onDecode?.(++done, total);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DECODE_AHEAD, total) }, worker));
  if (bad) {
    // The first in the listing's order of those that failed, as a decode one file at a time named it.
    const first = made.findIndex((r) => typeof r === 'string');
    throw new AlexnetError('IMAGE', `--images: ${path.join(root, ...listing.files[first]!.file.split('/'))}: ${made[first] as string}`, hint);
  }
  const records = { train: [] as Uint8Array[], test: [] as Uint8Array[] };
  const skipped: string[] = [];
  /** The classes with a training record (every class must have one). */
  const trained = new Set<number>();
  listing.files.forEach((f, i) => {
    const r = made[i]!;
    if (typeof r === 'string') {
      skipped.push(`${f.file}: ${r}`);
      return;
    }
    records[f.split].push(r);
    if (f.split === 'train') trained.add(f.label);
  });
  if (skipped.length > 0) say(`--skip-bad-images: ${count(skipped.length, 'file')} left out (first: ${skipped[0]})`);
  const empty = listing.classNames.find((_, label) => !trained.has(label));
  if (empty !== undefined) throw folderError(`class ${empty} has no readable training images left`, 'add images to it, or remove its folder');
  const shuffled = (recs: Uint8Array[]) => {
    const rand = mulberry32(0x51f15eed);
    for (let i = recs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [recs[i], recs[j]] = [recs[j]!, recs[i]!];
    }
    const out = new Uint8Array(recs.length * recordSize);
    recs.forEach((r, i) => out.set(r, i * recordSize));
    return out;
  };
  const train = shuffled(records.train);
  const test = shuffled(records.test);
  const names = listing.classNames.join('\n') + '\n';
  const manifest: FolderManifest = {
    source: root,
    md5: digest, // the listing's SHA-256: what a run that trains on these records records
    sizes: { 'train.bin': train.length, 'test.bin': test.length, [FOLDER_NAMES_FILE]: Buffer.byteLength(names) },
    classNames: listing.classNames,
    files: listing.files.map((f) => [f.file, f.size, f.mtimeMs]),
    skipped: skipped.length,
    skipBad: opts.skipBad,
  };
  await removeLeftovers(dataDir, FOLDER_TMP);
  const tmp = path.join(dataDir, `.${dir}.tmp-${process.pid}`);
  const final = path.join(dataDir, dir);
  try {
    await fsp.rm(tmp, { recursive: true, force: true });
    await fsp.mkdir(tmp);
    await fsp.writeFile(path.join(tmp, 'train.bin'), train);
    await fsp.writeFile(path.join(tmp, 'test.bin'), test);
    await fsp.writeFile(path.join(tmp, FOLDER_NAMES_FILE), names);
    await fsp.writeFile(path.join(tmp, MANIFEST_FILE), JSON.stringify(manifest) + '\n');
    opts.signal?.throwIfAborted();
    const old = `${tmp}.old`;
    const hadOld = await fsp.stat(final).then(() => true, () => false);
    if (hadOld) await fsp.rename(final, old);
    await fsp.rename(tmp, final);
    if (hadOld) await fsp.rm(old, { recursive: true, force: true });
  } catch (e) {
    throw diskError(e, `writing the records of ${root} into ${dataDir}`, ', or pass another --data-dir') ?? e;
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  return manifest;
}
