// The batch stage (src/batches.ts): the epoch's order, the augmentation's draws and transforms, the held-out split
// and the normalisation as pure functions, and every runner's batch, augmented or not, wherever it is built (the
// host, wasm's worker shards, webgpu's GPU gathers), equal to the host's bit for bit (issues #19, #21).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NORMALISE, augmentDraws, epochBatches, epochPermutation, fillBatch, holdOut, inOrder, type Batch } from '../src/batches.js';
import type { Settings } from '../src/backends/types.js';
import type { BackendName } from '../src/backends/index.js';
import { useBackend } from './helpers.js';
import type { Split } from '../src/data/cifar.js';
import { createModel } from '../src/model.js';
import { lessonRecipe } from '../src/recipe.js';

test('epochPermutation: a permutation, pinned, the same for the same (seed, epoch), another for another epoch or seed', () => {
  // [n, seed, epoch] -> the first eight positions. Pinned: checkpoints resume on this order (and the README's
  // fixture lines come from it), so it must never change.
  const cases: [number, number, number, number[]][] = [
    [8, 1, 0, [2, 3, 0, 6, 7, 1, 5, 4]],
    [10, 0, 0, [8, 6, 7, 9, 5, 1, 3, 2]],
    [500, 9, 3, [212, 399, 246, 336, 125, 146, 312, 308]],
  ];
  for (const [n, seed, epoch, first] of cases) {
    const p = epochPermutation(n, seed, epoch);
    assert.deepEqual([...p.slice(0, 8)], first);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), 'every position once');
    assert.notDeepEqual([...epochPermutation(n, seed, epoch + 1)], [...p], 'another epoch, another order');
    assert.notDeepEqual([...epochPermutation(n, seed + 1, epoch)], [...p], 'another seed, another order');
  }
});

test('epochBatches: batches of the batch size in the epoch\'s order, the last one shorter', () => {
  // [count, batchSize] -> batch sizes
  const cases: [number, number, number[]][] = [
    [10, 4, [4, 4, 2]],
    [8, 4, [4, 4]],
    [3, 64, [3]],
  ];
  for (const [count, size, sizes] of cases) {
    const { batches, batch } = epochBatches(count, size, 7, 2);
    assert.equal(batches, sizes.length);
    const all = Array.from({ length: batches }, (_, b) => batch(b).indices);
    assert.deepEqual(all.map((i) => i.length), sizes);
    assert.deepEqual(all.flatMap((i) => [...i]), [...epochPermutation(count, 7, 2)]);
  }
});

test('NORMALISE is the seed\'s (x/255 - 0.5)/0.5 in float32, for every pixel value', () => {
  for (let v = 0; v < 256; v++) assert.equal(NORMALISE[v], Math.fround((v / 255 - 0.5) / 0.5), `pixel ${v}`);
  assert.deepEqual([NORMALISE[0], NORMALISE[255]], [-1, 1]);
});

test('fillBatch: each image normalised in place of its index, with its label', () => {
  const split: Split = { images: Uint8Array.from({ length: 3 * 3072 }, (_, i) => Math.floor(i / 3072) * 100 + ((i % 3072) % 7)), labels: Uint16Array.from([4, 5, 6]), count: 3 };
  const x = new Float32Array(2 * 3072);
  const y = new Int32Array(2);
  fillBatch(split, { indices: Uint32Array.from([2, 0]) }, x, y);
  assert.deepEqual([...y], [6, 4]);
  assert.deepEqual([x[0], x[1], x[3072], x[3073]], [NORMALISE[200], NORMALISE[201], NORMALISE[0], NORMALISE[1]]);
});

test('augmentDraws: pinned, per (seed, epoch, batch, image), a flip about half the time, crops over all 81 offsets', () => {
  // Pinned: a resumed run repeats these draws, so they must never change. [flip, x offset, y offset] per image.
  assert.deepEqual([...augmentDraws('crop,flip', 1, 0, 0, 3)], [1, 6, 3, 1, 2, 6, 1, 4, 1]);
  assert.deepEqual([...augmentDraws('flip', 1, 0, 0, 3)], [1, 4, 4, 1, 4, 4, 1, 4, 4], 'flip alone: centred crops');
  assert.deepEqual([...augmentDraws('crop', 1, 0, 0, 3)], [0, 6, 3, 0, 2, 6, 0, 4, 1], 'crop alone: no flips');
  // The draws of an image do not depend on the batch's size, and change with each of seed, epoch and batch.
  assert.deepEqual([...augmentDraws('crop,flip', 1, 0, 0, 64).subarray(0, 9)], [...augmentDraws('crop,flip', 1, 0, 0, 3)]);
  for (const other of [augmentDraws('crop,flip', 2, 0, 0, 3), augmentDraws('crop,flip', 1, 1, 0, 3), augmentDraws('crop,flip', 1, 0, 1, 3)]) {
    assert.notDeepEqual([...other], [...augmentDraws('crop,flip', 1, 0, 0, 3)]);
  }
  const many = augmentDraws('crop,flip', 5, 3, 2, 20_000);
  let flips = 0;
  const offsets = new Set<number>();
  for (let i = 0; i < 20_000; i++) {
    flips += many[3 * i]!;
    offsets.add(many[3 * i + 1]! * 9 + many[3 * i + 2]!);
  }
  assert.ok(Math.abs(flips / 20_000 - 0.5) < 0.02, `flips ${flips}`);
  assert.equal(offsets.size, 81);
  assert.equal(epochBatches(10, 4, 7, 2).batch(0).augment, undefined, 'none: no draws, the seed\'s batches');
  assert.deepEqual([...epochBatches(10, 4, 7, 2, 'crop,flip').batch(1).augment!], [...augmentDraws('crop,flip', 7, 2, 1, 4)]);
});

test('fillBatch augments: a flip mirrors each row, a crop shifts the image with zeros coming in', () => {
  // One image whose pixel (y, x, c) is y * 7 + x + c, so each pixel is told apart by where it came from.
  const images = new Uint8Array(3072);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) images[(y * 32 + x) * 3 + c] = y * 7 + x + c;
  const split: Split = { images, labels: Uint16Array.from([3]), count: 1 };
  const at = (out: Float32Array, y: number, x: number, c: number) => out[(y * 32 + x) * 3 + c];
  const src = (y: number, x: number, c: number) => NORMALISE[y * 7 + x + c];
  const fill = (draws: number[]) => {
    const out = new Float32Array(3072);
    fillBatch(split, { indices: Uint32Array.from([0]), augment: Uint8Array.from(draws) }, out, new Int32Array(1));
    return out;
  };
  const identity = fill([0, 4, 4]);
  const plain = new Float32Array(3072);
  fillBatch(split, { indices: Uint32Array.from([0]) }, plain, new Int32Array(1));
  assert.deepEqual(identity, plain, 'no flip and a centred crop: the image as it is');
  const flipped = fill([1, 4, 4]);
  for (const [y, x, c] of [[0, 0, 0], [5, 31, 2], [17, 9, 1]] as const) assert.equal(at(flipped, y, x, c), src(y, 31 - x, c), `flip (${y}, ${x}, ${c})`);
  // Crop at x offset 8, y offset 0: the image moves 4 pixels left and 4 down; zeros (the normalised padding) come in
  // at the right and at the top.
  const cropped = fill([0, 8, 0]);
  assert.equal(at(cropped, 10, 0, 0), src(6, 4, 0));
  assert.equal(at(cropped, 31, 27, 2), src(27, 31, 2));
  for (const [y, x] of [[0, 0], [3, 20], [10, 28], [31, 31]] as const) assert.equal(at(cropped, y, x, 1), 0, `padding at (${y}, ${x})`);
  // Both, as torchvision's RandomCrop then RandomHorizontalFlip: the flip of the crop.
  const both = fill([1, 8, 0]);
  assert.equal(at(both, 10, 31, 0), src(6, 4, 0));
  assert.equal(at(both, 10, 0, 0), 0);
});

test('holdOut: a seeded choice of N images validates, the rest train, both in file order, none lost or repeated', () => {
  const split: Split = { images: Uint8Array.from({ length: 10 * 3072 }, (_, i) => Math.floor(i / 3072)), labels: Uint16Array.from({ length: 10 }, (_, i) => i), count: 10 };
  const { train, valid } = holdOut(split, 3, 4);
  assert.deepEqual([train.count, valid.count], [7, 3]);
  assert.deepEqual([...train.labels, ...valid.labels].sort((a, b) => a - b), [...split.labels]);
  assert.deepEqual([...valid.labels], [...valid.labels].sort((a, b) => a - b), 'file order');
  valid.labels.forEach((l, i) => assert.equal(valid.images[i * 3072], l, 'each image with its label'));
  assert.deepEqual(holdOut(split, 3, 4).valid.labels, valid.labels, 'the same seed, the same choice');
  assert.deepEqual([...valid.labels], [3, 6, 7], 'pinned: a resumed run holds out the same images');
});

describe('every runner builds the host\'s batch, bit for bit', () => {
  // 7 images (7 x 3,072 bytes: an odd number of rows), a batch that repeats one and leaves others out.
  const split: Split = { images: Uint8Array.from({ length: 7 * 3072 }, (_, i) => (i * 7 + (i >> 11)) & 0xff), labels: Uint16Array.from({ length: 7 }, (_, i) => (i * 3) % 10), count: 7 };
  // Augmented ones too: every flip and crop extreme, and an epoch's own draws.
  const batches: Batch[] = [
    { indices: Uint32Array.from([6, 0, 3, 3, 5]) },
    inOrder(0, 7),
    { indices: Uint32Array.from([6, 0, 3, 3, 5]), augment: Uint8Array.from([1, 0, 0, 0, 8, 8, 1, 8, 0, 0, 4, 4, 1, 3, 7]) },
    epochBatches(7, 5, 3, 1, 'crop,flip').batch(0),
    epochBatches(7, 5, 3, 1, 'flip').batch(1),
  ];
  const runners: { name: string; backend: BackendName; settings?: Settings }[] = [
    { name: 'cpu', backend: 'cpu' },
    { name: 'wasm, one thread', backend: 'wasm', settings: { threads: 1 } },
    { name: 'wasm, 3 threads (shards)', backend: 'wasm', settings: { threads: 3 } },
    { name: 'webgpu, compiled (gathered on the GPU)', backend: 'webgpu', settings: { webgpuRunner: 'compiled' } },
    { name: 'webgpu, op by op (gathered on the GPU)', backend: 'webgpu', settings: { webgpuRunner: 'ops' } },
  ];
  for (const r of runners) {
    test(r.name, async (t) => {
      const backend = await useBackend(r.backend).catch((e: Error) => e);
      if (backend instanceof Error) {
        // Only webgpu may be missing (no adapter); CI's adapter makes its absence a failure.
        if (r.backend !== 'webgpu' || process.env.ALEXNET_REQUIRE_WEBGPU === '1') throw backend;
        return t.skip(`no adapter: ${backend.message}`);
      }
      const model = createModel({ seed: 1 });
      const runner = await backend.runner({ model, recipe: lessonRecipe(1), settings: { threads: 1, ...r.settings } });
      try {
        for (const b of batches) {
          const got = await runner.probe.batch(split, b);
          const x = new Float32Array(b.indices.length * 3072);
          const y = new Int32Array(b.indices.length);
          fillBatch(split, b, x, y);
          assert.deepEqual(got.x, x, `images${b.augment ? ', augmented' : ''}`);
          assert.deepEqual(got.y, y, 'labels');
        }
      } finally {
        await runner.dispose();
        model.dispose();
      }
    });
  }
});
