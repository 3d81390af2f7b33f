// `alexnet samples`: a contact sheet of decoded records, so a user sees at a glance that the data decoded
// right (colours in the right channels, images upright, labels matching). Each image is enlarged by
// nearest neighbour (`scale` x `scale` blocks of its exact pixels) and named by its class. Pure: split in,
// RGBA pixels out; the command encodes the PNG.

import { CHANNELS, IMAGE_BYTES, IMAGE_SIZE, type Split } from './data/cifar.js';
import { GLYPH_HEIGHT, drawText, textWidth } from './font.js';

export const COLUMNS = 10; // images per row when not grouped by class
const BACKGROUND: [number, number, number] = [255, 255, 255];
const INK: [number, number, number] = [0, 0, 0];

export interface SampleOptions {
  count: number; // images in all; with byClass, ceil(count / 10) per class
  byClass: boolean; // one row per class, its name at the left
  scale: number; // each source pixel becomes scale x scale pixels
}

export interface Tile {
  record: number; // index in the split
  x: number; // top-left corner of the enlarged image
  y: number;
}

export interface Label {
  text: string;
  x: number;
  y: number;
}

export interface SampleLayout {
  width: number;
  height: number;
  tiles: Tile[];
  labels: Label[];
  fontScale: number;
}

/**
 * Where every image and name goes. Grid: the first `count` records, ten a row, each name under its image.
 * By class: row k holds the first ceil(count/10) records of class k, its name at the left.
 */
export function sampleLayout(labels: ArrayLike<number>, classNames: string[], opts: SampleOptions): SampleLayout {
  const img = IMAGE_SIZE * opts.scale;
  const fontScale = Math.max(1, Math.floor(opts.scale / 2));
  const pad = Math.max(4, 2 * opts.scale);
  const textH = GLYPH_HEIGHT * fontScale;
  const longest = Math.max(...classNames.map((n) => textWidth(n, fontScale)));
  const tiles: Tile[] = [];
  const names: Label[] = [];

  if (!opts.byClass) {
    const n = Math.min(opts.count, labels.length);
    const cellW = Math.max(img, longest);
    const cellH = img + pad / 2 + textH;
    const cols = Math.min(COLUMNS, n);
    const rows = Math.ceil(n / cols);
    for (let i = 0; i < n; i++) {
      const cx = pad + (i % cols) * (cellW + pad);
      const cy = pad + Math.floor(i / cols) * (cellH + pad);
      tiles.push({ record: i, x: cx + Math.floor((cellW - img) / 2), y: cy });
      const text = classNames[labels[i]!] ?? String(labels[i]);
      names.push({ text, x: cx + Math.floor((cellW - textWidth(text, fontScale)) / 2), y: cy + img + pad / 2 });
    }
    return { width: pad + cols * (cellW + pad), height: pad + rows * (cellH + pad), tiles, labels: names, fontScale };
  }

  const classes = classNames.length;
  const perClass = Math.ceil(opts.count / classes);
  const left = pad + longest + pad;
  const taken = new Array<number>(classes).fill(0);
  for (let r = 0; r < labels.length; r++) {
    const k = labels[r]!;
    if (taken[k]! >= perClass) continue;
    tiles.push({ record: r, x: left + taken[k]! * (img + pad), y: pad + k * (img + pad) });
    taken[k]!++;
  }
  for (let k = 0; k < classes; k++) {
    const text = classNames[k] ?? String(k);
    names.push({ text, x: pad + longest - textWidth(text, fontScale), y: pad + k * (img + pad) + Math.floor((img - textH) / 2) });
  }
  return { width: left + perClass * (img + pad), height: pad + classes * (img + pad), tiles, labels: names, fontScale };
}

/** Paints the layout: white background, each record's pixels enlarged, names in black. */
export function renderSamples(split: Split, layout: SampleLayout, scale: number): { width: number; height: number; data: Uint8Array } {
  const { width, height } = layout;
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([...BACKGROUND, 255], i * 4);
  for (const t of layout.tiles) {
    const src = t.record * IMAGE_BYTES;
    for (let y = 0; y < IMAGE_SIZE * scale; y++) {
      const sy = Math.floor(y / scale);
      for (let x = 0; x < IMAGE_SIZE * scale; x++) {
        const s = src + (sy * IMAGE_SIZE + Math.floor(x / scale)) * CHANNELS;
        const o = ((t.y + y) * width + t.x + x) * 4;
        data[o] = split.images[s]!;
        data[o + 1] = split.images[s + 1]!;
        data[o + 2] = split.images[s + 2]!;
      }
    }
  }
  const image = { width, height, data };
  for (const l of layout.labels) drawText(image, l.text, l.x, l.y, layout.fontScale, INK);
  return image;
}
