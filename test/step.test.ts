// src/step.ts's pure pieces in TensorFlow.js ops, table-driven: labelRank, which `eval`'s top-5 counts.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { labelRank } from '../src/step.js';
import tf from '../src/tf.cjs';
import { useBackend } from './helpers.js';

before(async () => {
  await useBackend('cpu');
});

test('labelRank: how many classes outrank the label (a larger logit, or an equal one before it: argMax\'s and topk\'s order)', async () => {
  // [logits of one row, label, rank]
  const cases: [number[], number, number][] = [
    [[3, 1, 2], 0, 0],
    [[3, 1, 2], 2, 1],
    [[3, 1, 2], 1, 2],
    [[2, 2, 2], 0, 0], // ties: the first maximum is argMax's pick
    [[2, 2, 2], 2, 2],
    [[-1, 5, 5, 0], 2, 1],
    [[0, 0, 9, 0, 0, 0], 5, 5], // in no top-5: four zeros before it and the 9
    [[0, 0, 9, 0, 0, 0], 4, 4],
  ];
  for (const [row, label, want] of cases) {
    const r = labelRank(tf.tensor2d([row]), tf.tensor1d([label], 'int32'));
    assert.deepEqual(Array.from(await r.data()), [want], `${row} label ${label}`);
    r.dispose();
  }
  // A batch: each row its own.
  const batch = labelRank(tf.tensor2d([[1, 2], [2, 1], [5, 5]]), tf.tensor1d([0, 0, 1], 'int32'));
  assert.deepEqual(Array.from(await batch.data()), [1, 0, 1]);
  batch.dispose();
});
