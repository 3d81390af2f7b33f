// The batch stage: which images each training step sees, in which order, how each is augmented, and how their
// pixels become the network's input. Defined once, here; each runner (src/backends/) only chooses where it runs:
// on the host (fillBatch), on the GPU (webgpu's gather programs read the same table and apply the same draws) or
// on the host and then cut into worker shards (wasm). A test holds every runner's batch to the host's, bit for bit.

import { IMAGE_BYTES, IMAGE_SIZE, type Split } from './data/cifar.js';
import type { Augment } from './recipe.js';
import { mulberry32 } from './random.js';

/** One training step's images: positions in the split, in order, and how each is augmented (none: as it is). */
export interface Batch {
  indices: Uint32Array;
  /** Per image, 3 values: flip (0 or 1), then the crop's x and y offset in the padded image (0..8; 4: centred). */
  augment?: Uint8Array;
}

/** The padding of a random crop: torchvision's RandomCrop(32, padding=4). */
export const CROP_PAD = 4;

/** The training order of `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch) alone, so a resumed run repeats it. */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const rand = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/**
 * The batches of one epoch of `count` images: the seed's order, cut into batches of `batchSize` (the last shorter),
 * each image augmented as `augment` says with draws of (seed, epoch, batch, image) alone, so that a resumed run
 * sees the very batches of one that was never interrupted.
 */
export function epochBatches(count: number, batchSize: number, seed: number, epoch: number, augment: Augment = 'none'): { batches: number; batch(b: number): Batch } {
  const perm = epochPermutation(count, seed, epoch);
  return {
    batches: Math.ceil(count / batchSize),
    batch: (b) => {
      const indices = perm.subarray(b * batchSize, Math.min((b + 1) * batchSize, count));
      return augment === 'none' ? { indices } : { indices, augment: augmentDraws(augment, seed, epoch, b, indices.length) };
    },
  };
}

/** murmur3's finaliser: 32 well-mixed bits from 32. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The augmentation of each of `n` images of batch `b` of `epoch`: a flip bit and crop offsets (0..2*CROP_PAD), each
 * from a hash of (seed, epoch, batch, image), independent of the batch size of the others and of any state.
 */
export function augmentDraws(augment: Augment, seed: number, epoch: number, b: number, n: number): Uint8Array {
  const out = new Uint8Array(3 * n);
  const flip = augment === 'flip' || augment === 'crop,flip';
  const crop = augment === 'crop' || augment === 'crop,flip';
  for (let i = 0; i < n; i++) {
    const h = mix32(mix32(mix32(mix32(seed ^ 0x5bd1e995) ^ epoch) ^ b) ^ i);
    out[3 * i] = flip ? h & 1 : 0;
    out[3 * i + 1] = crop ? (h >>> 8) % (2 * CROP_PAD + 1) : CROP_PAD;
    out[3 * i + 2] = crop ? (h >>> 16) % (2 * CROP_PAD + 1) : CROP_PAD;
  }
  return out;
}

/** The images `start..start+n` of a split in file order: an evaluation batch. */
export const inOrder = (start: number, n: number): Batch => ({ indices: Uint32Array.from({ length: n }, (_, i) => start + i) });

/**
 * Pixels to the seed's `(x/255 - 0.5)/0.5`, i.e. x/127.5 - 1, as a 256-entry table: exact on every device (a
 * GPU's f32 division may be 2.5 ULP off; a lookup is not), and ~0.3 ms a batch of 64 on the host.
 */
export const NORMALISE = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);
/** NORMALISE in words, for what an exported model takes (src/export.ts). */
export const NORMALISE_WORDS = '(pixel / 255 - 0.5) / 0.5 per RGB channel';

/**
 * Fills `out` with the batch's normalised images (NHWC) and `labelsOut` with their labels. An augmented image is
 * torchvision's RandomCrop(32, padding=4) then RandomHorizontalFlip: output pixel (y, x) is the source pixel
 * (y + oy - 4, x' + ox - 4), where x' is x or, flipped, 31 - x; outside the image it is 0, the normalised value of
 * the padding.
 */
export function fillBatch(split: Split, batch: Batch, out: Float32Array, labelsOut: Int32Array): void {
  const { indices, augment } = batch;
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b]! * IMAGE_BYTES;
    const dst = b * IMAGE_BYTES;
    labelsOut[b] = split.labels[indices[b]!]!;
    if (!augment) {
      for (let k = 0; k < IMAGE_BYTES; k++) out[dst + k] = NORMALISE[split.images[src + k]!]!;
      continue;
    }
    const [flip, ox, oy] = [augment[3 * b]!, augment[3 * b + 1]!, augment[3 * b + 2]!];
    for (let y = 0; y < IMAGE_SIZE; y++) {
      const sy = y + oy - CROP_PAD;
      for (let x = 0; x < IMAGE_SIZE; x++) {
        const sx = (flip ? IMAGE_SIZE - 1 - x : x) + ox - CROP_PAD;
        const o = dst + (y * IMAGE_SIZE + x) * 3;
        if (sy < 0 || sy >= IMAGE_SIZE || sx < 0 || sx >= IMAGE_SIZE) {
          out[o] = out[o + 1] = out[o + 2] = 0;
          continue;
        }
        const i = src + (sy * IMAGE_SIZE + sx) * 3;
        out[o] = NORMALISE[split.images[i]!]!;
        out[o + 1] = NORMALISE[split.images[i + 1]!]!;
        out[o + 2] = NORMALISE[split.images[i + 2]!]!;
      }
    }
  }
}

/**
 * The training split cut in two (--valid-split): `held` images chosen by a shuffle of (seed) alone, kept in their
 * file order, as the validation split, and the rest, in file order, to train on.
 */
export function holdOut(split: Split, held: number, seed: number): { train: Split; valid: Split } {
  const isHeld = new Uint8Array(split.count);
  for (const i of epochPermutation(split.count, seed ^ 0x7f4a7c15, -2).subarray(0, held)) isHeld[i] = 1;
  const pick = (which: number): Split => {
    const idx: number[] = [];
    for (let i = 0; i < split.count; i++) if (isHeld[i] === which) idx.push(i);
    const images = new Uint8Array(idx.length * IMAGE_BYTES);
    const labels = new Uint16Array(idx.length);
    idx.forEach((from, to) => {
      images.set(split.images.subarray(from * IMAGE_BYTES, (from + 1) * IMAGE_BYTES), to * IMAGE_BYTES);
      labels[to] = split.labels[from]!;
    });
    return { images, labels, count: idx.length };
  };
  return { train: pick(0), valid: pick(1) };
}

/** Host buffers for batches of up to n images, grown as needed and reused (a batch of 64 is 786 KB of floats). */
export class BatchBuffers {
  x: Float32Array<ArrayBuffer> = new Float32Array(0);
  y: Int32Array<ArrayBuffer> = new Int32Array(0);

  /** The batch filled into the buffers: its first `indices.length` images and labels. */
  fill(split: Split, batch: Batch): { x: Float32Array<ArrayBuffer>; y: Int32Array<ArrayBuffer>; n: number } {
    const n = batch.indices.length;
    if (this.y.length < n) {
      this.x = new Float32Array(n * IMAGE_BYTES);
      this.y = new Int32Array(n);
    }
    fillBatch(split, batch, this.x, this.y);
    return { x: this.x, y: this.y, n };
  }
}
