import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IMAGE_BYTES, RECORD_BYTES, decodeBatch, parseClassNames, validateBatch } from '../src/data/cifar.js';
import { unsafeEntry } from '../src/data/archive.js';
import { parseSource } from '../src/data/download.js';
import { AlexnetError } from '../src/errors.js';

/** A record whose pixel (c, y, x) holds a value that encodes where it came from. */
function handMadeRecord(label: number): Uint8Array {
  const rec = new Uint8Array(RECORD_BYTES);
  rec[0] = label;
  for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
    rec[1 + c * 1024 + y * 32 + x] = (c * 80 + y * 2 + x + label) % 256;
  }
  return rec;
}

test('decodeBatch moves every planar pixel to its HWC place', () => {
  const bytes = new Uint8Array(2 * RECORD_BYTES);
  bytes.set(handMadeRecord(3), 0);
  bytes.set(handMadeRecord(9), RECORD_BYTES);
  const { images, labels, count } = decodeBatch(bytes);
  assert.equal(count, 2);
  assert.deepEqual([...labels], [3, 9]);
  for (const [n, label] of [[0, 3], [1, 9]] as const) {
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) {
      const got = images[n * IMAGE_BYTES + (y * 32 + x) * 3 + c];
      assert.equal(got, (c * 80 + y * 2 + x + label) % 256, `image ${n} y=${y} x=${x} c=${c}`);
    }
  }
});

test('decodeBatch: the first bytes of a record, case by case', () => {
  // [planar offset written, value] -> [HWC offset expected]
  const cases: [string, number, number][] = [
    ['red (0,0)', 1, 0],
    ['green (0,0)', 1 + 1024, 1],
    ['blue (0,0)', 1 + 2048, 2],
    ['red (0,1)', 2, 3],
    ['red (1,0)', 1 + 32, 32 * 3],
    ['blue (31,31)', 1 + 2048 + 1023, 3071],
  ];
  for (const [name, src, dst] of cases) {
    const rec = new Uint8Array(RECORD_BYTES);
    rec[src] = 200;
    const { images } = decodeBatch(rec);
    assert.equal(images.indexOf(200), dst, name);
  }
});

test('validateBatch rejects bad lengths and labels, naming the file', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /x\.bin: 0 bytes is not a whole number/],
    ['short', new Uint8Array(RECORD_BYTES - 1), /x\.bin: 3072 bytes/],
    ['long', new Uint8Array(RECORD_BYTES + 1), /x\.bin: 3074 bytes/],
    ['label 10', (() => { const b = new Uint8Array(2 * RECORD_BYTES); b[RECORD_BYTES] = 10; return b; })(), /x\.bin: record 1 has label 10/],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(() => validateBatch(bytes, 'x.bin'), (e: unknown) => e instanceof AlexnetError && re.test(e.message), name);
  }
  assert.equal(validateBatch(new Uint8Array(3 * RECORD_BYTES), 'x.bin'), 3);
});

test('parseClassNames', () => {
  assert.equal(parseClassNames('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n').length, 10);
  assert.throws(() => parseClassNames('a\nb\n'), /expected 10 class names, found 2/);
});

test('unsafeEntry', () => {
  const cases: [string, string, string | null][] = [
    ['cifar-10-batches-bin/data_batch_1.bin', 'File', null],
    ['/etc/passwd', 'File', 'an absolute path'],
    ['../evil.bin', 'File', 'a `..` component'],
    ['cifar-10-batches-bin/../../evil', 'File', 'a `..` component'],
    ['C:\\evil', 'File', 'an absolute path'],
    ['cifar-10-batches-bin/link', 'SymbolicLink', 'a link'],
    ['cifar-10-batches-bin/hard', 'Link', 'a link'],
  ];
  for (const [p, type, want] of cases) assert.equal(unsafeEntry(p, type), want, p);
});

test('parseSource', () => {
  assert.equal(parseSource('https://x.org/a.tgz').kind, 'http');
  assert.equal(parseSource('http://127.0.0.1:8/a').kind, 'http');
  assert.deepEqual(parseSource('file:///tmp/a.tgz'), { kind: 'file', path: '/tmp/a.tgz' });
  assert.deepEqual(parseSource('./a.tgz'), { kind: 'file', path: './a.tgz' });
  assert.throws(() => parseSource('ftp://x/a'), /unsupported URL scheme/);
});
