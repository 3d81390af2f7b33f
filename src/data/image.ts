// Images from users (`predict`, `--images`): image file bytes to one 32x32 RGB image in the training data's layout.
// Decoding is libvips's (through sharp: libjpeg-turbo, libspng, libwebp, libheif, giflib, libtiff), as it is PIL's
// and every browser's, so the pixels a model trains on are the pixels it is served: on 2,000 real CIFAR-10 JPEGs
// sharp gives PIL's bytes exactly (0 of 6,144,000 differ), where jpeg-js was up to 65 levels off (mean 1.5) and
// flipped 2 of 200 predictions against ONNX Runtime fed PIL's pixels (issue #35). There is no second decoder to
// fall back on: one that gives other pixels would train a model on what it is never served. What is ours is the
// resize, which mirrors how CIFAR-10 was made: Tiny Images were downsampled whole to 32x32, so each output pixel
// is the mean of the source area it covers (a box filter), after a centre crop to a square so nothing is stretched.
// EXIF orientation is not applied, as PIL's Image.open and torchvision's ImageFolder do not apply it.

import { AlexnetError } from '../errors.js';
import { CHANNELS, IMAGE_BYTES, IMAGE_SIZE } from './cifar.js';

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export const JPEG_SIGNATURE = [0xff, 0xd8, 0xff]; // SOI marker, then the first segment's marker
/** Larger images are refused rather than decoded into gigabytes (sharp's limitInputPixels holds it too). */
export const MAX_MEGAPIXELS = 100;
/**
 * Nor a side longer than this: a decoder's work and memory grow per row too, and a 389 KB PNG of 1 x 99,999,999
 * pixels (under the megapixel cap) ran V8 out of heap after 2 minutes and 5.5 GB (issue #13).
 */
export const MAX_SIDE = 16_384;
/** Transparent pixels are composited over white: CIFAR has no alpha, and icons are drawn for light pages. */
export const BACKGROUND = 255;

export interface RgbaImage {
  width: number;
  height: number;
  /** 4: RGBA (the default), 3: RGB, no alpha (opaque), as libvips gives an image without an alpha channel. */
  channels?: 3 | 4;
  /** width x height x channels bytes, row-major. */
  data: Uint8Array;
}

export const IMAGE_TYPES = ['png', 'jpeg', 'webp', 'avif', 'gif', 'tiff'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];
/** The formats in words, for messages: `PNG, JPEG, WebP, AVIF, GIF or TIFF`. */
export const IMAGE_WORDS = 'PNG, JPEG, WebP, AVIF, GIF or TIFF';
/** File names the image folders take (as torchvision's ImageFolder tells images by extension). */
export const IMAGE_EXTENSIONS = /\.(png|jpe?g|webp|avif|gif|tiff?)$/i;

/** The format of `bytes`, by their first bytes (not the file name), or null. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  const at = (sig: number[] | string, offset = 0) => {
    const b = typeof sig === 'string' ? [...sig].map((c) => c.charCodeAt(0)) : sig;
    return bytes.length >= offset + b.length && b.every((v, i) => bytes[offset + i] === v);
  };
  if (at(PNG_SIGNATURE)) return 'png';
  if (at(JPEG_SIGNATURE)) return 'jpeg';
  if (at('RIFF') && at('WEBP', 8)) return 'webp';
  if (at('GIF87a') || at('GIF89a')) return 'gif';
  if (at([0x49, 0x49, 0x2a, 0x00]) || at([0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  // ISO BMFF: a `ftyp` box whose major brand is AVIF's (still image or sequence).
  if (at('ftyp', 4) && (at('avif', 8) || at('avis', 8))) return 'avif';
  return null;
}

type Sharp = typeof import('sharp').default;
let sharpModule: Promise<Sharp> | null = null;

/** sharp, loaded on first use: only the commands that decode images pay for loading libvips. */
function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp').then(
    (m) => {
      const sharp = m.default;
      // The image folders decode many files at once (src/data/folder.ts): one libvips thread each, not a pool each.
      sharp.concurrency(1);
      sharp.cache(false);
      return sharp;
    },
    (e: unknown) => {
      sharpModule = null;
      throw new AlexnetError('IMAGE', `cannot decode images: sharp (libvips) does not load here: ${String((e as Error)?.message ?? e).split('\n')[0]}`, 'run `npm rebuild sharp` (its libvips comes prebuilt as @img/sharp-* packages for Linux, macOS and Windows; see sharp\'s installation notes for other systems)');
    },
  );
  return sharpModule;
}

/** Whether the decoder loads here, and its versions (for `alexnet doctor`); the error otherwise. */
export async function imageDecoder(): Promise<{ sharp: string; vips: string } | { error: AlexnetError }> {
  try {
    const sharp = await loadSharp();
    return { sharp: sharp.versions.sharp ?? '?', vips: sharp.versions.vips };
  } catch (e) {
    if (e instanceof AlexnetError) return { error: e };
    throw e;
  }
}

/** Decodes image bytes (told by content, not by file name) to RGBA; `name` goes into the error. */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<RgbaImage> {
  const type = sniffImageType(bytes);
  const fail = (why: string) => new AlexnetError('IMAGE', `cannot read ${name}: ${why}`, `pass ${IMAGE_WORDS} image files`);
  if (type === null) throw fail(`not a ${IMAGE_WORDS} file`);
  const word = type === 'jpeg' ? 'JPEG' : type === 'webp' ? 'WebP' : type.toUpperCase();
  const checkSize = (w: number, h: number) => {
    if (w * h > MAX_MEGAPIXELS * 1e6) throw fail(`${w} x ${h} pixels is too large: more than ${MAX_MEGAPIXELS} megapixels`);
    if (w > MAX_SIDE || h > MAX_SIDE) throw fail(`${w} x ${h} pixels: a side is longer than ${MAX_SIDE.toLocaleString('en-US')}`);
  };
  // The size from the header, before any decoder allocates for it. A damaged header is left to the decoder.
  const size = type === 'png' ? pngSize(bytes) : type === 'jpeg' ? jpegSize(bytes) : null;
  if (size) checkSize(...size);
  // A truncated PNG is told before a bitmap is allocated for the size its header claims (a 69-byte file claiming
  // 16,384 x 6,103 gave a prediction, exit 0, at 1.24 GB: issue #20).
  if (type === 'png') {
    const cut = pngTruncation(bytes);
    if (cut) throw fail(`the PNG data is damaged (${cut})`);
  }
  const sharp = await loadSharp();
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // limitInputPixels: libvips's own bomb limit, as strict as ours; failOn 'warning' (sharp's default): a truncated
  // or corrupt file is an error, not a half-grey image. A GIF's or TIFF's first frame (page) is the image.
  const image = sharp(input, { limitInputPixels: MAX_MEGAPIXELS * 1e6, failOn: 'warning', sequentialRead: true, pages: 1 });
  let img: RgbaImage;
  try {
    // Other formats' sizes from libvips's reading of the header (PNG's and JPEG's were read above: a second pass
    // of libvips for each file cost 0.2 ms of the 0.7 a small JPEG took).
    if (!size) {
      const meta = await image.metadata();
      if (meta.width !== undefined && meta.height !== undefined) checkSize(meta.width, meta.height);
    }
    // sRGB at 8 bits, as libvips outputs any input (grey, palette, CMYK, 16-bit): RGB, or RGBA where there is alpha.
    // Asking for RGBA besides (toColourspace, ensureAlpha) made each small JPEG cost 75% more (0.57 -> 0.32 ms).
    const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 && info.channels !== 4) throw new Error(`${info.channels} channels after conversion to sRGB`);
    img = { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    if (e instanceof AlexnetError) throw e;
    throw fail(`the ${word} data is damaged (${String((e as Error)?.message ?? e).split('\n')[0]})`);
  }
  if (img.width === 0 || img.height === 0) throw fail('the image is empty');
  return img;
}

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

/** Whether every pixel of RGBA `data` is opaque. */
function opaque(data: Uint8Array): boolean {
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 255) return false;
  return true;
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
  const k = img.channels ?? 4;
  if (img.width === IMAGE_SIZE && img.height === IMAGE_SIZE && (k === 3 || opaque(img.data))) {
    // A 32x32 opaque image is its own box mean (one tap of weight 1 a pixel: w * v is v): CIFAR's own photographs.
    for (let p = 0; p < IMAGE_SIZE * IMAGE_SIZE; p++) for (let c = 0; c < CHANNELS; c++) out[p * CHANNELS + c] = img.data[p * k + c]!;
    return out;
  }
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
          const p = (row + tx.index) * k;
          const w = ty.weight * tx.weight;
          const a = k === 4 ? data[p + 3]! : 255;
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
      const at = (oy * IMAGE_SIZE + ox) * CHANNELS;
      out[at] = toByte(r);
      out[at + 1] = toByte(g);
      out[at + 2] = toByte(b);
    }
  }
  return out;
}
