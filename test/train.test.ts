// End to end: `bin/alexnet train` (and `summary`) on the wasm backend, with a learnable generated archive
// served on 127.0.0.1. Each class has its own colour and stripes, so a few epochs separate them.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cifarEntries, gzipTar, md5 } from '../scripts/fixture.js';
import { BIN, run, runCli, sendWithRange, serve, tmpDir } from './helpers.js';

const archive = gzipTar(cifarEntries({ trainPerBatch: 100, test: 200, seed: 21 }));
const sum = md5(archive);
// The reference's log line, strictly: the pipelines that parse it depend on every character.
const EPOCH_LINE = /^Epoch (\d+)\. Train Loss: (\d+\.\d{6}), Train Acc: (\d\.\d{6}), Valid Loss: (\d+\.\d{6}), Valid Acc: (\d\.\d{6}), Time \d\d:\d\d:\d\d$/;
// Batch 32 gives 16 SGD steps per epoch on the 500 training images: enough to learn the fixture in 4 epochs.
// Threads pinned: how a batch is shared out changes float rounding, so the numbers depend on the count.
const RECIPE = ['--batch-size', '32', '--seed', '9', '--threads', '2'];

interface EpochJson { type: string; epoch: number; trainLoss: number; trainAcc: number; validLoss: number; validAcc: number; seconds: number; imagesPerSecond: number }
const parseJsonLines = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const metricsOf = (e: Record<string, unknown>) => [e.epoch, e.trainLoss, e.trainAcc, e.validLoss, e.validAcc];

describe('alexnet train', () => {
  let server: Awaited<ReturnType<typeof serve>>;
  let dataDir: string;
  let reference: Record<string, unknown>[]; // a 3-epoch --json run, to compare resumed runs against

  before(async () => {
    server = await serve((req, res) => sendWithRange(req, res, archive));
    dataDir = tmpDir();
  });
  after(() => server.close());

  const data = () => ['--data-dir', dataDir, '--url', server.url, '--md5', sum];

  test('downloads, then prints one reference-format line per epoch; the loss falls and accuracy is far above chance', async () => {
    const r = await runCli(['train', '--epochs', '4', ...RECIPE, ...data()]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    assert.equal(r.stdout, lines.join('\n') + '\n', 'nothing but epoch lines on stdout');
    assert.equal(lines.length, 4);
    const epochs = lines.map((l, i) => {
      const m = EPOCH_LINE.exec(l);
      assert.ok(m, `line ${i} is not in the reference format: ${l}`);
      assert.equal(Number(m[1]), i);
      return { trainLoss: Number(m[2]), validAcc: Number(m[5]) };
    });
    assert.ok(epochs[3]!.trainLoss < epochs[0]!.trainLoss * 0.7, `train loss ${epochs.map((e) => e.trainLoss)}`);
    assert.ok(epochs[3]!.validAcc > 0.6, `final valid accuracy ${epochs[3]!.validAcc}`);
    assert.match(r.stderr, /CIFAR-10 ready in /);
    assert.doesNotMatch(r.stderr, /batches \|/, 'no progress bar when stderr is not a terminal');
    // No GPU here: auto says why, and never takes a software WebGPU adapter (`npm test` offers lavapipe).
    assert.match(r.stderr, /^backend: wasm \(CPU; no GPU backend: native TensorFlow is not installed; WebGPU(:| has only) [^;]+; see README "GPU"\)$/m);
  });

  test('--json: one object per epoch with the documented fields, then a summary', async () => {
    const r = await runCli(['train', '--epochs', '3', '--json', ...RECIPE, ...data(), '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', '--quiet leaves stderr empty');
    const objs = parseJsonLines(r.stdout);
    assert.equal(objs.length, 4);
    for (const [i, e] of objs.slice(0, 3).entries()) {
      const ep = e as unknown as EpochJson;
      assert.equal(ep.type, 'epoch');
      assert.equal(ep.epoch, i);
      for (const k of ['trainLoss', 'trainAcc', 'validLoss', 'validAcc', 'seconds', 'imagesPerSecond'] as const) {
        assert.equal(typeof ep[k], 'number', k);
        assert.ok(Number.isFinite(ep[k]), k);
      }
    }
    assert.equal(objs[3]!.type, 'summary');
    assert.equal(objs[3]!.seed, 9);
    assert.equal(objs[3]!.backend, 'wasm');
    reference = objs.slice(0, 3);
  });

  test('--save for 2 epochs then --resume for 1 more ends with the same metrics as one 3-epoch run', async () => {
    const dir = path.join(tmpDir(), 'ckpt');
    const first = await runCli(['train', '--epochs', '2', '--json', '--save', dir, ...RECIPE, ...data(), '-q']);
    assert.equal(first.code, 0, first.stderr);
    const files = fs.readdirSync(dir).sort();
    assert.deepEqual(files.map((f) => f.replace(/^weights-[0-9a-f]{16}\.bin$/, 'weights-<sha>.bin')), ['metrics.jsonl', 'model.json', 'report.html', 'state.json', 'weights-<sha>.bin']);
    assert.equal(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 2);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).threads, 2, 'the thread count is saved, for the same rounding on resume');
    const second = await runCli(['train', '--epochs', '3', '--json', '--resume', dir, ...data(), '-q']);
    assert.equal(second.code, 0, second.stderr);
    const objs = parseJsonLines(second.stdout);
    assert.equal(objs.length, 2, 'one epoch and the summary');
    assert.deepEqual(metricsOf(objs[0]!), metricsOf(reference[2]!));
    // A flag that contradicts the checkpoint is an error, not silently ignored.
    const clash = await runCli(['train', '--epochs', '4', '--resume', dir, '--lr', '0.05', ...data()]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /^error: --lr 0\.05 differs from the checkpoint's 0\.1$/m);
  });

  test('SIGINT mid-epoch saves a checkpoint (exit 130) that --resume completes to the uninterrupted numbers', async () => {
    const dir = path.join(tmpDir(), 'ckpt');
    let sent = false;
    const r = await runCli(['train', '--epochs', '3', '--save', dir, ...RECIPE, ...data()], {
      onStderr: (chunk, child) => {
        if (!sent && chunk.includes('backend:')) {
          sent = true;
          setTimeout(() => child.kill('SIGINT'), 1500);
        }
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /^error: interrupted by SIGINT at epoch 0, batch \d+; checkpoint saved in /m);
    assert.match(r.stderr, /^hint: continue with `alexnet train --resume /m);
    assert.equal(r.stdout, '', 'interrupted inside epoch 0: no epoch line yet');
    const resumed = await runCli(['train', '--epochs', '3', '--json', '--resume', dir, ...data()]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming from .* at epoch 0, batch \d+/);
    const objs = parseJsonLines(resumed.stdout);
    assert.deepEqual(objs.slice(0, 3).map(metricsOf), reference.map(metricsOf));
  });

  test('on a terminal: a progress bar with rate, running loss and ETA, cleared before each epoch line', async () => {
    // `script` gives the command a pseudo-terminal, as a user's shell would.
    const cmd = [process.execPath, BIN, 'train', '--epochs', '1', ...RECIPE, ...data()].map((a) => `'${a}'`).join(' ');
    const r = await run('script', ['-qec', cmd, '/dev/null']);
    assert.equal(r.code, 0, r.stderr);
    const screen = r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
    assert.match(screen, /epoch 0 \[[=-]+\] \d+\/16 batches \| \d+ img\/s \| loss \d\.\d{4} \| ETA \d\d:\d\d:\d\d/);
    assert.doesNotMatch(screen, /batches [^E]*ETA (?!\d\d:\d\d:\d\d|-)/, 'every ETA is a time or -, never NaN or infinity');
    assert.doesNotMatch(screen, /NaN img\/s|Infinity img\/s/);
    assert.match(r.stdout, /\x1b\[2KEpoch 0\. Train Loss: /, 'the bar is cleared, then the epoch line');
  });

  test('a diverging learning rate stops with an error naming the epoch and batch', async () => {
    const r = await runCli(['train', '--epochs', '2', '--lr', '1000', ...RECIPE, ...data()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: training diverged: the loss is NaN or infinite at epoch 0, batch \d+$/m);
    assert.match(r.stderr, /^hint: lower the learning rate, e\.g\. --lr 100$/m);
    assert.equal(r.stdout, '');
  });

  test('bad flags and a bad --resume are one-line errors', async () => {
    const cases: [string[], number, RegExp][] = [
      [['train', '--epochs', '0'], 2, /^error: --epochs must be an integer >= 1, got "0"$/m],
      [['train', '--lr', 'fast'], 2, /^error: --lr must be a positive number, got "fast"$/m],
      [['train', '--threads', '9'], 2, /^error: --threads must be an integer in 1\.\.4, got "9"$/m],
      [['train', '--backend', 'tpu'], 2, /^error: option '--backend <name>' argument 'tpu' is invalid/m],
      [['train', '--resume', '/nonexistent/ckpt'], 1, /^error: cannot resume from \/nonexistent\/ckpt: no such directory$/m],
      [['train', '--backend', 'tensorflow', '--epochs', '1'], 1, /^error: --backend tensorflow: @tensorflow\/tfjs-node-gpu is not installed; @tensorflow\/tfjs-node is not installed$/m],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli([...args, ...data()]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const tf = await runCli(['summary', '--backend', 'tensorflow']);
    assert.match(tf.stderr, /^hint: install the native backend: `npm install @tensorflow\/tfjs-node-gpu@4\.22\.0`/m);
  });
});

describe('alexnet summary', () => {
  test('the table, and the same as JSON; auto picks wasm here and says why', async () => {
    const r = await runCli(['summary']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^conv1 +Conv2D +\[28, 28, 64\] +4,864$/m);
    assert.match(r.stdout, /^fc3 +Dense +\[10\] +1,930$/m);
    assert.match(r.stdout, /^total parameters: 576,778$/m);
    assert.match(r.stdout, /^output of a zero \[1, 32, 32, 3\] input: \[1, 10\]$/m);
    assert.match(r.stderr, /^backend: wasm \(CPU; no GPU backend: native TensorFlow is not installed; WebGPU(:| has only) [^;]+; see README "GPU"\)$/m);
    const j = await runCli(['summary', '--json', '-q']);
    const s = JSON.parse(j.stdout) as { totalParams: number; outputShape: number[]; layers: { name: string }[] };
    assert.equal(s.totalParams, 576778);
    assert.deepEqual(s.outputShape, [1, 10]);
    assert.deepEqual(s.layers.map((l) => l.name), ['conv1', 'max_pool1', 'conv2', 'max_pool2', 'flatten', 'fc1', 'fc2', 'fc3']);
  });
});
