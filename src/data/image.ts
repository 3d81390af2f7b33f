// Images from users (`predict`): PNG or JPEG bytes to one 32x32 RGB image in the training data's layout.
// Decoding is left to well-kept libraries (pngjs, jpeg-js); what is ours is the resize, which mirrors how
// CIFAR-10 was made: Tiny Images were downsampled whole to 32x32, so each output pixel is the mean of the
// source area it covers (a box filter), after a centre crop to a square so nothing is stretched.

import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { AlexnetError } from '../errors.js';
import { CHANNELS, IMAGE_BYTES, IMAGE_SIZE } from './cifar.js';

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export const JPEG_SIGNATURE = [0xff, 0xd8, 0xff]; // SOI marker, then the first segment's marker
/** Larger images are refused rather than decoded into gigabytes (jpeg-js's own guard, applied to PNG too). */
export const MAX_MEGAPIXELS = 100;
/**
 * Nor a side longer than this: pngjs's work and memory grow per row too, and a 389 KB PNG of 1 x 99,999,999
 * pixels (under the megapixel cap) ran V8 out of heap after 2 minutes and 5.5 GB (issue #13).
 */
export const MAX_SIDE = 16_384;
/** Transparent pixels are composited over white: CIFAR has no alpha, and icons are drawn for light pages. */
export const BACKGROUND = 255;

export interface RgbaImage {
  width: number;
  height: number;
  /** width x height x 4 bytes, row-major RGBA. */
  data: Uint8Array;
}

export function sniffImageType(bytes: Uint8Array): 'png' | 'jpeg' | null {
  const starts = (sig: number[]) => bytes.length >= sig.length && sig.every((b, i) => bytes[i] === b);
  if (starts(PNG_SIGNATURE)) return 'png';
  if (starts(JPEG_SIGNATURE)) return 'jpeg';
  return null;
}

/** Decodes PNG or JPEG bytes (by content, not by file name); `name` goes into the error. */
export function decodeImage(bytes: Uint8Array, name: string): RgbaImage {
  const type = sniffImageType(bytes);
  const fail = (why: string) => new AlexnetError('IMAGE', `cannot read ${name}: ${why}`, 'pass PNG or JPEG image files');
  if (type === null) throw fail('not a PNG or JPEG file');
  // The size from the header, before decoding: pngjs and jpeg-js would allocate for it first. A damaged header is
  // left to the decoders to report.
  const size = type === 'png' ? pngSize(bytes) : jpegSize(bytes);
  if (size) {
    const [w, h] = size;
    if (w * h > MAX_MEGAPIXELS * 1e6) throw fail(`${w} x ${h} pixels is too large: more than ${MAX_MEGAPIXELS} megapixels`);
    if (w > MAX_SIDE || h > MAX_SIDE) throw fail(`${w} x ${h} pixels: a side is longer than ${MAX_SIDE.toLocaleString('en-US')}`);
  }
  // A truncated PNG is told before pngjs allocates for the size its header claims (a 69-byte file claiming
  // 16,384 x 6,103 gave a prediction, exit 0, at 1.24 GB: issue #20).
  if (type === 'png') {
    const cut = pngTruncation(bytes);
    if (cut) throw fail(`the PNG data is damaged (${cut})`);
  }
  let img: RgbaImage;
  try {
    if (type === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      img = { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    } else {
      // jpeg-js's own memory cap (512 MB) refused JPEGs above ~40 MP as damaged; 100 MP needs ~1 GB of its buffers.
      const j = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_MEGAPIXELS, maxMemoryUsageInMB: JPEG_MEMORY_MB });
      img = { width: j.width, height: j.height, data: j.data };
    }
  } catch (e) {
    throw fail(`the ${type === 'png' ? 'PNG' : 'JPEG'} data is damaged (${String((e as Error).message ?? e).split('\n')[0]})`);
  }
  if (img.width === 0 || img.height === 0) throw fail('the image is empty');
  if (img.width * img.height > MAX_MEGAPIXELS * 1e6) throw fail(`larger than ${MAX_MEGAPIXELS} megapixels`);
  return img;
}

/** What jpeg-js may allocate decoding one image of up to MAX_MEGAPIXELS (its RGBA output and components). */
const JPEG_MEMORY_MB = 1200;

/** Width and height from a PNG's IHDR chunk (always first, at byte 12), or null. */
function pngSize(b: Uint8Array): [number, number] | null {
  if (b.length < 24 || String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR') return null;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

/** Width and height from a JPEG's start-of-frame segment (SOF0..SOF15 but DHT, JPG and DAC), or null. */
function jpegSize(b: Uint8Array): [number, number] | null {
  let at = 2;
  while (at + 9 < b.length) {
    if (b[at] !== 0xff) return null;
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = (b[at + 2]! << 8) | b[at + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return [(b[at + 7]! << 8) | b[at + 8]!, (b[at + 5]! << 8) | b[at + 6]!];
    }
    if (marker === 0xda || marker === 0xd9) return null; // the scan, or the end, before any frame
    at += 2 + length;
  }
  return null;
}

/** Deflate's largest ratio of output to input (258-byte matches coded in under 2 bits each): ~1032 to 1. */
const DEFLATE_MAX_RATIO = 1032;
/** Channels per PNG colour type (gray, RGB, palette, gray+alpha, RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Why a PNG is cut short, or null when it is whole: a chunk runs past the end, there is no IEND chunk, or its
 * compressed pixels (IDAT) are too few to fill the size its header claims even at deflate's best ratio (a
 * structurally whole 69-byte PNG claiming 16,384 x 6,103 was decoded into a 400 MB bitmap of zeros: issue #24).
 */
function pngTruncation(b: Uint8Array): string | null {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = PNG_SIGNATURE.length;
  let idat = 0;
  while (at + 8 <= b.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...b.subarray(at + 4, at + 8));
    if (at + 12 + length > b.length) return `it is truncated: its ${type} chunk runs past the end of the file`;
    if (type === 'IDAT') idat += length;
    if (type === 'IEND') {
      const size = pngSize(b);
      const channels = PNG_CHANNELS[b[25] ?? -1];
      if (!size || channels === undefined) return null; // a damaged header: the decoder says what is wrong
      const pixelBytes = Math.ceil((size[0] * size[1] * channels * (b[24] ?? 8)) / 8);
      if (idat * DEFLATE_MAX_RATIO < pixelBytes) return `it is truncated: ${idat.toLocaleString('en-US')} bytes of compressed pixels cannot fill ${size[0]} x ${size[1]} pixels`;
      return null;
    }
    at += 12 + length;
  }
  return 'it is truncated: it ends before its IEND chunk';
}

/** For each output index, the source pixels it covers and their weights (summing to 1): a box filter. */
function boxWeights(start: number, span: number, outSize: number): { index: number; weight: number }[][] {
  const scale = span / outSize;
  return Array.from({ length: outSize }, (_, o) => {
    const lo = o * scale;
    const hi = (o + 1) * scale;
    const taps: { index: number; weight: number }[] = [];
    for (let i = Math.floor(lo); i < hi; i++) {
      const w = Math.min(hi, i + 1) - Math.max(lo, i);
      if (w > 1e-12) taps.push({ index: start + i, weight: w / scale });
    }
    return taps;
  });
}

/** A channel's mean as a byte. */
const toByte = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

/**
 * The image as CIFAR-10 stores it after decoding: 32x32x3 bytes, HWC. Centre crop to a square, alpha over
 * white, then each output pixel is the area-weighted mean of its source pixels. Smaller images are enlarged
 * by the same rule, which is then nearest-neighbour.
 *
 * Each source pixel adds w * (v * alpha + 255 * (1 - alpha)) per channel, rows then columns in order. An opaque
 * pixel's term is w * v to the bit (v * 1 + 255 * 0), so it is added as that, in locals rather than an array:
 * 59 opaque megapixels took 0.92-1.20 s and take 0.37-0.40 s, with the same bytes out (this function alone,
 * three interleaved runs, Intel Xeon, 2026-12-07; test/image.test.ts holds it to the plain formula).
 */
export function toCifarImage(img: RgbaImage, out = new Uint8Array(IMAGE_BYTES)): Uint8Array {
  const side = Math.min(img.width, img.height);
  const xs = boxWeights(Math.floor((img.width - side) / 2), side, IMAGE_SIZE);
  const ys = boxWeights(Math.floor((img.height - side) / 2), side, IMAGE_SIZE);
  const data = img.data;
  for (let oy = 0; oy < IMAGE_SIZE; oy++) {
    for (let ox = 0; ox < IMAGE_SIZE; ox++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const taps = xs[ox]!;
      for (const ty of ys[oy]!) {
        const row = ty.index * img.width;
        for (let t = 0; t < taps.length; t++) {
          const tx = taps[t]!;
          const p = (row + tx.index) * 4;
          const w = ty.weight * tx.weight;
          const a = data[p + 3]!;
          if (a === 255) {
            r += w * data[p]!;
            g += w * data[p + 1]!;
            b += w * data[p + 2]!;
          } else {
            const alpha = a / 255;
            const behind = BACKGROUND * (1 - alpha);
            r += w * (data[p]! * alpha + behind);
            g += w * (data[p + 1]! * alpha + behind);
            b += w * (data[p + 2]! * alpha + behind);
          }
        }
      }
      out.set([r, g, b].map(toByte), (oy * IMAGE_SIZE + ox) * CHANNELS);
    }
  }
  return out;
}
