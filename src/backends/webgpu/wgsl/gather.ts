// A batch gathered and normalised on the GPU from the split kept there (issue #12), as both runners do it (the
// op-by-op runner's ../ops/gather_normalise_webgpu.ts, the compiled step's ../compiled/kernels/gather_webgpu.ts): the images stay in GPU
// memory as bytes (four to an int32, 154 MB for the 50,000 training images), and each step uploads only its
// indices instead of gathering and normalising 64 x 3,072 pixels on the host and uploading 786 KB of floats.
// Normalisation reads the host's own 256-entry table (src/batches.ts), so the pixels are bitwise the same as the
// host path's (WGSL's f32 division may be 2.5 ULP off; a lookup is exact), and so is augmentation (issue #21): the
// same draws, read from each image's gather word, the same crop and flip, zeros where the crop leaves the image.

import { CROP_PAD, type Batch } from '../../../batches.js';
import { IMAGE_BYTES, IMAGE_SIZE, type Split } from '../../../data/cifar.js';

/** WGSL: the pixel byte at `offset` of a split kept as int32 or u32 words, four bytes each, little-endian. */
const pixelByte = (pixels: string, offset: string) => `((bitcast<u32>(${pixels}[(${offset}) / 4]) >> (u32((${offset}) % 4) * 8u)) & 255u)`;

/**
 * A batch's images as the gather programs take them: one word each, the image's index in the split, and, for an
 * augmented image, its draws (src/batches.ts): bit 31 set, the crop's x offset in bits 20-23, its y offset in bits
 * 24-27, the flip in bit 28. An image as it is keeps bit 31 clear: the word is its index, as before augmentation.
 */
export function gatherWords(batch: Batch): Uint32Array {
  const { indices, augment } = batch;
  if (!augment) return indices;
  const words = new Uint32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    if (indices[i]! >= 1 << 20) throw new Error(`an augmented batch's image index ${indices[i]} does not fit 20 bits`);
    words[i] = (indices[i]! | (augment[3 * i + 1]! << 20) | (augment[3 * i + 2]! << 24) | (augment[3 * i]! << 28) | (1 << 31)) >>> 0;
  }
  return words;
}

/** WGSL: the image (its index in the split) of a gather word, augmented or not. */
export const wordImage = (word: string) => `select(${word}, ${word} & 0xfffffu, (${word} >> 31u) == 1u)`;

/**
 * WGSL: `gathered(word, k)`, element k (HWC) of the image a gather word names, normalised through `table` from
 * `pixels`, augmented as the word says: fillBatch's crop and flip (src/batches.ts), zero outside the image.
 */
export const gatheredFn = (pixels: string) => `
fn gathered(word : u32, k : u32) -> f32 {
  if ((word >> 31u) == 0u) {
    let offset = word * ${IMAGE_BYTES}u + k;
    return table[${pixelByte(pixels, 'offset')}];
  }
  let ox = i32((word >> 20u) & 15u);
  let oy = i32((word >> 24u) & 15u);
  let y = i32(k / ${3 * IMAGE_SIZE}u);
  var x = i32((k / 3u) % ${IMAGE_SIZE}u);
  if (((word >> 28u) & 1u) == 1u) { x = ${IMAGE_SIZE - 1} - x; }
  let sy = y + oy - ${CROP_PAD};
  let sx = x + ox - ${CROP_PAD};
  if (sy < 0 || sy >= ${IMAGE_SIZE} || sx < 0 || sx >= ${IMAGE_SIZE}) { return 0.0; }
  let offset = (word & 0xfffffu) * ${IMAGE_BYTES}u + u32(sy) * ${3 * IMAGE_SIZE}u + u32(sx) * 3u + k % 3u;
  return table[${pixelByte(pixels, 'offset')}];
}
`;

/** The split's bytes as int32 words, four pixels each, little-endian: what the program reads. */
export function packPixels(images: Uint8Array): Int32Array {
  if (images.byteOffset % 4 === 0 && images.byteLength % 4 === 0) return new Int32Array(images.buffer, images.byteOffset, images.byteLength / 4);
  const copy = new Uint8Array(Math.ceil(images.byteLength / 4) * 4);
  copy.set(images);
  return new Int32Array(copy.buffer);
}

/**
 * What both runners upload to keep `split` on the GPU: its pixels as words (null where they do not fit a buffer of
 * `maxBufferBytes`: then each batch comes from the host) and its labels.
 */
export function residentWords(split: Split, maxBufferBytes: number): { pixels: Int32Array | null; labels: Int32Array } {
  return { pixels: split.images.byteLength <= maxBufferBytes ? packPixels(split.images) : null, labels: Int32Array.from(split.labels) };
}
