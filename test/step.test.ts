// src/step.ts's pure pieces in TensorFlow.js ops, table-driven: the loss with label smoothing against PyTorch's,
// and labelRank, which `eval`'s top-5 counts.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crossEntropy, labelRank } from '../src/step.js';
import tf from '../src/tf.cjs';
import { ROOT, relErr, useBackend } from './helpers.js';

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

test('crossEntropy with label smoothing is PyTorch\'s CrossEntropyLoss(label_smoothing=e): its value and gradient to 1e-6', async () => {
  // test/data/label_smoothing_reference.json: scripts/torch_label_smoothing.py, PyTorch 1.13.
  const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'data', 'label_smoothing_reference.json'), 'utf8')) as { cases: { smoothing: number; classes: number; logits: number[]; labels: number[]; loss: number; grad: number[] }[] };
  assert.ok(ref.cases.some((c) => c.smoothing > 0) && ref.cases.some((c) => c.smoothing === 0));
  for (const c of ref.cases) {
    const logits = tf.tensor2d(c.logits, [c.labels.length, c.classes]);
    const labels = tf.tensor1d(c.labels, 'int32');
    const loss = crossEntropy(logits, labels, c.smoothing);
    const grad = tf.grad((l) => crossEntropy(l as tf.Tensor2D, labels, c.smoothing))(logits);
    const [value, dy] = [(await loss.data())[0]!, (await grad.data()) as Float32Array];
    assert.ok(Math.abs(value - c.loss) <= 1e-6 * Math.max(1, c.loss), `e ${c.smoothing}, ${c.classes} classes: loss ${value} vs PyTorch ${c.loss}`);
    assert.ok(relErr(dy, c.grad) <= 1e-6, `e ${c.smoothing}, ${c.classes} classes: gradient, relative error ${relErr(dy, c.grad)}`);
    tf.dispose([logits, labels, loss, grad]);
  }
});
