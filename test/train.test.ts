// Training: the run (src/run.ts) and its loop (src/train.ts) in-process on the wasm backend, with a learnable
// generated archive served on 127.0.0.1 (each class its own colour and stripes, so a few epochs separate them);
// then the command's contract end to end: what `alexnet train` prints, its --json summary, and its errors.
// test/invariant.test.ts holds the epoch lines equal across the ways of running the command.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { trainOptions } from '../src/commands/train.js';
import { presetRecipe, lessonRecipe, type Recipe } from '../src/recipe.js';
import { runTraining, type TrainingOptions } from '../src/run.js';
import type { EpochMetrics } from '../src/train.js';
import { runCli, runOptions, serveArchive, tmpDir, useBackend } from './helpers.js';

const archive = gzipTar(cifarEntries({ trainPerBatch: 100, test: 200, seed: 21 }));
// The reference's log line, strictly: the pipelines that parse it depend on every character.
const EPOCH_LINE = /^Epoch (\d+)\. Train Loss: (\d+\.\d{6}), Train Acc: (\d\.\d{6}), Valid Loss: (\d+\.\d{6}), Valid Acc: (\d\.\d{6}), Time \d\d:\d\d:\d\d$/;
// Small: a step costs ~100 ms here. 192 images in batches of 16 learn the fixture in 4 epochs; the other tests
// need no learning, only the same numbers two ways, so 64 images (4 steps an epoch) do. Threads pinned: how a
// batch is shared out changes float rounding, so the numbers depend on the count.
const RECIPE: Recipe = { ...lessonRecipe(9), batchSize: 16, epochs: 3 };
const SMALL = { limitTrain: 64, limitTest: 32 };
const CLI_RECIPE = ['--batch-size', '16', '--seed', '9', '--threads', '2', '--backend', 'wasm', '--limit-train', '64', '--limit-test', '32'];

const metricsOf = (h: EpochMetrics[]) => h.map((m) => [m.epoch, m.trainLoss, m.trainAcc, m.validLoss, m.validAcc]);

describe('a training run, in-process', () => {
  let served: Awaited<ReturnType<typeof serveArchive>>;
  before(async () => {
    await useBackend('wasm');
    served = await serveArchive(archive);
  });
  after(() => served.close());

  const options = (over: Partial<TrainingOptions> = {}) => runOptions(served, { recipe: RECIPE, limits: SMALL, threads: 2 }, over);

  test('the loss falls and accuracy is far above chance; the log says which backend and data', async () => {
    const log: string[] = [];
    const epochs: EpochMetrics[] = [];
    const r = await runTraining(options({ recipe: { ...RECIPE, epochs: 4 }, limits: { limitTrain: 192, limitTest: 100 } }), { log: (l) => log.push(l), onEpochEnd: (m) => epochs.push(m) });
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
    const whole = await runTraining(options());
    const save = path.join(tmpDir(), 'run');
    await runTraining(options({ recipe: { ...RECIPE, epochs: 2 }, save }));
    const files = fs.readdirSync(save).sort().map((f) => f.replace(/^weights-[0-9a-f]{16}\.bin$/, 'weights-<sha>.bin'));
    assert.deepEqual(files, ['metrics.jsonl', 'model.json', 'report.html', 'state.json', 'weights-<sha>.bin']);
    const state = JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')) as { settings: object; epoch: number };
    assert.deepEqual(state.settings, { threads: 2 }, 'the thread count is saved, for the same rounding on resume');
    const resumed = await runTraining(options({ resume: save, recipe: { ...RECIPE, epochs: 3 }, explicit: new Set(['epochs']), settings: {} }));
    assert.deepEqual(metricsOf(resumed.history), metricsOf(whole.history));
  });

  test('stopped mid-epoch at a batch boundary: a checkpoint that resumes to the uninterrupted numbers', async () => {
    const whole = await runTraining(options({ recipe: { ...RECIPE, epochs: 2 } }));
    const save = path.join(tmpDir(), 'run');
    const stop = new AbortController();
    const cut = await runTraining(options({ recipe: { ...RECIPE, epochs: 2 }, save }), {
      signal: stop.signal,
      onBatch: (p) => {
        if (p.epoch === 1 && p.batch === 2) stop.abort();
      },
    });
    assert.equal(cut.interrupted, true);
    assert.deepEqual([cut.state.epoch, cut.state.batch], [1, 2]);
    const resumed = await runTraining(options({ resume: save, recipe: RECIPE, settings: {} }));
    assert.deepEqual(metricsOf(resumed.history), metricsOf(whole.history));
  });

  test('every option on (momentum, Nesterov, weight decay, label smoothing, onecycle with warm-up, crop and flip, a held-out split, the best kept): stopped mid-epoch and resumed, the numbers of one run', async () => {
    const all: Recipe = { ...RECIPE, lr: 0.02, momentum: 0.9, nesterov: true, weightDecay: 5e-4, labelSmoothing: 0.1, schedule: 'onecycle', warmupEpochs: 1, augment: 'crop,flip', validSplit: 16 };
    const limits = { limitTrain: 80, limitTest: 32 }; // 64 to train on (4 steps an epoch), 16 to validate on
    const whole = await runTraining(options({ recipe: all, limits }));
    assert.deepEqual([whole.trainImages, whole.validImages, whole.testImages], [64, 16, 32]);
    assert.ok(whole.test && Number.isFinite(whole.test.loss), 'the test split, evaluated once at the end');
    const save = path.join(tmpDir(), 'run');
    const stop = new AbortController();
    const cut = await runTraining(options({ recipe: all, limits, save, keepBest: true }), {
      signal: stop.signal,
      onBatch: (p) => {
        if (p.epoch === 1 && p.batch === 2) stop.abort();
      },
    });
    assert.deepEqual([cut.interrupted, cut.test], [true, null]);
    const files = fs.readdirSync(save).sort().map((f) => f.replace(/-[0-9a-f]{16}\.bin$/, '-<sha>.bin'));
    assert.deepEqual(files, ['best', 'metrics.jsonl', 'model.json', 'momentum-<sha>.bin', 'report.html', 'state.json', 'weights-<sha>.bin'], 'the momentum saved with the weights');
    const resumed = await runTraining(options({ resume: save, recipe: all, limits, settings: {} }));
    assert.deepEqual(metricsOf(resumed.history), metricsOf(whole.history));
    assert.deepEqual(resumed.test, whole.test);
    // The best epoch (by validation accuracy, the first of equals) is in DIR/best, a checkpoint of its own.
    const accs = whole.history.map((m) => m.validAcc);
    const bestEpoch = accs.indexOf(Math.max(...accs));
    const best = JSON.parse(fs.readFileSync(path.join(save, 'best', 'state.json'), 'utf8')) as { epoch: number; best: { epoch: number } };
    assert.deepEqual([best.epoch, best.best.epoch, resumed.state.best?.epoch], [bestEpoch + 1, bestEpoch, bestEpoch]);
  });

  test('--patience N stops after N epochs without a better validation accuracy, as Keras\'s EarlyStopping; a resume knows how long it has waited', async () => {
    // A rate too small to move the weights: every epoch's accuracy equals the first's, which stays the best.
    const still: Recipe = { ...RECIPE, lr: 1e-12, epochs: 10, patience: 2 };
    const whole = await runTraining(options({ recipe: still, keepBest: false }));
    assert.equal(whole.stoppedEarly, true);
    assert.deepEqual(whole.history.map((m) => m.epoch), [0, 1, 2], 'epoch 0 the best, then 2 epochs without a better one');
    assert.deepEqual(whole.state.best?.epoch, 0);
    // Saved after epoch 1 (one epoch waited), resumed with the total: it stops after epoch 2 too, the same numbers.
    const save = path.join(tmpDir(), 'run');
    const first = await runTraining(options({ recipe: { ...still, epochs: 2 }, save }));
    assert.equal(first.stoppedEarly, false);
    const resumed = await runTraining(options({ resume: save, recipe: still, explicit: new Set(['epochs']), settings: {} }));
    assert.equal(resumed.stoppedEarly, true);
    assert.deepEqual(metricsOf(resumed.history), metricsOf(whole.history));
    // A run that has stopped is finished: its resume says so.
    await assert.rejects(runTraining(options({ resume: save, recipe: still, explicit: new Set(['epochs']), settings: {} })), { code: 'USAGE', message: 'the run stopped early after epoch 2: no better validation accuracy in 2 epochs (the best: epoch 0, ' + whole.state.best!.validAcc.toFixed(4) + ')' });
    // Without --patience every epoch runs.
    assert.equal((await runTraining(options({ recipe: { ...still, epochs: 4, patience: 0 } }))).history.length, 4);
  });

  test('augmentation generalises: on the shifted fixture, crop and flip beat no augmentation on the test split by a clear margin', async () => {
    // Test images are mirrored, shifted copies of the training patterns (scripts/fixture.ts, makeShiftedRecords):
    // without augmentation the network has never seen a pattern there, and scores about chance (0.1).
    // The tuned recipe, small: 200 images in batches of 8 for 4 epochs (~6 s a run here).
    const shifted = await serveArchive(gzipTar(cifarEntries({ trainPerBatch: 40, test: 60, seed: 2, shifted: true })));
    try {
      const acc = async (augment: Recipe['augment']) => {
        const r = await runTraining(options({
          recipe: { ...presetRecipe('tuned', 5), epochs: 4, batchSize: 8, augment },
          limits: { limitTrain: null, limitTest: null },
          data: { dataDir: shifted.dataDir, url: shifted.url, md5: null, force: false, explicit: true },
        }));
        return r.history.at(-1)!.validAcc;
      };
      const [without, withAug] = [await acc('none'), await acc('crop,flip')];
      assert.ok(withAug - without >= 0.4, `test accuracy ${withAug} with crop,flip against ${without} without`);
    } finally {
      await shifted.close();
    }
  });

  test('a resume that contradicts the checkpoint is refused: a recipe flag, other data, an epoch already done', async () => {
    const save = path.join(tmpDir(), 'run');
    await runTraining(options({ recipe: { ...RECIPE, epochs: 1 }, save }));
    const resume = (over: Partial<TrainingOptions>) => runTraining(options({ resume: save, ...over }));
    await assert.rejects(resume({ recipe: { ...RECIPE, lr: 0.05 }, explicit: new Set(['lr', 'epochs']) }), { code: 'USAGE', message: "--lr 0.05 differs from the checkpoint's 0.1" });
    await assert.rejects(resume({ recipe: { ...RECIPE, epochs: 1 }, explicit: new Set(['epochs']) }), { code: 'USAGE', message: 'the checkpoint has already done 1 epoch' });
    await assert.rejects(resume({ limits: { limitTrain: 100, limitTest: 32 }, explicit: new Set(['limitTrain']) }), { code: 'USAGE', message: "--limit-train 100 differs from the checkpoint's 64" });
  });

  test('a diverging learning rate stops with an error naming the epoch and batch', async () => {
    await assert.rejects(runTraining(options({ recipe: { ...RECIPE, lr: 1000, epochs: 2 } })), (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, 'DIVERGED');
      assert.match(e.message, /^training diverged: the loss is NaN or infinite at epoch 0, batch \d+$/);
      assert.equal(e.hint, 'lower the learning rate, e.g. --lr 0.1');
      return true;
    });
  });

  test('flags are checked once, into typed options; out-of-range values are usage errors naming the flag', () => {
    const explicit = (flags: Record<string, string>) => (k: string) => k in flags;
    const parse = (flags: Record<string, string>) => trainOptions(flags, explicit(flags));
    const o = parse({ epochs: '3', lr: '0.05', seed: '4', threads: '1' });
    assert.deepEqual(o.recipe, { ...lessonRecipe(4), epochs: 3, lr: 0.05 });
    assert.deepEqual([...o.explicit].sort(), ['epochs', 'lr', 'seed']);
    // A named recipe sets its fields, flags override them, and only the flags given are explicit.
    const tuned = trainOptions({ recipe: 'tuned', momentum: '0.8', nesterov: false as never, seed: '4' }, (k) => ['recipe', 'momentum', 'nesterov', 'seed'].includes(k));
    assert.deepEqual(tuned.recipe, { ...lessonRecipe(4), preset: 'tuned', lr: 0.02, momentum: 0.8, nesterov: false, weightDecay: 5e-4, schedule: 'onecycle', augment: 'crop,flip' });
    assert.deepEqual([...tuned.explicit].sort(), ['momentum', 'nesterov', 'preset', 'seed']);
    assert.deepEqual(o.settings, { threads: 1 });
    assert.ok(Number.isSafeInteger(parse({}).recipe.seed), 'no --seed: a random one');
    const cases: [Record<string, string>, RegExp, string][] = [
      [{ epochs: '0' }, /^--epochs must be an integer in 1\.\.1000000, got "0"$/, 'e.g. --epochs 20'],
      [{ lr: 'fast' }, /^--lr must be a positive number, got "fast"$/, 'e.g. --lr 0.1'],
      [{ threads: '9' }, /^--threads must be an integer in 1\.\.4, got "9"$/, 'e.g. --threads 2'],
      [{ init: 'he' }, /^--init must be one of pytorch, glorot, got "he"$/, 'e.g. --init pytorch'],
      [{ recipe: 'fast' }, /^--recipe must be one of seed, tuned, got "fast"$/, 'e.g. --recipe tuned'],
      [{ momentum: '1' }, /^--momentum must be a number in \[0, 1\), got "1"$/, 'e.g. --momentum 0.9'],
      [{ weightDecay: '-1e-4' }, /^--weight-decay must be a number in \[0, 1\), got "-1e-4"$/, 'e.g. --weight-decay 5e-4'],
      [{ schedule: 'linear' }, /^--schedule must be one of constant, step, cosine, onecycle, got "linear"$/, 'e.g. --schedule cosine'],
      [{ augment: 'rotate' }, /^--augment must be one of none, flip, crop, crop,flip, got "rotate"$/, 'e.g. --augment crop,flip'],
      [{ validSplit: '-5' }, /^--valid-split must be a whole number of images, or a fraction in \(0, 1\), got "-5"$/, 'e.g. --valid-split 5000'],
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
    assert.deepEqual(Object.keys(objs[0]!), ['type', 'epoch', 'trainLoss', 'trainAcc', 'validLoss', 'validAcc', 'seconds', 'imagesPerSecond', 'lr']);
    assert.deepEqual(Object.keys(objs[1]!), ['type', 'backend', 'gpu', 'threads', 'epochs', 'seed', 'batchSize', 'lr', 'recipe', 'trainImages', 'validImages', 'testImages', 'data', 'finalValidAcc', 'bestValidAcc', 'bestEpoch', 'stoppedEarly', 'test', 'bestSavedTo', 'seconds', 'savedTo']);
    assert.deepEqual(objs[1]!.recipe, { ...lessonRecipe(9), epochs: 1, batchSize: 16 }, 'the full recipe');
    assert.deepEqual([objs[1]!.type, objs[1]!.backend, objs[1]!.threads, objs[1]!.seed, objs[1]!.trainImages, objs[1]!.savedTo], ['summary', 'wasm', 2, 9, 64, null]);
  });

  test('--valid-split and --keep-best: a Test line after the last epoch, the best epoch in DIR/best, which eval reads', async () => {
    const save = path.join(tmpDir(), 'run');
    const r = await runCli(['train', '--epochs', '2', '--valid-split', '16', '--keep-best', '--save', save, ...CLI_RECIPE, ...served.flags, '-q']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3, r.stdout);
    lines.slice(0, 2).forEach((l) => assert.match(l, EPOCH_LINE));
    assert.match(lines[2]!, /^Test Loss: \d+\.\d{6}, Test Acc: \d\.\d{6}$/);
    const e = await runCli(['eval', '--model', path.join(save, 'best'), '--json', '-q']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal((JSON.parse(e.stdout) as { images: number }).images, 32, 'the run\'s test split');
    const j = await runCli(['train', '--epochs', '1', '--valid-split', '16', '--json', ...CLI_RECIPE, ...served.flags, '-q']);
    const objs = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; test?: unknown; validImages?: number });
    assert.deepEqual(objs.map((o) => o.type), ['epoch', 'test', 'summary']);
    assert.deepEqual(Object.keys(objs[1]!), ['type', 'loss', 'acc']);
    assert.equal(objs[2]!.validImages, 16);
    const none = await runCli(['train', '--keep-best', ...CLI_RECIPE, ...served.flags]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error: --keep-best needs --save DIR \(the best epoch is kept in DIR\/best\)$/m);
  });

  test('bad flags and a bad --resume are one-line errors with a hint, and no stack', async () => {
    const cases: [string[], number, RegExp][] = [
      [['train', '--epochs', '0'], 2, /^error: --epochs must be an integer in 1\.\.1000000, got "0"\nhint: e\.g\. --epochs 20\n$/],
      [['train', '--backend', 'tpu'], 2, /^error: option '--backend <name>' argument 'tpu' is invalid/],
      [['train', '--resume', '/nonexistent/ckpt'], 1, /^error: cannot resume from \/nonexistent\/ckpt: no such directory\nhint: /],
      [['train', '--nesterov'], 2, /^error: --nesterov needs --momentum above 0 \(as PyTorch's SGD\)\nhint: add --momentum 0\.9, or turn Nesterov off with --no-nesterov\n$/],
      [['train', '--epochs', '3', '--warmup-epochs', '3'], 2, /^error: --warmup-epochs 3 leaves no epoch of the schedule \(--epochs 3\)\n/],
      [["train", "--valid-split", "64", ...CLI_RECIPE], 2, /^error: --valid-split 64 leaves no training images \(there are 64\)\nhint: hold out fewer, e\.g\. --valid-split 6 or --valid-split 0\.1\n$/m],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli([...args, ...served.flags]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, '');
    }
  });
});
