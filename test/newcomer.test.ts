// A newcomer's first hour (issue #14): what the README's commands do when followed as written, and the
// surprises found on a fresh clone, each with a check: data that is not CIFAR-10 says so, `--resume DIR`
// alone finishes the interrupted run, `eval` agrees with the last epoch and labels its plain count, an offline
// download fails fast with the offline recipe, hints match their errors, and the help and JSON are clean.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { cifarEntries, gzipTar, md5 } from '../scripts/fixture.js';
import { BIN, ROOT, run, runCli, runOnTerminal, tmpDir } from './helpers.js';

const archiveBytes = gzipTar(cifarEntries({ trainPerBatch: 40, test: 70, seed: 3 }));
const RECIPE = ['--batch-size', '32', '--seed', '2', '--threads', '1'];

function fixtureFile(): string {
  const file = path.join(tmpDir(), 'fx.tar.gz');
  fs.writeFileSync(file, archiveBytes);
  return file;
}

describe('data that is not the official CIFAR-10', () => {
  test('every command that reads it says so on stderr; --json and state.json carry it', async () => {
    const file = fixtureFile();
    const dataDir = tmpDir();
    const save = path.join(tmpDir(), 'run');
    const data = ['--data-dir', dataDir, '--url', file, '--md5', md5(archiveBytes)];
    const notice = new RegExp(`^data: NOT the official CIFAR-10 \\(archive MD5 ${md5(archiveBytes)}, 270 records, from ${file.replace(/[.]/g, '\\.')}\\)$`, 'm');
    const d = await runCli(['download', ...data]);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, notice);
    const t = await runCli(['train', '--epochs', '1', '--json', '--save', save, ...RECIPE, ...data]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stderr, notice);
    const summary = JSON.parse(t.stdout.trim().split('\n').pop()!) as { data: { official: boolean; records: number; archiveMd5: string } };
    assert.deepEqual([summary.data.official, summary.data.records, summary.data.archiveMd5], [false, 270, md5(archiveBytes)]);
    const state = JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')) as { data: { official: boolean; dataDir: string } };
    assert.deepEqual([state.data.official, state.data.dataDir], [false, dataDir]);
    const s = await runCli(['samples', '--out', path.join(tmpDir(), 's.png'), ...data]);
    assert.match(s.stderr, notice);
  });
});

describe('--resume DIR alone, after Ctrl-C', () => {
  test('continues the interrupted run on its own data to its own target epochs', async () => {
    const file = fixtureFile();
    const dataDir = tmpDir();
    const save = path.join(tmpDir(), 'run');
    const data = ['--data-dir', dataDir, '--url', file, '--no-verify'];
    // Ctrl-C typed on a terminal once the first epoch's bar shows: mid-epoch, whatever the machine's speed.
    const cut = await runOnTerminal(['train', '--epochs', '3', '--save', save, '--batch-size', '4', '--limit-train', '32', '--limit-test', '20', '--seed', '2', '--threads', '1', ...data], { ctrlC: (screen) => /epoch 0 \[/.test(screen) });
    assert.equal(cut.code, 130, cut.screen);
    // The hint names the command as it was started (here `node .../bin/alexnet`: after `npm ci` no `alexnet` is on
    // PATH, so `alexnet train --resume` could not run as printed: issue #20).
    const hint = /hint: continue with `([^`]+ train --resume [^`]+)`/.exec(cut.screen);
    assert.ok(hint, cut.screen);
    assert.equal(hint[1], `node ${BIN} train --resume ${save}`);
    // The hint as given, typed into a shell, with an empty default data dir: nothing is downloaded, and the run
    // ends at epoch 3.
    const env = { ALEXNET_DATA_DIR: tmpDir(), HOME: tmpDir(), PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` };
    const resumed = await run('sh', ['-c', `${hint[1]} --json -q`], { env });
    assert.equal(resumed.code, 0, resumed.stderr);
    const epochs = resumed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; epoch: number }).filter((o) => o.type === 'epoch');
    assert.equal(epochs.at(-1)!.epoch, 2, 'three epochs, as the interrupted run asked');
    assert.deepEqual(fs.readdirSync(env.ALEXNET_DATA_DIR), [], 'the default data dir was not touched');
    // --epochs on resume sets a new total; other data is refused.
    const more = await runCli(['train', '--resume', save, '--epochs', '4', '-q']);
    assert.equal(more.code, 0, more.stderr);
    assert.match(more.stdout, /^Epoch 3\. /m);
    const otherFile = path.join(tmpDir(), 'other.tar.gz');
    fs.writeFileSync(otherFile, gzipTar(cifarEntries({ trainPerBatch: 41, test: 70, seed: 3 })));
    const other = await runCli(['train', '--resume', save, '--epochs', '5', '--data-dir', tmpDir(), '--url', otherFile, '--no-verify']);
    assert.equal(other.code, 2, other.stderr);
    assert.match(other.stderr, /^error: the data in .* is not what .* was trained on: 275 records where the run had 270$/m);
  });
});

describe('alexnet eval --model DIR', () => {
  test('equals the last epoch with no flags, and labels the plain count apart (a short last batch)', async () => {
    const file = fixtureFile();
    const save = path.join(tmpDir(), 'run');
    // 70 test images in batches of 32: 32, 32, 6. The mean of batch means is not the fraction correct.
    const t = await runCli(['train', '--epochs', '2', '--json', '--save', save, '--limit-test', '70', '--eval-batch-size', '32', ...RECIPE, '--data-dir', tmpDir(), '--url', file, '--no-verify', '-q']);
    assert.equal(t.code, 0, t.stderr);
    const last = t.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; validLoss: number; validAcc: number }).filter((o) => o.type === 'epoch').at(-1)!;
    const e = await runCli(['eval', '--model', save, '--json', '-q'], { env: { ALEXNET_DATA_DIR: tmpDir() } });
    assert.equal(e.code, 0, e.stderr);
    const r = JSON.parse(e.stdout) as { loss: number; accuracy: number; correct: number; images: number; fractionCorrect: number };
    assert.deepEqual([r.loss, r.accuracy, r.images], [last.validLoss, last.validAcc, 70]);
    assert.equal(r.fractionCorrect, Number((r.correct / 70).toFixed(6)));
    const text = await runCli(['eval', '--model', save, '-q']);
    assert.match(text.stdout, new RegExp(`^Test Loss: ${last.validLoss.toFixed(6)}, Test Acc: ${last.validAcc.toFixed(6)} \\(means over batches, as the training log's Valid Loss and Valid Acc\\)$`, 'm'));
    assert.match(text.stdout, new RegExp(`^Correct: ${r.correct} of 70 images \\(${(r.correct / 70).toFixed(6)}\\)$`, 'm'));
  });
});

describe('downloads that cannot work', () => {
  test('offline: a name that does not resolve fails after one short retry, with the offline recipe', async () => {
    const t0 = performance.now();
    const dataDir = path.join(tmpDir(), 'data');
    const r = await runCli(['download', '--data-dir', dataDir, '--url', 'http://cifar.invalid/cifar-10-binary.tar.gz'], { env: { ALEXNET_RETRY_DELAY_MS: '1000' } });
    assert.ok(!fs.existsSync(dataDir), 'the data dir it made is not left behind');
    assert.match(r.stderr, /retrying in 1\.0 s \(attempt 2 of 2\)/);
    assert.equal(r.code, 1);
    assert.ok(performance.now() - t0 < 10_000, 'no minute of backoff');
    assert.match(r.stderr, /^error: cannot download http:\/\/cifar\.invalid\/cifar-10-binary\.tar\.gz: cannot reach cifar\.invalid: ENOTFOUND \(the name does not resolve\)$/m);
    assert.match(r.stderr, /^hint: no network\? copy cifar-10-binary\.tar\.gz onto this machine .*--url \.\/cifar-10-binary\.tar\.gz/m);
    assert.doesNotMatch(r.stderr, /\.part/, 'no .part to resume from');
  });

  test('a truncated copy under --no-verify: says truncated, its size against the official, and to copy it again', async () => {
    const file = path.join(tmpDir(), 'cifar-10-binary.tar.gz');
    fs.writeFileSync(file, archiveBytes.subarray(0, Math.floor(archiveBytes.length / 2)));
    const r = await runCli(['download', '--data-dir', tmpDir(), '--url', file, '--no-verify']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: cannot unpack cifar-10-binary\\.tar\\.gz: the archive is truncated \\(${Math.floor(archiveBytes.length / 2).toLocaleString('en-US')} bytes; the official archive has 170,052,171 bytes\\)$`, 'm'));
    assert.match(r.stderr, /^hint: copy it again/m);
  });

  test('a checksum mismatch gives the size too', async () => {
    const r = await runCli(['download', '--data-dir', tmpDir(), '--url', fixtureFile()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: checksum mismatch for .*: MD5 ${md5(archiveBytes)}, expected c32a1d4ab5d03f1284b67883e8d87530 \\(${archiveBytes.length.toLocaleString('en-US')} bytes; the official archive has 170,052,171 bytes\\)$`, 'm'));
  });
});

describe('help and output polish', () => {
  test('defaults unquoted, --save names report.html, parser errors end in a hint: line, hints suggest the usual value', async () => {
    const h = await runCli(['train', '--help']);
    assert.match(h.stdout.replace(/\s+/g, ' '), /\(default: 20\)/);
    assert.doesNotMatch(h.stdout, /default: "/);
    assert.match(h.stdout.replace(/\s+/g, ' '), /--save <dir> after each epoch write a checkpoint .* and report\.html/);
    const bad = await runCli(['train', '--no-such-flag']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, `error: unknown option '--no-such-flag'\nhint: run \`node ${BIN} train --help\` for usage\n`);
    // commander's suggestion goes into the hint: one error line and one hint line, not three lines (issue #20).
    const typo = await runCli(['train', '--epoch', '3']);
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr, `error: unknown option '--epoch'\nhint: did you mean --epochs? run \`node ${BIN} train --help\` for usage\n`);
    const zero = await runCli(['train', '--epochs', '0']);
    assert.match(zero.stderr, /^hint: e\.g\. --epochs 20$/m);
  });

  test('--json floats carry no float32 noise: each has at most 6 decimals', async () => {
    const t = await runCli(['train', '--epochs', '1', '--json', ...RECIPE, '--data-dir', tmpDir(), '--url', fixtureFile(), '--no-verify', '-q']);
    assert.equal(t.code, 0, t.stderr);
    for (const m of t.stdout.matchAll(/:(-?\d+\.\d+)/g)) assert.ok(m[1]!.split('.')[1]!.length <= 6, m[0]);
  });

  test('the fixture script prints one JSON object for scripts', async () => {
    const out = path.join(tmpDir(), 'fx.tar.gz');
    const r = await run(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'fixture.js'), out, '--test', '20', '--train-per-batch', '2', '--json']);
    const j = JSON.parse(r.stdout) as { path: string; bytes: number; md5: string };
    assert.deepEqual(j, { path: out, bytes: fs.statSync(out).size, md5: md5(fs.readFileSync(out)) });
  });
});
