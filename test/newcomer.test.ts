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

  test('a checksum mismatch gives the size too, and its hint the way in for an archive of one\'s own (--no-verify)', async () => {
    const r = await runCli(['download', '--data-dir', tmpDir(), '--url', fixtureFile()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: checksum mismatch for .*: MD5 ${md5(archiveBytes)}, expected c32a1d4ab5d03f1284b67883e8d87530 \\(${archiveBytes.length.toLocaleString('en-US')} bytes; the official archive has 170,052,171 bytes\\)$`, 'm'));
    assert.match(r.stderr, /^hint: .*pass the right --md5, or --no-verify for an archive of your own$/m);
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

// The first hour's paper cuts (issue #25), each as a user meets it.
describe('paper cuts of the first hour', () => {
  test('a local archive prints no progress lines; "nothing downloaded" names the command that downloads again; the offline hint keeps --data-dir', async () => {
    const dataDir = tmpDir();
    const first = await runCli(['download', '--data-dir', dataDir, '--url', fixtureFile(), '--no-verify']);
    assert.equal(first.code, 0, first.stderr);
    assert.doesNotMatch(first.stderr, /download: \d+%/, 'a transfer under a second prints no progress lines');
    const t = await runCli(['train', '--epochs', '1', ...RECIPE, '--limit-train', '32', '--limit-test', '32', '--data-dir', dataDir, '--url', fixtureFile(), '--no-verify']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stderr, /nothing downloaded \(`.*alexnet download --force` fetches it again\)$/m);
    const offline = path.join(tmpDir(), 'data');
    const r = await runCli(['download', '--data-dir', offline, '--url', 'http://cifar.invalid/cifar-10-binary.tar.gz']);
    assert.match(r.stderr, new RegExp(`^hint: no network\\? .*alexnet download --data-dir ${offline} --url \\./cifar-10-binary\\.tar\\.gz\``, 'm'));
  });

  test('the bar shows the evaluation as a stage of its own, and the learning rate one way', async () => {
    const dataDir = tmpDir();
    const r = await runOnTerminal(['train', '--epochs', '1', '--batch-size', '16', '--eval-batch-size', '2', '--limit-train', '32', '--limit-test', '140', '--seed', '2', '--threads', '1', '--schedule', 'cosine', '--data-dir', dataDir, '--url', fixtureFile(), '--no-verify']);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /epoch 0 eval \[[^\]]*\] \d+\/35 batches/); // 70 test images in batches of 2
    assert.match(r.screen, /lr 1\.00e-1/);
  });

  test('the learning rate is in each --json epoch, metrics.jsonl and the report, with its significant digits', async () => {
    const save = path.join(tmpDir(), 'run');
    const t = await runCli(['train', '--epochs', '2', '--schedule', 'onecycle', '--json', '--save', save, ...RECIPE, '--limit-train', '32', '--limit-test', '32', '--data-dir', tmpDir(), '--url', fixtureFile(), '--no-verify', '-q']);
    assert.equal(t.code, 0, t.stderr);
    const epochs = t.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; lr?: number }).filter((o) => o.type === 'epoch');
    // One step an epoch: epoch 1's is the cycle's last, 0.1 / 25 / 1e4 (which 6 decimals would round to 0).
    assert.equal(epochs[1]!.lr, 4e-7);
    assert.ok(epochs[0]!.lr! > 4e-7 && epochs[0]!.lr! <= 0.1 && Number(epochs[0]!.lr!.toPrecision(6)) === epochs[0]!.lr, String(epochs[0]!.lr));
    const lines = fs.readFileSync(path.join(save, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { lr: number });
    assert.deepEqual(lines.map((m) => Number(m.lr.toPrecision(6))), epochs.map((e) => e.lr));
    const report = fs.readFileSync(path.join(save, 'report.html'), 'utf8');
    assert.match(report, /<section id="lr"><svg/);
    assert.match(report, /<td>4\.00e-7<\/td>/);
  });

  test('what PyTorch and Keras users type is pointed to this tool\'s flags', async () => {
    const cases: [string[], RegExp][] = [
      [['train', '--backend', 'gpu'], /^hint: for a GPU pass --gpu /m],
      [['train', '--device', 'cuda'], /^hint: the device is chosen with --gpu \(any GPU backend\) or --backend /m],
      [['train', '--learning-rate', '0.01'], /^hint: did you mean --lr\? run `[^`]+ train --help` for usage$/m],
      [['train', '--val-split', '0.1'], /^hint: did you mean --valid-split \(a count, or a fraction such as 0\.1\)\? run /m],
    ];
    for (const [args, hint] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2);
      assert.match(r.stderr, hint);
      assert.doesNotMatch(r.stderr, /--recipe/);
      assert.doesNotMatch(r.stderr, /\?;/);
    }
  });

  test('--valid-split 0.1 is a fraction, as Keras\'s validation_split; a whole number stays a count', async () => {
    const data = ['--data-dir', tmpDir(), '--url', fixtureFile(), '--no-verify'];
    const summary = async (split: string) => {
      const r = await runCli(['train', '--epochs', '1', '--valid-split', split, '--json', ...RECIPE, '--limit-train', '40', '--limit-test', '32', ...data, '-q']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { trainImages: number; validImages: number; recipe: { validSplit: number } };
    };
    const frac = await summary('0.1');
    assert.deepEqual([frac.trainImages, frac.validImages, frac.recipe.validSplit], [36, 4, 0.1]);
    const count = await summary('10');
    assert.deepEqual([count.trainImages, count.validImages], [30, 10]);
    const bad = await runCli(['train', '--valid-split', '1.5']);
    assert.match(bad.stderr, /^error: --valid-split must be a whole number of images, or a fraction in \(0, 1\), got "1\.5"$/m);
  });

  test('a diverged run suggests a rate below the one given, never above the default', async () => {
    const r = await runCli(['train', '--epochs', '1', '--lr', '1e3', ...RECIPE, '--limit-train', '64', '--limit-test', '32', '--data-dir', tmpDir(), '--url', fixtureFile(), '--no-verify', '-q']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: training diverged: /m);
    assert.match(r.stderr, /^hint: lower the learning rate, e\.g\. --lr 0\.1$/m);
  });
});

// The README's claims, checked: the fixture example's epoch lines, as the README prints them, come out of the
// command it gives (issue #25).
describe('the README', () => {
  test('the fixture example prints the epoch lines the README shows (but for the time)', async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const example = /```sh\n(node dist\/scripts\/fixture\.js \/tmp\/fx\.tar\.gz [^\n]+)\n(npx alexnet train [^\n]+)\n```\n\nprints, on wasm with 2 threads[\s\S]*?\n\n```\n((?:Epoch [^\n]+\n)+)```/.exec(readme);
    assert.ok(example, 'the README has the fixture example');
    const dir = tmpDir();
    const at = (s: string) => s.replace(/#.*$/, '').trim().replace(/\/tmp\/fx/g, path.join(dir, 'fx')).split(/\s+/);
    const fixture = at(example[1]!);
    const made = await run(process.execPath, [path.join(ROOT, fixture[1]!), ...fixture.slice(2)]);
    assert.equal(made.code, 0, made.stderr);
    const train = at(example[2]!).slice(2); // after `npx alexnet`
    const save = path.join(dir, 'fx-run');
    const r = await runCli([...train, '--backend', 'wasm', '--threads', '2', '--save', save]);
    assert.equal(r.code, 0, r.stderr);
    const noTime = (s: string) => s.trim().split('\n').map((l) => l.replace(/, Time \d\d:\d\d:\d\d$/, ''));
    assert.deepEqual(noTime(r.stdout), noTime(example[3]!));
    // `eval` of that run, as the README's eval section shows it: its first two lines.
    const evalSample = /`npx alexnet eval --model \/tmp\/fx-run`, prints[^\n]*\n[^`]*```\n(Test Loss[^\n]+\nCorrect[^\n]+)\n/.exec(readme);
    assert.ok(evalSample, 'the README has the eval sample');
    const e = await runCli(['eval', '--model', save, '--backend', 'wasm', '-q']);
    assert.equal(e.code, 0, e.stderr);
    assert.deepEqual(e.stdout.split('\n').slice(0, 2), evalSample[1]!.split('\n'));
  });
});
