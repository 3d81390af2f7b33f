// report.html's facts (src/report-html.ts), table-driven: what the page says of the best epoch and its weights.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestText, dataSetText } from '../src/report-html.js';

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

test('the data set in words: official or not, the archive or the folder, the counts', () => {
  const base = { dataDir: '/d', url: 'https://x/cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530', records: 60_000 };
  const cases: [Parameters<typeof dataSetText>[0], string][] = [
    [{ ...base, archiveMd5: 'c32a1d4ab5d03f1284b67883e8d87530', official: true }, 'the official CIFAR-10: 60,000 records, archive MD5 c32a1d4ab5d03f1284b67883e8d87530, from https://x/cifar-10-binary.tar.gz; unpacked in /d'],
    [{ ...base, md5: null, archiveMd5: '8d49a1471ba2342b3e5db70a89c5d31a', records: 700, official: false }, 'NOT the official CIFAR-10: 700 records, archive MD5 8d49a1471ba2342b3e5db70a89c5d31a, from https://x/cifar-10-binary.tar.gz; unpacked in /d'],
    [{ ...base, archiveMd5: 'unknown', official: null, dataset: 'cifar100', labels: 'coarse' }, 'CIFAR-100 (coarse labels): 60,000 records, from https://x/cifar-10-binary.tar.gz; unpacked in /d'],
    [{ ...base, archiveMd5: 'ab'.repeat(32), records: 50_000, official: false, dataset: 'images', images: '/photos', skipBadImages: true }, 'the image folder /photos (50,000 records, unreadable files left out; listing SHA-256 abababababababab)'],
  ];
  for (const [data, want] of cases) assert.equal(dataSetText(data), want);
  assert.match(dataSetText({ ...base, url: 'https://me:secret@x/a.tgz', archiveMd5: 'unknown', official: null }), /from https:\/\/me:\*\*\*@x\/a\.tgz;/, 'no password');
});
