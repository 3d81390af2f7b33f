// src/evaluate.ts: test-time augmentation's pieces, table-driven, and scoring from logits held to a runner's own.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { IMAGE_BYTES, type Split } from '../src/data/cifar.js';
import { evaluateSplit, fromLogits, mirrored } from '../src/evaluate.js';
import { createModel } from '../src/model.js';
import { lessonRecipe } from '../src/recipe.js';
import { useBackend } from './helpers.js';
import type { ActiveBackend } from '../src/backends/types.js';

let backend: ActiveBackend;
before(async () => {
  backend = await useBackend('cpu');
});

test('mirrored: each row of each image reversed pixel by pixel (channels kept together); twice is the identity', () => {
  const split: Split = { images: Uint8Array.from({ length: 2 * IMAGE_BYTES }, (_, i) => (i * 7) & 0xff), labels: Uint16Array.from([3, 1]), count: 2 };
  const m = mirrored(split);
  // [image, y, x, channel]: the mirror's pixel (y, x) is the original's (y, 31 - x).
  for (const [n, y, x, c] of [[0, 0, 0, 0], [0, 0, 31, 2], [0, 5, 10, 1], [1, 31, 0, 0], [1, 17, 16, 2]]) {
    assert.equal(m.images[n * IMAGE_BYTES + (y * 32 + x) * 3 + c], split.images[n * IMAGE_BYTES + (y * 32 + 31 - x) * 3 + c], `${n} ${y} ${x} ${c}`);
  }
  assert.deepEqual(mirrored(m).images, split.images);
  assert.equal(m.labels, split.labels);
});

test('fromLogits: the loss (with label smoothing), accuracy, predictions and ranks a runner gives, from its own logits', async () => {
  const split: Split = { images: Uint8Array.from({ length: 7 * IMAGE_BYTES }, (_, i) => (i * 31 + (i >> 7)) & 0xff), labels: Uint16Array.from([0, 1, 2, 3, 4, 5, 6]), count: 7 };
  for (const smoothing of [0, 0.1]) {
    const model = createModel({ seed: 2 });
    const runner = await backend.runner({ model, recipe: { ...lessonRecipe(1), labelSmoothing: smoothing }, settings: {} });
    try {
      const r = await runner.evaluate(split, 3); // batches of 3, 3 and 1
      assert.equal(r.logits.length, 7 * 10);
      const f = fromLogits(r.logits, split.labels, 10, 3, smoothing);
      assert.ok(Math.abs(f.loss - r.loss) <= 1e-6, `smoothing ${smoothing}: loss ${f.loss} vs ${r.loss}`);
      assert.ok(Math.abs(f.acc - r.acc) <= 1e-7);
      assert.deepEqual([...f.predictions], [...r.predictions]);
      assert.deepEqual([...f.ranks], [...r.ranks]);
      // Flip TTA: the mean of the two views' logits, scored the same way.
      const t = await evaluateSplit(runner, split, 3, { tta: 'flip', smoothing, classes: 10 });
      const m = await runner.evaluate(mirrored(split), 3);
      assert.deepEqual([...t.logits], [...r.logits.map((v, i) => (v + m.logits[i]!) / 2)]);
      assert.deepEqual(await evaluateSplit(runner, split, 3, { tta: 'none', smoothing, classes: 10 }), await runner.evaluate(split, 3));
    } finally {
      await runner.dispose();
      model.dispose();
    }
  }
});
