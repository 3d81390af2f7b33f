// `--images DIR`: the user's own images as a data set (issue #27), as torchvision's ImageFolder and Keras's
// image_dataset_from_directory read them: DIR/<class>/*.png|jpg|jpeg, or DIR/train/<class>/... with
// DIR/test/<class>/...; the class names are the folder names, sorted. Each image is made 32x32 as `predict` makes
// it (src/data/image.ts: a centre crop to square, then area averaging), once: the decoded split is kept in the data
// dir as CIFAR-style records (2 label bytes, big-endian, then the planar pixels) with the class names and a manifest
// of the folder's files (path, size, mtime), so that later runs read it as fast as CIFAR-10 and a change to the
// folder rebuilds it, saying what changed. Hidden files and folders (.DS_Store, .git) are not part of the data.

import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { AlexnetError } from '../errors.js';
import { READ_CAPS, diskError, errnoWords, makeDirs, readRegularFile, removeMadeDirs } from '../files.js';
import { acquireLock, removeLeftovers } from '../lock.js';
import { mulberry32 } from '../random.js';
import { hasControlChars } from '../text.js';
import { checkExtracted, MANIFEST_FILE, type Manifest } from './archive.js';
import { CHANNELS, IMAGE_BYTES, MAX_CLASSES, MIN_CLASSES, PLANE_BYTES, type Labeling, type RecordFormat } from './cifar.js';
import { decodeImage, toCifarImage } from './image.js';

export const FOLDER_NAMES_FILE = 'class_names.txt';
/** The most images a folder may hold: 300,000 records are ~920 MB in memory, more than most machines train on. */
export const MAX_FOLDER_IMAGES = 300_000;
const EXTENSIONS = /\.(png|jpe?g)$/i;
/** Sub-folders within a class folder are read too (as ImageFolder does), this deep. */
const MAX_DEPTH = 8;

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

/** What the folder holds: its class names, its files, and whether it has a test/ split. */
interface Listing {
  classNames: string[];
  files: FileEntry[];
  split: boolean;
}

/** The manifest of a folder's records: the archive manifest's fields (checkExtracted), and the listing they were made from. */
interface FolderManifest extends Manifest {
  classNames: string[];
  files: [file: string, size: number, mtimeMs: number][];
  skipped: number;
  skipBad: boolean;
}

const folderError = (message: string, hint: string) => new AlexnetError('DATA', message, hint);

async function dirEntries(dir: string, root: string) {
  try {
    return (await fsp.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (e) {
    throw folderError(`cannot read ${dir === root ? `--images ${root}` : dir}: ${errnoWords(e)}`, 'pass a readable folder of class folders to --images');
  }
}

/** The class folders of `dir` (sorted), each name checked. */
async function classFolders(dir: string, root: string): Promise<string[]> {
  const entries = await dirEntries(dir, root);
  const stray = entries.find((e) => !e.isDirectory() && !e.isSymbolicLink());
  if (stray) throw folderError(`${path.join(dir, stray.name)} is not in a class folder`, `--images takes DIR/<class>/<image> (or DIR/train/<class>/... and DIR/test/<class>/...); move the file into its class's folder`);
  const names = entries.map((e) => e.name);
  const bad = names.find((n) => hasControlChars(n) || n.length > 64 || n !== n.trim());
  if (bad !== undefined) throw folderError(`class folder ${JSON.stringify(bad)} in ${dir}: a class name must be at most 64 characters, without control characters or spaces at its ends`, 'rename the folder');
  return names;
}

/** Every file under a class folder (sub-folders too), sorted, hidden ones aside. */
async function filesUnder(dir: string, root: string, depth = 0): Promise<string[]> {
  const out: string[] = [];
  for (const e of await dirEntries(dir, root)) {
    const p = path.join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && (await fsp.stat(p).then((s) => s.isDirectory(), () => false)));
    if (isDir && depth < MAX_DEPTH) out.push(...(await filesUnder(p, root, depth + 1)));
    else if (!isDir) out.push(p);
  }
  return out;
}

/** Reads the folder's layout and each file's size and mtime: what its records are made of. */
export async function listFolder(root: string): Promise<Listing> {
  const st = await fsp.stat(root).catch(() => null);
  if (!st?.isDirectory()) throw folderError(`--images ${root}: ${st ? 'not a folder' : 'no such folder'}`, 'pass a folder of class folders: DIR/<class>/<image>.png|jpg');
  const top = await classFolders(root, root);
  const split = top.length === 2 && top[0] === 'test' && top[1] === 'train';
  const trainDir = split ? path.join(root, 'train') : root;
  const classNames = await classFolders(trainDir, root);
  if (classNames.length < MIN_CLASSES || classNames.length > MAX_CLASSES) {
    throw folderError(`${trainDir} has ${classNames.length} class folder${classNames.length === 1 ? '' : 's'}${classNames.length === 1 ? ` (${classNames[0]})` : ''}; a data set needs ${MIN_CLASSES} to ${MAX_CLASSES}`, `put each class's images in a folder of its own: ${trainDir}/<class>/<image>`);
  }
  const files: FileEntry[] = [];
  const add = async (splitName: 'train' | 'test', base: string, names: string[]) => {
    for (const [label, name] of names.entries()) {
      const found = await filesUnder(path.join(base, name), root);
      if (found.length === 0) throw folderError(`class folder ${path.join(base, name)} holds no images`, 'add images to it, or remove the folder');
      for (const p of found) {
        const s = await fsp.stat(p).catch(() => null);
        files.push({ file: path.relative(root, p).split(path.sep).join('/'), size: s?.size ?? -1, mtimeMs: s?.mtimeMs ?? -1, split: splitName, label });
      }
      if (files.length > MAX_FOLDER_IMAGES) throw folderError(`--images ${root} holds more than ${MAX_FOLDER_IMAGES.toLocaleString('en-US')} files`, 'train on a part of it (a folder with fewer images)');
    }
  };
  await add('train', trainDir, classNames);
  if (split) {
    const testNames = await classFolders(path.join(root, 'test'), root);
    if (testNames.join('\n') !== classNames.join('\n')) {
      const missing = classNames.filter((n) => !testNames.includes(n));
      const extra = testNames.filter((n) => !classNames.includes(n));
      throw folderError(`${path.join(root, 'test')} has other classes than ${trainDir}${missing.length ? ` (missing: ${missing.slice(0, 3).join(', ')})` : ''}${extra.length ? ` (not in train/: ${extra.slice(0, 3).join(', ')})` : ''}`, 'give test/ the same class folders as train/');
    }
    await add('test', path.join(root, 'test'), classNames);
  }
  return { classNames, files, split };
}

/** Why a file is not an image of the data set, or null: its name, its extension. */
function fileProblem(f: FileEntry): string | null {
  if (hasControlChars(f.file)) return 'its name has control characters';
  if (!EXTENSIONS.test(f.file)) return 'not a PNG or JPEG file (by its name)';
  if (f.size < 0) return 'it cannot be read';
  return null;
}

export interface FolderOptions {
  skipBad: boolean;
  force: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

const FOLDER_TMP = /^\.images-[0-9a-f]{16}\.tmp-(\d+)(\.old)?$/;

/**
 * The records of the image folder `imagesDir` in `dataDir`: the ones made before where the folder has not changed
 * since (same files, sizes and mtimes, the same --skip-bad-images), else made anew (saying why).
 */
export async function ensureFolderRecords(imagesDir: string, dataDir: string, opts: FolderOptions) {
  const root = path.resolve(imagesDir);
  const say = opts.log ?? (() => {});
  const listing = await listFolder(root);
  const dir = recordsDirOf(root);
  const labeling = folderLabeling(dir, listing.classNames.length);
  const where = path.join(dataDir, dir);
  const created = await makeDirs(dataDir, 'data dir', 'pass a writable --data-dir');
  const release = await acquireLock(path.join(dataDir, `.${dir}.lock`), { what: `the records of ${root}`, wait: true, hint: '', onNote: say, signal: opts.signal });
  let done = false;
  try {
    const kept = opts.force ? null : await keptRecords(dataDir, labeling);
    const change = kept ? changeOf(kept, listing, opts.skipBad) : null;
    if (kept && change === null) {
      say(`image folder ${root}: ${count(listing.files.length - kept.skipped, 'image')} in ${listing.classNames.length} classes, read from its records in ${where}${kept.skipped ? ` (${count(kept.skipped, 'file')} skipped when they were made)` : ''}`);
      done = true;
      return { dir: where, downloaded: false, manifest: kept as Manifest, labeling };
    }
    if (kept) say(`image folder ${root} changed since its records were made (${change}): making them again`);
    const manifest = await makeRecords(root, listing, dataDir, dir, opts);
    say(`image folder ${root}: ${count(listing.files.length - manifest.skipped, 'image')} in ${listing.classNames.length} classes (${listing.split ? 'train/ and test/' : 'no test/ folder'}), kept as records in ${where}`);
    done = true;
    return { dir: where, downloaded: true, manifest: manifest as Manifest, labeling };
  } finally {
    await release();
    // A data dir this call made is removed when nothing was kept in it: a failure leaves nothing behind.
    if (!done) await removeMadeDirs(dataDir, created);
  }
}

const count = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

async function keptRecords(dataDir: string, labeling: Labeling): Promise<FolderManifest | null> {
  if (!(await checkExtracted(dataDir, labeling.format))) return null;
  try {
    const text = await readRegularFile(path.join(dataDir, labeling.format.dir, MANIFEST_FILE), 64 * 1024 * 1024, 'DATA', MANIFEST_FILE, '');
    const m = JSON.parse(text.toString('utf8')) as FolderManifest;
    return Array.isArray(m.files) && Array.isArray(m.classNames) ? m : null;
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

/**
 * Decodes every image, one at a time, into the records of each split, in a fixed shuffled order (so that
 * --limit-train takes some of every class), written into a temporary folder and renamed into place.
 */
async function makeRecords(root: string, listing: Listing, dataDir: string, dir: string, opts: FolderOptions): Promise<FolderManifest> {
  const say = opts.log ?? (() => {});
  const recordSize = 2 + IMAGE_BYTES;
  const records = { train: [] as Uint8Array[], test: [] as Uint8Array[] };
  const skipped: string[] = [];
  /** The classes with a training record (every class must have one). */
  const trained = new Set<number>();
  const hint = 'fix or remove the file, or pass --skip-bad-images to leave such files out (they are counted)';
  if (listing.files.length >= 1000) say(`image folder ${root}: decoding ${count(listing.files.length, 'file')} into 32x32 records (once; later runs read the records)`);
  for (const f of listing.files) {
    opts.signal?.throwIfAborted();
    const file = path.join(root, ...f.file.split('/'));
    let why = fileProblem(f);
    let pixels: Uint8Array | null = null;
    if (why === null) {
      try {
        pixels = toCifarImage(decodeImage(await readRegularFile(file, READ_CAPS.image, 'IMAGE', file, hint), file));
      } catch (e) {
        if (!(e instanceof AlexnetError)) throw e;
        why = e.message.replace(`cannot read ${file}: `, '');
      }
    }
    if (why !== null || pixels === null) {
      if (!opts.skipBad) throw new AlexnetError('IMAGE', `--images: ${file}: ${why}`, hint);
      skipped.push(`${f.file}: ${why}`);
      continue;
    }
    const rec = new Uint8Array(recordSize);
    rec[0] = f.label >> 8;
    rec[1] = f.label & 0xff;
    for (let p = 0; p < PLANE_BYTES; p++) for (let c = 0; c < CHANNELS; c++) rec[2 + c * PLANE_BYTES + p] = pixels[p * CHANNELS + c]!;
    records[f.split].push(rec);
    if (f.split === 'train') trained.add(f.label);
  }
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
    md5: 'unknown',
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
