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
export const NUM_CLASSES = 10;
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

export interface Split {
  /** N x 32 x 32 x 3 bytes, HWC (TensorFlow.js's NHWC), pixel values 0..255. */
  images: Uint8Array;
  /** N class indices 0..9. */
  labels: Uint8Array;
  count: number;
}

/**
 * Checks that `bytes` is a whole number of records with labels 0..9 and returns the record count.
 * `name` goes into the error so the user knows which file is bad.
 */
export function validateBatch(bytes: Uint8Array, name: string): number {
  if (bytes.length === 0 || bytes.length % RECORD_BYTES !== 0) {
    throw new AlexnetError(
      'DATA',
      `${name}: ${bytes.length} bytes is not a whole number of ${RECORD_BYTES}-byte CIFAR-10 records`,
      'the file is truncated or not CIFAR-10; run `alexnet download --force` to fetch it again',
    );
  }
  const count = bytes.length / RECORD_BYTES;
  for (let r = 0; r < count; r++) {
    const label = bytes[r * RECORD_BYTES]!;
    if (label >= NUM_CLASSES) {
      throw new AlexnetError(
        'DATA',
        `${name}: record ${r} has label ${label}, outside 0..${NUM_CLASSES - 1}`,
        'the file is not CIFAR-10 data; run `alexnet download --force` to fetch it again',
      );
    }
  }
  return count;
}

/**
 * Decodes one batch file's bytes (planar R,G,B per record) into interleaved HWC images and labels.
 * `out`, when given, receives the records at `outOffset` (in records), so that several batches fill one
 * array without a further copy.
 */
export function decodeBatch(bytes: Uint8Array, name = 'batch', out?: Split, outOffset = 0): Split {
  const count = validateBatch(bytes, name);
  const split = out ?? { images: new Uint8Array(count * IMAGE_BYTES), labels: new Uint8Array(count), count };
  if (outOffset + count > split.count) {
    throw new RangeError(`decodeBatch: ${count} records at ${outOffset} overflow a split of ${split.count}`);
  }
  const { images, labels } = split;
  for (let r = 0; r < count; r++) {
    const src = r * RECORD_BYTES;
    labels[outOffset + r] = bytes[src]!;
    const red = src + LABEL_BYTES;
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

/** batches.meta.txt: one class name per line, possibly followed by blank lines. */
export function parseClassNames(text: string): string[] {
  const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (names.length !== NUM_CLASSES) {
    throw new AlexnetError(
      'DATA',
      `${META_FILE}: expected ${NUM_CLASSES} class names, found ${names.length}`,
      'run `alexnet download --force` to fetch the data again',
    );
  }
  // Names are printed to terminals: an escape sequence in one could clear the screen or retitle the window.
  const bad = names.findIndex((n) => hasControlChars(n) || n.length > 64);
  if (bad >= 0) {
    throw new AlexnetError('DATA', `${META_FILE}: class name ${bad + 1} has control or bidirectional characters, or is longer than 64 characters`, 'the data is damaged or not CIFAR-10; run `alexnet download --force`');
  }
  return names;
}

export { hasControlChars, printable } from '../text.js';
