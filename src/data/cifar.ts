// The CIFAR-10 binary format (https://www.cs.toronto.edu/~kriz/cifar.html, "Binary version"):
// each record is 1 label byte, then 3,072 pixel bytes in planes: 1,024 red, 1,024 green, 1,024 blue,
// each plane row-major 32x32. Decoding is pure: bytes in, typed arrays out.

import { AlexnetError } from '../errors.js';
import { hasControlChars } from '../text.js';

export const IMAGE_SIZE = 32; // pixels per side
export const CHANNELS = 3; // R, G, B planes
export const PLANE_BYTES = IMAGE_SIZE * IMAGE_SIZE; // 1,024
export const LABEL_BYTES = 1;
export const IMAGE_BYTES = CHANNELS * PLANE_BYTES; // 3,072
export const RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES; // 3,073
export const NUM_CLASSES = 10; // CIFAR-10's
/** The class counts a network here may have: a data set's classes (CIFAR-100's 100, an image folder's). */
export const MIN_CLASSES = 2;
export const MAX_CLASSES = 1000;
export const RECORDS_PER_OFFICIAL_BATCH = 10_000; // every .bin of the official archive

export const BATCHES_DIR = 'cifar-10-batches-bin'; // the folder the official archive unpacks to
export const TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const TEST_FILE = 'test_batch.bin';
export const META_FILE = 'batches.meta.txt';
export const MEMBERS = [...TRAIN_FILES, TEST_FILE, META_FILE];

/** Class names of the official archive, for when batches.meta.txt is not at hand. */
export const DEFAULT_CLASS_NAMES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

/**
 * A data set's files in the data dir: an archive's folder (CIFAR-10's, CIFAR-100's) or the records this tool
 * makes of an image folder (src/data/folder.ts). Every record is `labelBytes` label bytes and 3,072 planar pixels.
 */
export interface RecordFormat {
  /** For messages: `CIFAR-10`, `CIFAR-100`, `image folder`. */
  title: string;
  /** The folder in the data dir (the archive's own folder name). */
  dir: string;
  trainFiles: string[];
  testFile: string;
  /** Members holding class names, one a line. */
  metaFiles: string[];
  labelBytes: number;
  /** The most records a member may hold (the official archive's count: a member is held to it before it is read). */
  maxRecords: Record<string, number>;
  /** The test member may be empty: an image folder without a test/ folder (its validation split is held out). */
  emptyTest?: boolean;
}

export const recordBytes = (f: RecordFormat) => f.labelBytes + IMAGE_BYTES;
export const members = (f: RecordFormat) => [...f.trainFiles, f.testFile, ...f.metaFiles];

export const CIFAR10_FORMAT: RecordFormat = {
  title: 'CIFAR-10',
  dir: BATCHES_DIR,
  trainFiles: TRAIN_FILES,
  testFile: TEST_FILE,
  metaFiles: [META_FILE],
  labelBytes: LABEL_BYTES,
  maxRecords: Object.fromEntries([...TRAIN_FILES, TEST_FILE].map((f) => [f, RECORDS_PER_OFFICIAL_BATCH])),
};

/**
 * CIFAR-100's binary version (https://www.cs.toronto.edu/~kriz/cifar.html): a record is 1 coarse-label byte
 * (20 superclasses), 1 fine-label byte (100 classes), then the pixels as CIFAR-10's.
 */
export const CIFAR100_FORMAT: RecordFormat = {
  title: 'CIFAR-100',
  dir: 'cifar-100-binary',
  trainFiles: ['train.bin'],
  testFile: 'test.bin',
  metaFiles: ['coarse_label_names.txt', 'fine_label_names.txt'],
  labelBytes: 2,
  maxRecords: { 'train.bin': 50_000, 'test.bin': 10_000 },
};

/** Which classes a record's label bytes name, and where their names are. */
export interface Labeling {
  format: RecordFormat;
  /** The member with the class names. */
  namesFile: string;
  classes: number;
  /** Which label byte holds the class (CIFAR-100: 0 coarse, 1 fine); `wide`: both bytes, big-endian (up to 65,535). */
  byte: number | 'wide';
  /** Checked on every record, whatever the labeling: each label byte's range (CIFAR-100's coarse < 20, fine < 100). */
  ranges: number[];
}

export const CIFAR10_LABELS: Labeling = { format: CIFAR10_FORMAT, namesFile: META_FILE, classes: NUM_CLASSES, byte: 0, ranges: [NUM_CLASSES] };
export const CIFAR100_LABELS = {
  fine: { format: CIFAR100_FORMAT, namesFile: 'fine_label_names.txt', classes: 100, byte: 1, ranges: [20, 100] },
  coarse: { format: CIFAR100_FORMAT, namesFile: 'coarse_label_names.txt', classes: 20, byte: 0, ranges: [20, 100] },
} satisfies Record<string, Labeling>;

/** The class of the record at `at` (its first byte). */
const labelAt = (l: Labeling, bytes: Uint8Array, at: number) => (l.byte === 'wide' ? (bytes[at]! << 8) | bytes[at + 1]! : bytes[at + l.byte]!);

export interface Split {
  /** N x 32 x 32 x 3 bytes, HWC (TensorFlow.js's NHWC), pixel values 0..255. */
  images: Uint8Array;
  /** N class indices, 0..classes-1 (CIFAR-10: 0..9; an image folder's up to 999). */
  labels: Uint16Array;
  count: number;
}

/**
 * Checks that `bytes` is a whole number of records with labels in range (CIFAR-10: 0..9) and returns the record
 * count. `name` goes into the error so the user knows which file is bad.
 */
export function validateBatch(bytes: Uint8Array, name: string, labeling: Labeling = CIFAR10_LABELS): number {
  const { title } = labeling.format;
  const size = recordBytes(labeling.format);
  if (bytes.length === 0 || bytes.length % size !== 0) {
    throw new AlexnetError(
      'DATA',
      `${name}: ${bytes.length} bytes is not a whole number of ${size}-byte ${title} records`,
      `the file is truncated or not ${title}; run \`alexnet download --force\` to fetch it again`,
    );
  }
  const count = bytes.length / size;
  const ranges = labeling.byte === 'wide' ? [labeling.classes] : labeling.ranges;
  for (let r = 0; r < count; r++) {
    for (let b = 0; b < ranges.length; b++) {
      const label = labeling.byte === 'wide' ? labelAt(labeling, bytes, r * size) : bytes[r * size + b]!;
      if (label >= ranges[b]!) {
        throw new AlexnetError(
          'DATA',
          `${name}: record ${r} has ${ranges.length > 1 ? `${b === 0 ? 'coarse' : 'fine'} ` : ''}label ${label}, outside 0..${ranges[b]! - 1}`,
          `the file is not ${title} data; run \`alexnet download --force\` to fetch it again`,
        );
      }
    }
  }
  return count;
}

/**
 * Decodes one batch file's bytes (planar R,G,B per record) into interleaved HWC images and labels.
 * `out`, when given, receives the records at `outOffset` (in records), so that several batches fill one
 * array without a further copy.
 */
export function decodeBatch(bytes: Uint8Array, name = 'batch', out?: Split, outOffset = 0, labeling: Labeling = CIFAR10_LABELS): Split {
  const count = validateBatch(bytes, name, labeling);
  const size = recordBytes(labeling.format);
  const split = out ?? { images: new Uint8Array(count * IMAGE_BYTES), labels: new Uint16Array(count), count };
  if (outOffset + count > split.count) {
    throw new RangeError(`decodeBatch: ${count} records at ${outOffset} overflow a split of ${split.count}`);
  }
  const { images, labels } = split;
  for (let r = 0; r < count; r++) {
    const src = r * size;
    labels[outOffset + r] = labelAt(labeling, bytes, src);
    const red = src + labeling.format.labelBytes;
    const green = red + PLANE_BYTES;
    const blue = green + PLANE_BYTES;
    let dst = (outOffset + r) * IMAGE_BYTES;
    for (let p = 0; p < PLANE_BYTES; p++) {
      images[dst++] = bytes[red + p]!;
      images[dst++] = bytes[green + p]!;
      images[dst++] = bytes[blue + p]!;
    }
  }
  return split;
}

/** batches.meta.txt (or CIFAR-100's label name files): one class name per line, possibly followed by blank lines. */
export function parseClassNames(text: string, file = META_FILE, classes = NUM_CLASSES, title = 'CIFAR-10'): string[] {
  const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (names.length !== classes) {
    throw new AlexnetError(
      'DATA',
      `${file}: expected ${classes} class names, found ${names.length}`,
      'run `alexnet download --force` to fetch the data again',
    );
  }
  // Names are printed to terminals: an escape sequence in one could clear the screen or retitle the window.
  const bad = names.findIndex((n) => hasControlChars(n) || n.length > 64);
  if (bad >= 0) {
    throw new AlexnetError('DATA', `${file}: class name ${bad + 1} has control or bidirectional characters, or is longer than 64 characters`, `the data is damaged or not ${title}; run \`alexnet download --force\``);
  }
  return names;
}

export { hasControlChars, printable } from '../text.js';
