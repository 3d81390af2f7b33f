// The batch stage (src/batches.ts): the epoch's order and the normalisation as pure functions, and every runner's
// batch, wherever it is built (the host, wasm's worker shards, webgpu's GPU gather), equal to the host's bit for
// bit (issue #19).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NORMALISE, epochBatches, epochPermutation, fillBatch, inOrder, type Batch } from '../src/batches.js';
import { switchBackendForTests, type BackendName } from '../src/backends/index.js';
import type { Split } from '../src/data/cifar.js';
import { createModel } from '../src/model.js';
import { seedRecipe } from '../src/recipe.js';

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
  const split: Split = { images: Uint8Array.from({ length: 3 * 3072 }, (_, i) => Math.floor(i / 3072) * 100 + ((i % 3072) % 7)), labels: Uint8Array.from([4, 5, 6]), count: 3 };
  const x = new Float32Array(2 * 3072);
  const y = new Int32Array(2);
  fillBatch(split, { indices: Uint32Array.from([2, 0]) }, x, y);
  assert.deepEqual([...y], [6, 4]);
  assert.deepEqual([x[0], x[1], x[3072], x[3073]], [NORMALISE[200], NORMALISE[201], NORMALISE[0], NORMALISE[1]]);
});

describe('every runner builds the host\'s batch, bit for bit', () => {
  // 7 images (7 x 3,072 bytes: an odd number of rows), a batch that repeats one and leaves others out.
  const split: Split = { images: Uint8Array.from({ length: 7 * 3072 }, (_, i) => (i * 7 + (i >> 11)) & 0xff), labels: Uint8Array.from({ length: 7 }, (_, i) => (i * 3) % 10), count: 7 };
  const batches: Batch[] = [{ indices: Uint32Array.from([6, 0, 3, 3, 5]) }, inOrder(0, 7)];
  const runners: { name: string; backend: BackendName; threads?: number }[] = [
    { name: 'cpu', backend: 'cpu' },
    { name: 'wasm, one thread', backend: 'wasm', threads: 1 },
    { name: 'wasm, 3 threads (shards)', backend: 'wasm', threads: 3 },
    { name: 'webgpu (gathered on the GPU)', backend: 'webgpu' },
  ];
  for (const r of runners) {
    test(r.name, async (t) => {
      const backend = await switchBackendForTests(r.backend).catch((e: Error) => e);
      if (backend instanceof Error) {
        // Only webgpu may be missing (no adapter); CI's adapter makes its absence a failure.
        if (r.backend !== 'webgpu' || process.env.ALEXNET_REQUIRE_WEBGPU === '1') throw backend;
        return t.skip(`no adapter: ${backend.message}`);
      }
      const model = createModel({ seed: 1 });
      const runner = await backend.runner({ model, recipe: seedRecipe(1), settings: { threads: r.threads ?? 1 } });
      try {
        for (const b of batches) {
          const got = await runner.inspectBatch(split, b);
          const x = new Float32Array(b.indices.length * 3072);
          const y = new Int32Array(b.indices.length);
          fillBatch(split, b, x, y);
          assert.deepEqual(got.x, x, 'images');
          assert.deepEqual(got.y, y, 'labels');
        }
      } finally {
        await runner.dispose();
        model.dispose();
      }
    });
  }
});
