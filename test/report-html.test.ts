// report.html's facts (src/report-html.ts), table-driven: what the page says of the best epoch and its weights.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestText } from '../src/report-html.js';

test('the best epoch says where its weights are: best/, the saved model, or not kept (and how to keep them)', () => {
  const best = { epoch: 6, validAcc: 0.71264 };
  // [keepBest, epochs done, batch of the epoch under way, the text]
  const cases: [boolean, number, number, string][] = [
    [true, 9, 0, '6: valid accuracy 0.7126 (kept in best/)'],
    [false, 7, 0, '6: valid accuracy 0.7126 (the saved model)'],
    [false, 9, 0, '6: valid accuracy 0.7126 (its weights were not kept: the saved model is epoch 8; --keep-best keeps the best in best/)'],
    [false, 7, 12, '6: valid accuracy 0.7126 (its weights were not kept: the saved model is epoch 7 at batch 12; --keep-best keeps the best in best/)'],
  ];
  for (const [keepBest, epoch, batch, want] of cases) assert.equal(bestText({ best, keepBest, epoch, batch }), want, `${keepBest} ${epoch} ${batch}`);
});
