// Training: the run (src/run.ts) and its loop (src/train.ts) in-process on the wasm backend, with a learnable
// generated archive served on 127.0.0.1 (each class its own colour and stripes, so a few epochs separate them);
// then the command's contract end to end: what `alexnet train` prints, its --json summary, and its errors.
// test/invariant.test.ts holds the epoch lines equal across the ways of running the command.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { switchBackendForTests } from '../src/backends/index.js';
import { trainOptions } from '../src/commands/train.js';
import { seedRecipe, type Recipe } from '../src/recipe.js';
import { trainRun, type TrainRunOptions } from '../src/run.js';
import type { EpochMetrics } from '../src/train.js';
import { runCli, serveArchive, tmpDir } from './helpers.js';

const archive = gzipTar(cifarEntries({ trainPerBatch: 100, test: 200, seed: 21 }));
// The reference's log line, strictly: the pipelines that parse it depend on every character.
const EPOCH_LINE = /^Epoch (\d+)\. Train Loss: (\d+\.\d{6}), Train Acc: (\d\.\d{6}), Valid Loss: (\d+\.\d{6}), Valid Acc: (\d\.\d{6}), Time \d\d:\d\d:\d\d$/;
// Small: a step costs ~100 ms here. 192 images in batches of 16 learn the fixture in 4 epochs; the other tests
// need no learning, only the same numbers two ways, so 64 images (4 steps an epoch) do. Threads pinned: how a
// batch is shared out changes float rounding, so the numbers depend on the count.
const RECIPE: Recipe = { ...seedRecipe(9), batchSize: 16, epochs: 3 };
const SMALL = { limitTrain: 64, limitTest: 32 };
const CLI_RECIPE = ['--batch-size', '16', '--seed', '9', '--threads', '2', '--backend', 'wasm', '--limit-train', '64', '--limit-test', '32'];

const metricsOf = (h: EpochMetrics[]) => h.map((m) => [m.epoch, m.trainLoss, m.trainAcc, m.validLoss, m.validAcc]);

describe('a training run, in-process', () => {
  let served: Awaited<ReturnType<typeof serveArchive>>;
  before(async () => {
    await switchBackendForTests('wasm');
    served = await serveArchive(archive);
  });
  after(() => served.close());

  const options = (over: Partial<TrainRunOptions> = {}): TrainRunOptions => ({
    recipe: RECIPE,
    limits: SMALL,
    explicit: new Set(),
    data: { dataDir: served.dataDir, url: served.url, md5: null, force: false, explicit: true },
    backend: 'wasm',
    gpu: false,
    settings: { threads: 2 },
    save: null,
    resume: null,
    ...over,
  });

  test('the loss falls and accuracy is far above chance; the log says which backend and data', async () => {
    const log: string[] = [];
    const epochs: EpochMetrics[] = [];
    const r = await trainRun(options({ recipe: { ...RECIPE, epochs: 4 }, limits: { limitTrain: 192, limitTest: 100 } }), { log: (l) => log.push(l), onEpochEnd: (m) => epochs.push(m) });
    assert.equal(r.interrupted, false);
    assert.deepEqual(r.history, epochs, 'onEpochEnd saw every epoch, in order');
    assert.ok(epochs[3]!.trainLoss < epochs[0]!.trainLoss * 0.7, `train loss ${epochs.map((e) => e.trainLoss)}`);
    assert.ok(epochs[3]!.validAcc >= 0.5, `final valid accuracy ${epochs[3]!.validAcc} (chance: 0.1)`);
    assert.deepEqual(r.settings, { threads: 2 });
    assert.match(log[0]!, /^backend: wasm \(CPU; asked for with --backend wasm\)$/);
    assert.ok(log.some((l) => /^CIFAR-10 (ready|already) in /.test(l)), log.join('\n'));
    assert.ok(log.includes('threads: 2 (each batch is shared out among them; --threads 1 for one)'), log.join('\n'));
  });

  test('2 epochs saved, then resumed for 1 more, end with the numbers of one 3-epoch run', async () => {
    const whole = await trainRun(options());
    const save = path.join(tmpDir(), 'run');
    await trainRun(options({ recipe: { ...RECIPE, epochs: 2 }, save }));
    const files = fs.readdirSync(save).sort().map((f) => f.replace(/^weights-[0-9a-f]{16}\.bin$/, 'weights-<sha>.bin'));
    assert.deepEqual(files, ['metrics.jsonl', 'model.json', 'report.html', 'state.json', 'weights-<sha>.bin']);
    const state = JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')) as { settings: object; epoch: number };
    assert.deepEqual(state.settings, { threads: 2 }, 'the thread count is saved, for the same rounding on resume');
    const resumed = await trainRun(options({ resume: save, recipe: { ...RECIPE, epochs: 3 }, explicit: new Set(['epochs']), settings: {} }));
    assert.deepEqual(metricsOf(resumed.history), metricsOf(whole.history));
  });

  test('stopped mid-epoch at a batch boundary: a checkpoint that resumes to the uninterrupted numbers', async () => {
    const whole = await trainRun(options({ recipe: { ...RECIPE, epochs: 2 } }));
    const save = path.join(tmpDir(), 'run');
    const stop = new AbortController();
    const cut = await trainRun(options({ recipe: { ...RECIPE, epochs: 2 }, save }), {
      signal: stop.signal,
      onBatch: (p) => {
        if (p.epoch === 1 && p.batch === 2) stop.abort();
      },
    });
    assert.equal(cut.interrupted, true);
    assert.deepEqual([cut.state.epoch, cut.state.batch], [1, 2]);
    const resumed = await trainRun(options({ resume: save, recipe: RECIPE, settings: {} }));
    assert.deepEqual(metricsOf(resumed.history), metricsOf(whole.history));
  });

  test('a resume that contradicts the checkpoint is refused: a recipe flag, other data, an epoch already done', async () => {
    const save = path.join(tmpDir(), 'run');
    await trainRun(options({ recipe: { ...RECIPE, epochs: 1 }, save }));
    const resume = (over: Partial<TrainRunOptions>) => trainRun(options({ resume: save, ...over }));
    await assert.rejects(resume({ recipe: { ...RECIPE, lr: 0.05 }, explicit: new Set(['lr', 'epochs']) }), { code: 'USAGE', message: "--lr 0.05 differs from the checkpoint's 0.1" });
    await assert.rejects(resume({ recipe: { ...RECIPE, epochs: 1 }, explicit: new Set(['epochs']) }), { code: 'USAGE', message: 'the checkpoint has already done 1 epochs' });
    await assert.rejects(resume({ limits: { limitTrain: 100, limitTest: 32 }, explicit: new Set(['limitTrain']) }), { code: 'USAGE', message: "--limit-train 100 differs from the checkpoint's 64" });
  });

  test('a diverging learning rate stops with an error naming the epoch and batch', async () => {
    await assert.rejects(trainRun(options({ recipe: { ...RECIPE, lr: 1000, epochs: 2 } })), (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, 'DIVERGED');
      assert.match(e.message, /^training diverged: the loss is NaN or infinite at epoch 0, batch \d+$/);
      assert.equal(e.hint, 'lower the learning rate, e.g. --lr 100');
      return true;
    });
  });

  test('flags are checked once, into typed options; out-of-range values are usage errors naming the flag', () => {
    const explicit = (flags: Record<string, string>) => (k: string) => k in flags;
    const parse = (flags: Record<string, string>) => trainOptions(flags, explicit(flags));
    const o = parse({ epochs: '3', lr: '0.05', seed: '4', threads: '1' });
    assert.deepEqual(o.recipe, { epochs: 3, batchSize: 64, lr: 0.05, evalBatchSize: 128, seed: 4, init: 'pytorch' });
    assert.deepEqual([...o.explicit].sort(), ['epochs', 'lr', 'seed']);
    assert.deepEqual(o.settings, { threads: 1 });
    assert.ok(Number.isSafeInteger(parse({}).recipe.seed), 'no --seed: a random one');
    const cases: [Record<string, string>, RegExp, string][] = [
      [{ epochs: '0' }, /^--epochs must be an integer in 1\.\.1000000, got "0"$/, 'e.g. --epochs 20'],
      [{ lr: 'fast' }, /^--lr must be a positive number, got "fast"$/, 'e.g. --lr 0.1'],
      [{ threads: '9' }, /^--threads must be an integer in 1\.\.4, got "9"$/, 'e.g. --threads 2'],
      [{ init: 'he' }, /^--init must be one of pytorch, glorot, got "he"$/, 'e.g. --init pytorch'],
      [{ limitTrain: '-1' }, /^--limit-train must be an integer >= 1, got "-1"$/, 'e.g. --limit-train 5000'],
      [{ md5: 'abc' }, /^--md5 must be 32 hex digits, got "abc"$/, 'e.g. --md5 c32a1d4ab5d03f1284b67883e8d87530, or --no-verify'],
    ];
    for (const [flags, message, hint] of cases) assert.throws(() => parse(flags), (e: Error & { code?: string; hint?: string }) => e.code === 'USAGE' && message.test(e.message) && e.hint === hint, JSON.stringify(flags));
  });
});

describe('alexnet train, as a user runs it', () => {
  let served: Awaited<ReturnType<typeof serveArchive>>;
  before(async () => {
    served = await serveArchive(archive);
  });
  after(() => served.close());

  test('one reference-format line per epoch and nothing else on stdout; --json ends with the summary', async () => {
    const r = await runCli(['train', '--epochs', '2', ...CLI_RECIPE, ...served.flags]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    assert.equal(r.stdout, lines.join('\n') + '\n', 'nothing but epoch lines on stdout');
    lines.forEach((l, i) => assert.equal(EPOCH_LINE.exec(l)?.[1], String(i), `not the reference format: ${l}`));
    assert.doesNotMatch(r.stderr, /batches \|/, 'no progress bar when stderr is not a terminal');

    const j = await runCli(['train', '--epochs', '1', '--json', ...CLI_RECIPE, ...served.flags, '-q']);
    assert.equal(j.code, 0, j.stderr);
    assert.equal(j.stderr, '', '--quiet leaves stderr empty');
    const objs = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(Object.keys(objs[0]!), ['type', 'epoch', 'trainLoss', 'trainAcc', 'validLoss', 'validAcc', 'seconds', 'imagesPerSecond']);
    assert.deepEqual(Object.keys(objs[1]!), ['type', 'backend', 'gpu', 'threads', 'epochs', 'seed', 'batchSize', 'lr', 'trainImages', 'testImages', 'data', 'finalValidAcc', 'bestValidAcc', 'seconds', 'savedTo']);
    assert.deepEqual([objs[1]!.type, objs[1]!.backend, objs[1]!.threads, objs[1]!.seed, objs[1]!.trainImages, objs[1]!.savedTo], ['summary', 'wasm', 2, 9, 64, null]);
  });

  test('bad flags and a bad --resume are one-line errors with a hint, and no stack', async () => {
    const cases: [string[], number, RegExp][] = [
      [['train', '--epochs', '0'], 2, /^error: --epochs must be an integer in 1\.\.1000000, got "0"\nhint: e\.g\. --epochs 20\n$/],
      [['train', '--backend', 'tpu'], 2, /^error: option '--backend <name>' argument 'tpu' is invalid/],
      [['train', '--resume', '/nonexistent/ckpt'], 1, /^error: cannot resume from \/nonexistent\/ckpt: no such directory\nhint: /],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli([...args, ...served.flags]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, '');
    }
  });
});
