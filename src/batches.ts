// The batch stage: which images each training step sees, in which order, and how their pixels become the
// network's input. Defined once, here; each runner (src/backends/) only chooses where it runs: on the host
// (fillBatch), on the GPU (webgpu's gather program reads the same table) or on the host and then cut into
// worker shards (wasm). A test holds every runner's batch to the host's, bit for bit.

import { IMAGE_BYTES, type Split } from './data/cifar.js';
import { mulberry32 } from './random.js';

/** One training step's images: positions in the split, in order. */
export interface Batch {
  indices: Uint32Array;
}

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

/** The batches of one epoch of `count` images: the seed's order, cut into batches of `batchSize` (the last shorter). */
export function epochBatches(count: number, batchSize: number, seed: number, epoch: number): { batches: number; batch(b: number): Batch } {
  const perm = epochPermutation(count, seed, epoch);
  return {
    batches: Math.ceil(count / batchSize),
    batch: (b) => ({ indices: perm.subarray(b * batchSize, Math.min((b + 1) * batchSize, count)) }),
  };
}

/** The images `start..start+n` of a split in file order: an evaluation batch. */
export const inOrder = (start: number, n: number): Batch => ({ indices: Uint32Array.from({ length: n }, (_, i) => start + i) });

/**
 * Pixels to the seed's `(x/255 - 0.5)/0.5`, i.e. x/127.5 - 1, as a 256-entry table: exact on every device (a
 * GPU's f32 division may be 2.5 ULP off; a lookup is not), and ~0.3 ms a batch of 64 on the host.
 */
export const NORMALISE = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);

/** Fills `out` with the batch's normalised images (NHWC) and `labelsOut` with their labels. */
export function fillBatch(split: Split, batch: Batch, out: Float32Array, labelsOut: Int32Array): void {
  const { indices } = batch;
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b]! * IMAGE_BYTES;
    const dst = b * IMAGE_BYTES;
    for (let k = 0; k < IMAGE_BYTES; k++) out[dst + k] = NORMALISE[split.images[src + k]!]!;
    labelsOut[b] = split.labels[indices[b]!]!;
  }
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
