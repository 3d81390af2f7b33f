// End to end: `bin/alexnet download` against generated archives served on 127.0.0.1.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { RECORD_BYTES } from '../src/data/cifar.js';
import { cifarEntries, gzipTar, makeRecords, makeTar, md5 } from '../scripts/fixture.js';
import { listFiles, runCli, sendWithRange, serve, tmpDir } from './helpers.js';

const archive = gzipTar(cifarEntries({ trainPerBatch: 30, test: 40 }));
const sum = md5(archive);
const BATCHES = ['batches.meta.txt', 'data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'manifest.json', 'test_batch.bin'].map((f) => `cifar-10-batches-bin/${f}`);

/** A whole archive whose one member is replaced. */
function archiveWith(name: string, data: Buffer): Buffer {
  return gzipTar(cifarEntries({ trainPerBatch: 30, test: 40 }).map((e) => (e.path.endsWith('/' + name) ? { ...e, data } : e)));
}

describe('alexnet download', () => {
  let server: Awaited<ReturnType<typeof serve>>;
  let body = archive;
  let mode: 'ok' | 'cut' | 'flaky' | '404' | 'noRange' = 'ok';

  before(async () => {
    server = await serve((req, res, n) => {
      if (mode === '404') return void res.writeHead(404).end('not found');
      if (mode === 'flaky' && n <= 2) return void res.writeHead(503).end('busy');
      if (mode === 'cut' && n === 1) {
        // Send the headers and a third of the body, then drop the connection.
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, Math.floor(body.length / 3)), () => setTimeout(() => res.destroy(), 50));
        return;
      }
      if (mode === 'noRange') {
        res.writeHead(200, { 'content-length': body.length });
        return void res.end(body);
      }
      sendWithRange(req, res, body);
    });
  });
  after(() => server.close());

  const reset = (m: typeof mode, b = archive) => {
    mode = m;
    body = b;
    server.requests.length = 0;
  };

  test('downloads, verifies and unpacks; a second run downloads nothing; --force does', async () => {
    reset('ok');
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', sum]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /CIFAR-10 ready in .*cifar-10-batches-bin \(190 records\)/);
    assert.deepEqual(listFiles(dir), BATCHES);
    assert.equal(fs.statSync(path.join(dir, 'cifar-10-batches-bin/data_batch_3.bin')).size, 30 * RECORD_BYTES);
    assert.equal(server.requests.length, 1);

    const again = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', sum]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already in .*nothing downloaded/);
    assert.equal(server.requests.length, 1, 'no second request');

    const forced = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', sum, '--force', '--quiet']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.stderr, '');
    assert.equal(server.requests.length, 2);
    assert.deepEqual(listFiles(dir), BATCHES);
  });

  test('the data dir comes from $ALEXNET_DATA_DIR, then $XDG_CACHE_HOME/alexnet', async () => {
    reset('ok');
    const a = tmpDir();
    const r = await runCli(['download', '--url', server.url, '--md5', sum, '-q'], { env: { ALEXNET_DATA_DIR: a } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(listFiles(a), BATCHES);
    const x = tmpDir();
    const env = { ...process.env, XDG_CACHE_HOME: x } as Record<string, string>;
    delete env.ALEXNET_DATA_DIR;
    const r2 = await runCli(['download', '--url', server.url, '--md5', sum, '-q'], { env });
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(listFiles(path.join(x, 'alexnet')), BATCHES);
  });

  test('a wrong checksum fails and leaves nothing behind', async () => {
    reset('ok');
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/cifar-10-binary\.tar\.gz: MD5 [0-9a-f]{32}, expected c32a1d4ab5d03f1284b67883e8d87530 \([\d,]+ bytes; the official archive has 170,052,171 bytes\)$/m);
    assert.match(r.stderr, /^hint: /m);
    assert.deepEqual(listFiles(dir), []);
  });

  test('a connection cut mid-transfer is resumed with a Range request', async () => {
    reset('cut');
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', sum]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /connection (lost|closed) at byte \d+/);
    assert.match(r.stderr, /resuming at byte \d+/);
    assert.equal(server.requests.length, 2);
    assert.match(String(server.requests[1]!.range), /^bytes=\d+-$/);
    assert.deepEqual(listFiles(dir), BATCHES);
  });

  test('a server that ignores Range gets a full restart', async () => {
    reset('noRange');
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, '.alexnet-download.tar.gz.part'), archive.subarray(0, 1000)); // a part an earlier run left
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', sum]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ignored the resume request/);
    assert.deepEqual(listFiles(dir), BATCHES);
  });

  test('503 twice, then success', async () => {
    reset('flaky');
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', sum]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stderr.match(/server answered 503/g) ?? []).length, 2);
    assert.equal(server.requests.length, 3);
    assert.deepEqual(listFiles(dir), BATCHES);
  });

  test('404 is an error at once, with a hint', async () => {
    reset('404');
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', sum]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: http:\/\/127\.0\.0\.1:\d+\/cifar-10-binary\.tar\.gz answered 404 Not Found$/m);
    assert.match(r.stderr, /^hint: check --url/m);
    assert.equal(server.requests.length, 1, 'a 4xx is not retried');
    assert.deepEqual(listFiles(dir), []);
  });

  test('a truncated archive is an error and leaves no batches', async () => {
    const cut = archive.subarray(0, Math.floor(archive.length / 2));
    reset('ok', cut);
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', md5(cut)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cannot unpack cifar-10-binary\.tar\.gz: the archive is truncated \([\d,]+ bytes; the official archive has 170,052,171 bytes\)$/m);
    assert.deepEqual(listFiles(dir), []);
  });

  test('an archive with a ../ entry is refused and nothing lands outside', async () => {
    const outside = tmpDir();
    const dir = path.join(outside, 'data');
    const evil = gzipTar([{ path: '../evil.bin', data: makeRecords(1, 1) }, ...cifarEntries({ trainPerBatch: 3, test: 3 })]);
    reset('ok', evil);
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', md5(evil)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: archive entry "\.\.\/evil\.bin" has a `\.\.` component; refusing the archive$/m);
    assert.deepEqual(listFiles(outside), []);
  });

  test('a symlink entry is refused', async () => {
    const dir = tmpDir();
    const evil = gzipTar([...cifarEntries({ trainPerBatch: 3, test: 3 }), { path: 'cifar-10-batches-bin/x', type: '2', linkname: '/etc/passwd' }]);
    reset('ok', evil);
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', md5(evil)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /has a link; refusing the archive/);
    assert.deepEqual(listFiles(dir), []);
  });

  test('a batch with label 10 is a clear error naming the file', async () => {
    const bad = makeRecords(5, 1, (i) => (i === 4 ? 10 : 0));
    const a = archiveWith('data_batch_2.bin', bad);
    reset('ok', a);
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', md5(a)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cifar-10-batches-bin\/data_batch_2\.bin: record 4 has label 10, outside 0\.\.9$/m);
    assert.deepEqual(listFiles(dir), []);
  });

  test('a batch whose length is not a multiple of 3,073 is a clear error naming the file', async () => {
    const a = archiveWith('test_batch.bin', makeRecords(5, 1).subarray(0, 5 * RECORD_BYTES - 7));
    reset('ok', a);
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', md5(a)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cifar-10-batches-bin\/test_batch\.bin: 15358 bytes is not a whole number of 3073-byte CIFAR-10 records$/m);
    assert.deepEqual(listFiles(dir), []);
  });

  test('an archive without the CIFAR-10 members is not CIFAR-10', async () => {
    const a = gzipSync(makeTar([{ path: 'other/file.txt', data: Buffer.from('hi') }]));
    reset('ok', a);
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--no-verify']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cifar-10-binary\.tar\.gz lacks cifar-10-batches-bin\/data_batch_1\.bin/m);
    assert.deepEqual(listFiles(dir), []);
  });

  test('a tarball copied by hand: a path or a file:// URL', async () => {
    const src = tmpDir();
    const file = path.join(src, 'cifar-10-binary.tar.gz');
    fs.writeFileSync(file, archive);
    for (const url of [file, `file://${file}`]) {
      const dir = tmpDir();
      const r = await runCli(['download', '--data-dir', dir, '--url', url, '--md5', sum]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(listFiles(dir), BATCHES);
    }
    assert.ok(fs.existsSync(file), 'the user\'s copy is left alone');
  });

  test('flag errors are one line with a hint and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['download', '--md5', 'abc'], /^error: --md5 must be 32 hex digits, got "abc"$/m],
      [['download', '--md5', sum, '--no-verify'], /^error: --md5 and --no-verify contradict each other$/m],
      [['download', '--url', 'ftp://x/y'], /^error: unsupported URL scheme in ftp:\/\/x\/y$/m],
      [['download', '--bogus'], /^error: unknown option '--bogus'$/m],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { env: { ALEXNET_DATA_DIR: tmpDir() } });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});
