// Writes a CIFAR-10-format archive for tests and offline demos: the real member names and record layout,
// a few hundred records, and classes a small network can learn (each class its own colour and stripes,
// plus noise). Also the building blocks the tests use to make broken archives.
//
// Usage: node dist/scripts/fixture.js OUT.tar.gz [--train-per-batch N] [--test N] [--seed S] [--shifted] [--json]
// (--shifted: test images are mirrored, shifted copies of the training patterns, for augmentation: see below)
// Prints `OUT N bytes md5 HEX`, or with --json one object {"path", "bytes", "md5"} for scripts:
// md5=$(node dist/scripts/fixture.js fx.tar.gz --json | node -p 'JSON.parse(require("fs").readFileSync(0)).md5')

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import {
  BATCHES_DIR, CIFAR100_FORMAT, DEFAULT_CLASS_NAMES, IMAGE_SIZE, LABEL_BYTES, NUM_CLASSES, PLANE_BYTES, RECORD_BYTES,
  TEST_FILE, TRAIN_FILES, META_FILE,
} from '../src/data/cifar.js';
import { mulberry32 } from '../src/random.js';

// One colour per class, far apart, so the classes are learnable in a few epochs.
const PALETTE: [number, number, number][] = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 0], [0, 0, 128],
];

/**
 * Class `label`'s pattern with noise, as planar R, G, B into `out` at `at`: its colour (one of ten), stripes across or
 * down, and a stripe width; classes 10 and up (CIFAR-100, image folders) turn the stripes and change their width.
 */
export function drawClass(label: number, rand: () => number, out: Uint8Array, at: number): void {
  const colour = PALETTE[label % NUM_CLASSES]!;
  const tens = Math.floor(label / NUM_CLASSES);
  const period = 2 + ((label + tens) % 5); // stripes whose width depends on the class
  const across = (label % NUM_CLASSES < 5) !== (tens % 2 === 1);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < IMAGE_SIZE; y++) {
      for (let x = 0; x < IMAGE_SIZE; x++) {
        const stripe = Math.floor((across ? x : y) / period) % 2 === 0 ? 1 : 0.55;
        const noise = (rand() - 0.5) * 60;
        const v = colour[c]! * stripe + noise;
        out[at + c * PLANE_BYTES + y * IMAGE_SIZE + x] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
}

/** `count` records in the CIFAR layout: label byte, then planar R, G, B. Label i % 10 for record i. */
export function makeRecords(count: number, seed: number, labelOf = (i: number) => i % NUM_CLASSES): Buffer {
  const rand = mulberry32(seed);
  const out = Buffer.alloc(count * RECORD_BYTES);
  for (let i = 0; i < count; i++) {
    const label = labelOf(i);
    out[i * RECORD_BYTES] = label;
    drawClass(label, rand, out, i * RECORD_BYTES + LABEL_BYTES);
  }
  return out;
}

/** CIFAR-100's 20 superclasses, as its coarse_label_names.txt names them. */
export const CIFAR100_COARSE = [
  'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables', 'household_electrical_devices',
  'household_furniture', 'insects', 'large_carnivores', 'large_man-made_outdoor_things', 'large_natural_outdoor_scenes',
  'large_omnivores_and_herbivores', 'medium_mammals', 'non-insect_invertebrates', 'people', 'reptiles', 'small_mammals',
  'trees', 'vehicles_1', 'vehicles_2',
];

/**
 * `count` records in CIFAR-100's layout: coarse label byte, fine label byte, planar R, G, B. Fine label i % 100 for
 * record i, its superclass fine / 5 (five fine classes a superclass, as in CIFAR-100).
 */
export function makeCifar100Records(count: number, seed: number): Buffer {
  const rand = mulberry32(seed);
  const size = 2 + IMAGE_SIZE * IMAGE_SIZE * 3;
  const out = Buffer.alloc(count * size);
  for (let i = 0; i < count; i++) {
    const fine = i % 100;
    out[i * size] = Math.floor(fine / 5);
    out[i * size + 1] = fine;
    drawClass(fine, rand, out, i * size + 2);
  }
  return out;
}

/** The members of a CIFAR-100-layout archive (cifar-100-binary/): `train` and `test` records, and the class names. */
export function cifar100Entries(opts: { train?: number; test?: number; seed?: number } = {}): TarEntry[] {
  const seed = opts.seed ?? 1;
  const fine = Array.from({ length: 100 }, (_, f) => `${CIFAR100_COARSE[Math.floor(f / 5)]!.split(/[_-]/)[0]}_${f % 5}`);
  return [
    { path: `${CIFAR100_FORMAT.dir}/`, type: '5' },
    { path: `${CIFAR100_FORMAT.dir}/train.bin`, data: makeCifar100Records(opts.train ?? 500, seed) },
    { path: `${CIFAR100_FORMAT.dir}/test.bin`, data: makeCifar100Records(opts.test ?? 200, seed + 100) },
    { path: `${CIFAR100_FORMAT.dir}/coarse_label_names.txt`, data: Buffer.from(CIFAR100_COARSE.join('\n') + '\n\n') },
    { path: `${CIFAR100_FORMAT.dir}/fine_label_names.txt`, data: Buffer.from(fine.join('\n') + '\n\n') },
  ];
}

/**
 * A folder of images for `--images`: `classes` class folders, `perClass` images each (and `test` each in
 * DIR/train and DIR/test when `test` > 0), each class's pattern drawn at 32x32 and enlarged to another size per
 * image (32 to 96 pixels a side, some not square), PNG and JPEG in turn.
 */
export function writeImageFolder(dir: string, opts: { classes?: string[]; perClass?: number; test?: number; seed?: number } = {}): string[] {
  const classes = opts.classes ?? ['cat', 'dog', 'ship'];
  const rand = mulberry32(opts.seed ?? 7);
  const planar = new Uint8Array(3 * PLANE_BYTES);
  const written: string[] = [];
  const splits: [string, number][] = opts.test ? [['train', opts.perClass ?? 12], ['test', opts.test]] : [['', opts.perClass ?? 12]];
  for (const [split, n] of splits) {
    classes.forEach((name, label) => {
      const folder = path.join(dir, split, name);
      mkdirSync(folder, { recursive: true });
      for (let i = 0; i < n; i++) {
        drawClass(label, rand, planar, 0);
        const w = 32 + 16 * (i % 5);
        const h = i % 3 === 0 ? w : 32 + 16 * ((i + 2) % 5);
        const rgba = Buffer.alloc(w * h * 4);
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const p = Math.floor((y * IMAGE_SIZE) / h) * IMAGE_SIZE + Math.floor((x * IMAGE_SIZE) / w);
            rgba.set([planar[p]!, planar[PLANE_BYTES + p]!, planar[2 * PLANE_BYTES + p]!, 255], (y * w + x) * 4);
          }
        }
        const file = path.join(folder, `${name}_${i}.${i % 2 === 0 ? 'png' : 'jpg'}`);
        if (i % 2 === 0) {
          const png = new PNG({ width: w, height: h });
          png.data = rgba;
          writeFileSync(file, PNG.sync.write(png));
        } else {
          writeFileSync(file, jpeg.encode({ data: rgba, width: w, height: h }, 95).data);
        }
        written.push(file);
      }
    });
  }
  return written;
}

/** The side of a class's glyph in the shifted fixture. */
const GLYPH = 12;

/**
 * `count` records of the shifted fixture (issue #21): each class a glyph of its own (an 8x8 pattern of a seeded
 * draw), all in the same grey on a dark ground, so that only the glyph's shape tells the classes apart. Training
 * images (`split` 'train') have it at one place, left of centre; test images are the mirror image of such an
 * image, shifted by up to 4 pixels each way: what a random crop of the padded image and a random flip make of a
 * training image. A network trained without augmentation has never seen a glyph there, nor mirrored.
 */
export function makeShiftedRecords(count: number, seed: number, split: 'train' | 'test'): Buffer {
  const glyphs = Array.from({ length: NUM_CLASSES }, (_, k) => {
    const r = mulberry32(0x9e3779b9 ^ (k * 7919));
    return Array.from({ length: GLYPH * GLYPH }, () => r() < 0.5);
  });
  const rand = mulberry32(seed);
  const out = Buffer.alloc(count * RECORD_BYTES);
  for (let i = 0; i < count; i++) {
    const label = i % NUM_CLASSES;
    const base = i * RECORD_BYTES;
    out[base] = label;
    const test = split === 'test';
    const dx = test ? Math.floor(rand() * 9) - 4 : 0;
    const dy = test ? Math.floor(rand() * 9) - 4 : 0;
    const x0 = 2;
    const y0 = 10;
    for (let y = 0; y < IMAGE_SIZE; y++) {
      for (let x = 0; x < IMAGE_SIZE; x++) {
        // Where this pixel comes from in the training image: undo the shift, then the mirror.
        const ty = y - dy;
        const tx = test ? IMAGE_SIZE - 1 - (x - dx) : x;
        const gy = ty - y0;
        const gx = tx - x0;
        const on = gy >= 0 && gy < GLYPH && gx >= 0 && gx < GLYPH && glyphs[label]![gy * GLYPH + gx]!;
        const noise = (rand() - 0.5) * 30;
        for (let c = 0; c < 3; c++) out[base + LABEL_BYTES + c * PLANE_BYTES + y * IMAGE_SIZE + x] = Math.max(0, Math.min(255, Math.round((on ? PALETTE[label]![c]! : 20) + noise)));
      }
    }
  }
  return out;
}

export interface TarEntry {
  path: string;
  data?: Buffer; // for files
  type?: '0' | '2' | '5'; // file, symlink, directory
  linkname?: string;
}

/** A minimal ustar writer, so tests can build archives that `tar` itself would refuse to create. */
export function makeTar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const h = Buffer.alloc(512);
    h.write(e.path, 0, 100, 'utf8');
    h.write('0000644\0', 100, 'ascii');
    h.write('0000000\0', 108, 'ascii');
    h.write('0000000\0', 116, 'ascii');
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
    h.write('00000000000\0', 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(e.type ?? '0', 156, 'ascii');
    if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
    h.write('ustar\0' + '00', 257, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export interface FixtureOptions {
  trainPerBatch?: number; // records in each of the five training batches
  test?: number; // records in the test batch
  seed?: number;
  /** The shifted fixture (makeShiftedRecords): test images are mirrored, shifted copies of the training patterns. */
  shifted?: boolean;
}

/** The members of a well-formed CIFAR-10 archive, as tar entries. */
export function cifarEntries(opts: FixtureOptions = {}): TarEntry[] {
  const trainPerBatch = opts.trainPerBatch ?? 60;
  const seed = opts.seed ?? 1;
  return [
    { path: `${BATCHES_DIR}/`, type: '5' },
    ...TRAIN_FILES.map((name, i) => ({ path: `${BATCHES_DIR}/${name}`, data: opts.shifted ? makeShiftedRecords(trainPerBatch, seed + i, 'train') : makeRecords(trainPerBatch, seed + i) })),
    { path: `${BATCHES_DIR}/${TEST_FILE}`, data: opts.shifted ? makeShiftedRecords(opts.test ?? 100, seed + 100, 'test') : makeRecords(opts.test ?? 100, seed + 100) },
    { path: `${BATCHES_DIR}/${META_FILE}`, data: Buffer.from(DEFAULT_CLASS_NAMES.join('\n') + '\n\n') },
    { path: `${BATCHES_DIR}/readme.html`, data: Buffer.from('<html>fixture</html>\n') },
  ];
}

export function gzipTar(entries: TarEntry[]): Buffer {
  return gzipSync(makeTar(entries));
}

export const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

function main(argv: string[]): void {
  const out = argv[0];
  if (!out || out.startsWith('-')) {
    process.stderr.write('usage: node dist/scripts/fixture.js OUT.tar.gz [--train-per-batch N] [--test N] [--seed S] [--shifted] [--json]\n' +
      '       node dist/scripts/fixture.js OUT.tar.gz --cifar100 [--train N] [--test N] [--seed S] [--json]\n' +
      '       node dist/scripts/fixture.js OUT_DIR --images [--classes a,b,c] [--per-class N] [--test N] [--seed S]\n');
    process.exitCode = 2;
    return;
  }
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  if (argv.includes('--images')) {
    const i = argv.indexOf('--classes');
    const files = writeImageFolder(out, { classes: i >= 0 ? argv[i + 1]!.split(',') : undefined, perClass: flag('--per-class'), test: flag('--test'), seed: flag('--seed') });
    process.stdout.write(`${out} ${files.length} images\n`);
    return;
  }
  const archive = gzipTar(argv.includes('--cifar100')
    ? cifar100Entries({ train: flag('--train'), test: flag('--test'), seed: flag('--seed') })
    : cifarEntries({ trainPerBatch: flag('--train-per-batch'), test: flag('--test'), seed: flag('--seed'), shifted: argv.includes('--shifted') }));
  writeFileSync(out, archive);
  const sum = md5(archive);
  process.stdout.write(argv.includes('--json') ? JSON.stringify({ path: out, bytes: archive.length, md5: sum }) + '\n' : `${out} ${archive.length} bytes md5 ${sum}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
