// Pure pieces behind `predict`, `samples`, `eval` and the report, on hand-made pixels and counts.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { IMAGE_BYTES, IMAGE_SIZE } from '../src/data/cifar.js';
import { decodeImage, sniffImageType, toCifarImage, type RgbaImage } from '../src/data/image.js';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph, textWidth } from '../src/font.js';
import { renderSamples, sampleLayout } from '../src/samples.js';
import { confusionMatrix, perClassAccuracy, perClassPrecision } from '../src/evaluate.js';
import { ROOT, tileMismatch, upscale } from './helpers.js';

/** A deterministic 32x32 RGB image (HWC) with every pixel different from its neighbours. */
function pattern(seed: number): Uint8Array {
  return Uint8Array.from({ length: IMAGE_BYTES }, (_, i) => (i * 37 + seed * 101 + ((i * i) % 13)) % 256);
}

test('sniffImageType: by the first bytes, not the name', () => {
  const ascii = (t: string) => [...t].map((c) => c.charCodeAt(0));
  const cases: [number[], string | null][] = [
    [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0], 'png'],
    [[0xff, 0xd8, 0xff, 0xe0], 'jpeg'],
    [[0xff, 0xd8], null], // too short to be a JPEG
    [ascii('GIF89a'), 'gif'],
    [ascii('GIF8'), null],
    [[...ascii('RIFF'), 0, 0, 0, 0, ...ascii('WEBP')], 'webp'],
    [[...ascii('RIFF'), 0, 0, 0, 0, ...ascii('WAVE')], null],
    [[0x49, 0x49, 0x2a, 0x00], 'tiff'],
    [[0x4d, 0x4d, 0x00, 0x2a], 'tiff'],
    [[0, 0, 0, 0x1c, ...ascii('ftypavif')], 'avif'],
    [[0, 0, 0, 0x1c, ...ascii('ftypisom')], null], // an MP4
    [[], null],
  ];
  for (const [bytes, want] of cases) assert.equal(sniffImageType(Uint8Array.from(bytes)), want, bytes.join(','));
});

test('real photographs decode to the pixels libjpeg-turbo gives PIL, byte for byte (test/data/photos)', async () => {
  const dir = path.join(ROOT, 'test', 'data', 'photos');
  const pil = fs.readFileSync(path.join(dir, 'pil-rgb.bin'));
  const files = fs.readdirSync(dir).filter((c) => fs.statSync(path.join(dir, c)).isDirectory()).sort().flatMap((c) => ['0000', '1234', '4321'].map((n) => path.join(dir, c, `${n}.jpg`)));
  assert.equal(files.length * IMAGE_BYTES, pil.length);
  for (const [i, f] of files.entries()) {
    const img = await decodeImage(fs.readFileSync(f), f);
    assert.deepEqual([img.width, img.height], [32, 32]);
    const rgb = img.data;
    assert.equal(img.channels, 3, 'a JPEG has no alpha');
    assert.deepEqual(new Uint8Array(rgb), new Uint8Array(pil.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)), f);
    assert.deepEqual(toCifarImage(img), new Uint8Array(rgb), 'a 32x32 image passes the resize unchanged');
  }
});

test('WebP, AVIF, GIF and TIFF decode as PNG does (lossless ones to the same pixels)', async () => {
  const img = pattern(5);
  const raw = { raw: { width: 32, height: 32, channels: 3 as const } };
  const cases: [string, Buffer, number][] = [
    ['webp', await sharp(Buffer.from(img), raw).webp({ lossless: true }).toBuffer(), 0],
    ['tiff', await sharp(Buffer.from(img), raw).tiff({ compression: 'lzw' }).toBuffer(), 0],
    ['avif', await sharp(Buffer.from(img), raw).avif({ lossless: true }).toBuffer(), 40],
    ['gif', await sharp(Buffer.from(img), raw).gif({ colours: 256, dither: 0 }).toBuffer(), 80],
  ];
  for (const [type, bytes, tolerance] of cases) {
    assert.equal(sniffImageType(bytes), type);
    const back = toCifarImage(await decodeImage(bytes, `a.${type}`));
    const worst = back.reduce((m, v, i) => Math.max(m, Math.abs(v - img[i]!)), 0);
    assert.ok(worst <= tolerance, `${type}: at most ${tolerance} levels off, got ${worst}`);
  }
});

test('toCifarImage: an image enlarged k times (nearest) comes back to its exact pixels', () => {
  for (const k of [1, 2, 3, 5]) {
    const img = pattern(k);
    assert.deepEqual(toCifarImage(upscale(img, k)), img, `k=${k}`);
  }
});

test('toCifarImage: an RGB image (no alpha channel, as libvips gives a JPEG) is the opaque RGBA one', () => {
  for (const [k, pad] of [[1, 0], [3, 0], [2, 7]] as const) {
    const rgba = upscale(pattern(k), k, pad, 9);
    const rgb = Uint8Array.from({ length: rgba.width * rgba.height * 3 }, (_, i) => rgba.data[Math.floor(i / 3) * 4 + (i % 3)]!);
    assert.deepEqual(toCifarImage({ width: rgba.width, height: rgba.height, channels: 3, data: rgb }), toCifarImage(rgba), `k=${k} pad=${pad}`);
  }
});

test('toCifarImage: a tall image is centre-cropped (the bands above and below are dropped)', () => {
  const img = pattern(7);
  assert.deepEqual(toCifarImage(upscale(img, 2, 16, 0)), img);
  // A wide one too: transpose the roles by building it directly.
  const wide: RgbaImage = { width: 48, height: 32, data: new Uint8Array(48 * 32 * 4) };
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
    const s = (y * 32 + x) * 3;
    wide.data.set([img[s]!, img[s + 1]!, img[s + 2]!, 255], (y * 48 + x + 8) * 4);
  }
  assert.deepEqual(toCifarImage(wide), img);
});

test('toCifarImage: each output pixel is the mean of the area it covers; alpha is over white', () => {
  // 64x64: output pixel (0,0) covers source (0..1, 0..1) with values 0, 10, 20, 30 -> 15.
  const src: RgbaImage = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(255) };
  [[0, 0, 0], [1, 0, 10], [0, 1, 20], [1, 1, 30]].forEach(([x, y, v]) => src.data.set([v!, v!, v!, 255], (y! * 64 + x!) * 4));
  const out = toCifarImage(src);
  assert.deepEqual([...out.subarray(0, 3)], [15, 15, 15]);
  // 96x96: a 3:1 ratio, so output pixel 0 covers three source columns and rows.
  const three: RgbaImage = { width: 96, height: 96, data: new Uint8Array(96 * 96 * 4).fill(255) };
  for (let i = 0; i < 9; i++) three.data.set([i * 9, 0, 0, 255], ((Math.floor(i / 3)) * 96 + (i % 3)) * 4);
  assert.equal(toCifarImage(three)[0], 36); // mean of 0, 9, ..., 72
  // Fully transparent black is white; half-transparent black is mid-grey.
  const alpha: RgbaImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 4) };
  alpha.data.set([0, 0, 0, 128], 4);
  const a = toCifarImage(alpha);
  assert.deepEqual([...a.subarray(0, 6)], [255, 255, 255, 127, 127, 127]);
  // Smaller than 32x32: enlarged by nearest neighbour.
  const tiny: RgbaImage = { width: 2, height: 2, data: Uint8Array.from([10, 10, 10, 255, 20, 20, 20, 255, 30, 30, 30, 255, 40, 40, 40, 255]) };
  const t = toCifarImage(tiny);
  assert.deepEqual([t[0], t[15 * 3], t[16 * 3], t[(16 * 32) * 3], t[IMAGE_BYTES - 3]], [10, 10, 20, 30, 40]);
});

/**
 * toCifarImage as written first, the area-weighted mean with alpha over white for every pixel: the kernel takes
 * shortcuts (opaque pixels apart), which must give these bytes exactly.
 */
function boxMeanReference(img: RgbaImage): Uint8Array {
  const side = Math.min(img.width, img.height);
  const taps = (start: number) => Array.from({ length: IMAGE_SIZE }, (_, o) => {
    const scale = side / IMAGE_SIZE;
    const [lo, hi] = [o * scale, (o + 1) * scale];
    const t: { index: number; weight: number }[] = [];
    for (let i = Math.floor(lo); i < hi; i++) {
      const w = Math.min(hi, i + 1) - Math.max(lo, i);
      if (w > 1e-12) t.push({ index: start + i, weight: w / scale });
    }
    return t;
  });
  const xs = taps(Math.floor((img.width - side) / 2));
  const ys = taps(Math.floor((img.height - side) / 2));
  const out = new Uint8Array(IMAGE_BYTES);
  for (let oy = 0; oy < IMAGE_SIZE; oy++) {
    for (let ox = 0; ox < IMAGE_SIZE; ox++) {
      const acc = [0, 0, 0];
      for (const ty of ys[oy]!) {
        for (const tx of xs[ox]!) {
          const p = (ty.index * img.width + tx.index) * 4;
          const alpha = img.data[p + 3]! / 255;
          for (let c = 0; c < 3; c++) acc[c]! += ty.weight * tx.weight * (img.data[p + c]! * alpha + 255 * (1 - alpha));
        }
      }
      acc.forEach((v, c) => (out[(oy * IMAGE_SIZE + ox) * 3 + c] = Math.min(255, Math.max(0, Math.round(v)))));
    }
  }
  return out;
}

test('toCifarImage: the same bytes as the plain area-weighted mean, at sizes that do not divide and with any alpha', () => {
  const cases: [number, number, 'opaque' | 'mixed' | 'translucent'][] = [
    [37, 53, 'mixed'], [53, 37, 'opaque'], [100, 71, 'translucent'], [33, 33, 'mixed'], [5, 7, 'mixed'], [640, 480, 'opaque'], [301, 999, 'mixed'],
  ];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  for (const [w, h, alpha] of cases) {
    const img: RgbaImage = { width: w, height: h, data: Uint8Array.from({ length: w * h * 4 }, (_, i) => {
      if (i % 4 !== 3) return next();
      return alpha === 'opaque' ? 255 : alpha === 'translucent' ? next() : next() < 128 ? 255 : next();
    }) };
    assert.deepEqual(toCifarImage(img), boxMeanReference(img), `${w} x ${h}, ${alpha}`);
  }
});

test('decodeImage: PNG and JPEG decode; damaged or foreign bytes are one-line IMAGE errors', async () => {
  const img = pattern(3);
  const rgba = upscale(img, 1);
  const png = new PNG({ width: 32, height: 32 });
  png.data = Buffer.from(rgba.data);
  const pngBytes = PNG.sync.write(png);
  assert.deepEqual(toCifarImage(await decodeImage(pngBytes, 'a.png')), img);
  const jpg = jpeg.encode({ width: 32, height: 32, data: Buffer.from(rgba.data) }, 100).data;
  const back = toCifarImage(await decodeImage(jpg, 'a.jpg'));
  const meanError = back.reduce((s, v, i) => s + Math.abs(v - img[i]!), 0) / IMAGE_BYTES;
  assert.ok(meanError < 12, `JPEG at quality 100 stays close: mean error ${meanError}`);

  const hugePng = Buffer.from(pngBytes);
  hugePng.writeUInt32BE(20_000, 16);
  hugePng.writeUInt32BE(20_000, 20);
  const cases: [Uint8Array, RegExp][] = [
    [Buffer.from('hello'), /^cannot read x: not a PNG, JPEG, WebP, AVIF, GIF or TIFF file$/],
    [pngBytes.subarray(0, 60), /^cannot read x: the PNG data is damaged \(.+\)$/],
    [jpg.subarray(0, 40), /^cannot read x: the JPEG data is damaged \(.+\)$/],
    [hugePng, /^cannot read x: \d+ x \d+ pixels is too large: more than 100 megapixels$/],
  ];
  for (const [bytes, re] of cases) {
    await assert.rejects(decodeImage(bytes, 'x'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'IMAGE');
      assert.match(e.message, re);
      return true;
    });
  }
});

test('perClassPrecision: precision and F1 per class, as scikit-learn\'s classification_report', () => {
  // [true labels, predictions, classes, precision, F1] (sklearn.metrics.precision_recall_fscore_support, zero_division=nan)
  const cases: [number[], number[], number, number[], number[]][] = [
    [[0, 1, 2], [0, 1, 2], 3, [1, 1, 1], [1, 1, 1]],
    [[0, 0, 1, 1], [1, 0, 1, 1], 3, [1, 2 / 3, NaN], [2 / 3, 0.8, NaN]],
    [[0, 0, 0, 1], [1, 1, 1, 1], 2, [NaN, 0.25], [NaN, 0.4]],
    [[0, 1], [1, 0], 2, [0, 0], [0, 0]],
  ];
  for (const [labels, preds, k, precision, f1] of cases) {
    const got = perClassPrecision(confusionMatrix(labels, preds, k));
    got.forEach((g, c) => {
      for (const [v, want] of [[g.precision, precision[c]!], [g.f1, f1[c]!]] as const) {
        if (Number.isNaN(want)) assert.ok(Number.isNaN(v), `${labels} ${preds}: class ${c}`);
        else assert.ok(Math.abs(v - want) < 1e-12, `${labels} ${preds}: class ${c}: ${v} vs ${want}`);
      }
    });
  }
});

test('confusionMatrix and perClassAccuracy', () => {
  const cases: { labels: number[]; preds: number[]; k: number; want: number[][]; acc: number[] }[] = [
    { labels: [0, 1, 2], preds: [0, 1, 2], k: 3, want: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], acc: [1, 1, 1] },
    { labels: [0, 0, 1, 1], preds: [1, 0, 1, 1], k: 3, want: [[1, 1, 0], [0, 2, 0], [0, 0, 0]], acc: [0.5, 1, NaN] },
    { labels: [2, 2], preds: [0, 1], k: 3, want: [[0, 0, 0], [0, 0, 0], [1, 1, 0]], acc: [NaN, NaN, 0] },
  ];
  for (const c of cases) {
    const m = confusionMatrix(c.labels, c.preds, c.k);
    assert.deepEqual(m, c.want);
    assert.deepEqual(perClassAccuracy(m).map((p) => p.accuracy), c.acc);
  }
  assert.throws(() => confusionMatrix([0], [0, 1], 10), RangeError);
});

test('font: every glyph is 5x7; unknown characters draw as ?', () => {
  for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789 -_.?') {
    const g = glyph(ch);
    assert.equal(g.length, GLYPH_HEIGHT, ch);
    for (const row of g) assert.match(row, new RegExp(`^[.#]{${GLYPH_WIDTH}}$`), ch);
  }
  assert.deepEqual(glyph('é'), glyph('?'));
  assert.deepEqual(glyph('a'), glyph('A'));
  assert.equal(textWidth('cat', 2), (3 * 6 - 1) * 2);
  assert.equal(textWidth('', 2), 0);
});

test('sampleLayout: tiles and names inside the image, never overlapping; by class, each row its class', () => {
  const labels = Uint8Array.from({ length: 57 }, (_, i) => (i * 7) % 10);
  const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
  for (const [count, byClass, scale] of [[23, false, 1], [100, false, 4], [30, true, 3], [5, true, 2]] as const) {
    const l = sampleLayout(labels, names, { count, byClass, scale });
    const side = IMAGE_SIZE * scale;
    assert.equal(l.tiles.length, byClass ? Math.min(57, 10 * Math.ceil(count / 10)) : Math.min(count, 57));
    const boxes = [
      ...l.tiles.map((t) => ({ x: t.x, y: t.y, w: side, h: side })),
      ...l.labels.map((n) => ({ x: n.x, y: n.y, w: textWidth(n.text, l.fontScale), h: GLYPH_HEIGHT * l.fontScale })),
    ];
    for (const [i, a] of boxes.entries()) {
      assert.ok(a.x >= 0 && a.y >= 0 && a.x + a.w <= l.width && a.y + a.h <= l.height, `box ${i} inside`);
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        assert.ok(!overlap, `boxes overlap: ${JSON.stringify([a, b])}`);
      }
    }
    if (byClass) {
      // Row k holds class k's tiles, and class k's name sits beside them (its middle within their span).
      for (const t of l.tiles) {
        const name = l.labels[labels[t.record]!]!;
        const middle = name.y + (GLYPH_HEIGHT * l.fontScale) / 2;
        assert.ok(middle > t.y && middle < t.y + side && name.x < t.x, `record ${t.record} in its class's row`);
      }
    }
  }
});

test('renderSamples: each tile holds its record exactly, as scale x scale blocks', () => {
  const count = 12;
  const images = new Uint8Array(count * IMAGE_BYTES);
  for (let r = 0; r < count; r++) images.set(pattern(r), r * IMAGE_BYTES);
  const split = { images, labels: Uint16Array.from({ length: count }, (_, i) => i % 10), count };
  const scale = 3;
  const layout = sampleLayout(split.labels, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], { count, byClass: false, scale });
  const out = renderSamples(split, layout, scale);
  for (const t of layout.tiles) assert.equal(tileMismatch(out, t.x, t.y, pattern(t.record), scale), null, `record ${t.record}`);
});
