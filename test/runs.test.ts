// Runs you cannot lose (issue #24) and one run in many hands (issue #29): the best checkpoint as much a part of the
// run's set as its own files, no finished run replaced unasked, resumes that keep one run's numbers or say no,
// readers that always get one whole checkpoint while the run saves, one writer for DIR and DIR/best, and paths
// that cannot be made. In-process where the run's core is what is tested; the real CLI where a user's command is.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { loadTrainedModel, readState } from '../src/checkpoint.js';
import { MAX_TIMING_MS, networkTimingFromEnv } from '../src/commands/parse.js';
import { decodeImage } from '../src/data/image.js';
import { retryDelay } from '../src/data/download.js';
import { makeDirs } from '../src/files.js';
import { positive, range, lessonRecipe, type Recipe } from '../src/recipe.js';
import { runTraining, type TrainingOptions } from '../src/run.js';
import { BIN, SMALL_RUN, archiveFile, noStrace, noTrace, runCli, runCliUnder, runOptions, serveArchive, tmpDir, useBackend } from './helpers.js';

const archive = gzipTar(cifarEntries({ trainPerBatch: 100, test: 100, seed: 31 }));
const RECIPE: Recipe = { ...lessonRecipe(4), batchSize: 16, epochs: 2 };
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('error:'));
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
if (noStrace && process.env.ALEXNET_REQUIRE_FAULT_TOOLS === '1') throw new Error(`ALEXNET_REQUIRE_FAULT_TOOLS=1, but: ${noStrace}`);

describe('runs, in-process', () => {
  let served: Awaited<ReturnType<typeof serveArchive>>;
  before(async () => {
    await useBackend('wasm');
    served = await serveArchive(archive);
  });
  after(() => served.close());

  const options = (over: Partial<TrainingOptions> = {}) => runOptions(served, { recipe: RECIPE, limits: { limitTrain: 64, limitTest: 32 }, threads: 1 }, over);
  /** DIR/best's state.json holds the weights the run's state.json names as its best. */
  const bestIsWhole = (dir: string) => {
    const run = readJson(path.join(dir, 'state.json'));
    const best = readJson(path.join(dir, 'best', 'state.json'));
    assert.equal(best.weightsSha256, run.best.weightsSha256, 'best/ holds the best state.json names');
    assert.equal(best.epoch, run.best.epoch + 1);
  };

  test('state.json names its best by hash; a best/ cut short is repaired from the run, a missing one starts anew, another run\'s is refused', async () => {
    const save = path.join(tmpDir(), 'run');
    const notes: string[] = [];
    await runTraining(options({ recipe: { ...RECIPE, epochs: 1 }, save, keepBest: true }));
    bestIsWhole(save);
    // A kill while best/ was written, after the run's own state.json: best/ holds no state.json yet.
    fs.rmSync(path.join(save, 'best', 'state.json'));
    const r = await runTraining(options({ resume: save, recipe: RECIPE, explicit: new Set(['epochs']) }), { log: (l) => notes.push(l) });
    assert.ok(notes.some((l) => /best was one save behind the run \(a save cut short\): copying the best epoch \(0\) into it again$/.test(l)), notes.join('\n'));
    bestIsWhole(save);
    assert.equal(r.state.epoch, 2);

    // Removed by hand: said, and the best of the epochs from here on is kept.
    fs.rmSync(path.join(save, 'best'), { recursive: true });
    notes.length = 0;
    await runTraining(options({ resume: save, recipe: { ...RECIPE, epochs: 3 }, explicit: new Set(['epochs']) }), { log: (l) => notes.push(l) });
    assert.ok(notes.some((l) => l.endsWith(`best is missing: the best of the epochs from here on is kept in ${path.join(save, 'best')}`)), notes.join('\n'));
    bestIsWhole(save);
    assert.equal(readJson(path.join(save, 'state.json')).best.epoch, 2, 'the only epoch since');

    // Replaced by another run's checkpoint: refused, naming both.
    const other = path.join(tmpDir(), 'other');
    await runTraining(options({ recipe: { ...RECIPE, epochs: 1, seed: 7 }, save: other }));
    fs.rmSync(path.join(save, 'best'), { recursive: true });
    fs.cpSync(other, path.join(save, 'best'), { recursive: true });
    await assert.rejects(runTraining(options({ resume: save, recipe: { ...RECIPE, epochs: 4 }, explicit: new Set(['epochs']) })), {
      code: 'CHECKPOINT',
      message: new RegExp(`^${path.join(save, 'best')} holds epoch 0 \\(weights [0-9a-f]{16}\\), not the run's best, epoch 2 \\(weights [0-9a-f]{16}\\)$`),
    });
  });

  test('best/ as a file or a symbolic link is refused, and nothing is written through the link', async () => {
    const save = path.join(tmpDir(), 'run');
    await runTraining(options({ recipe: { ...RECIPE, epochs: 1 }, save, keepBest: true }));
    const elsewhere = tmpDir();
    fs.rmSync(path.join(save, 'best'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(save, 'best'));
    const resume = () => runTraining(options({ resume: save, recipe: RECIPE, explicit: new Set(['epochs']) }));
    await assert.rejects(resume(), { code: 'IO', message: `will not use ${path.join(save, 'best')}: it is a symbolic link, and the best checkpoint is a folder of the run's own` });
    assert.deepEqual(fs.readdirSync(elsewhere), []);
    fs.rmSync(path.join(save, 'best'));
    fs.writeFileSync(path.join(save, 'best'), 'notes');
    await assert.rejects(resume(), { code: 'IO', message: `will not use ${path.join(save, 'best')}: it is a file, not the run's best checkpoint` });
    // A folder holding only a planted best/ link: refused as a run's files; --overwrite removes the link alone.
    const fresh = path.join(tmpDir(), 'fresh');
    fs.mkdirSync(fresh);
    fs.symlinkSync(elsewhere, path.join(fresh, 'best'));
    const run = (overwrite: boolean) => runTraining(options({ recipe: { ...RECIPE, epochs: 1 }, save: fresh, keepBest: true, overwrite }));
    await assert.rejects(run(false), { code: 'USAGE', message: `${fresh} holds files of a run (best) already` });
    await run(true);
    assert.ok(fs.lstatSync(path.join(fresh, 'best')).isDirectory(), 'a folder of the run\'s own');
    assert.deepEqual(fs.readdirSync(elsewhere), []);
  });

  test('--keep-best turned on when resuming, and a resume into another --save: the summary\'s best folder exists and is whole', async () => {
    const save = path.join(tmpDir(), 'run');
    await runTraining(options({ recipe: { ...RECIPE, epochs: 1 }, save }));
    const notes: string[] = [];
    const r = await runTraining(options({ resume: save, recipe: RECIPE, explicit: new Set(['epochs']), keepBest: true }), { log: (l) => notes.push(l) });
    assert.ok(notes.includes(`--keep-best: the best of the epochs from here on is kept in ${path.join(save, 'best')}`), notes.join('\n'));
    assert.equal(r.state.best?.epoch, 1);
    bestIsWhole(save);
    const moved = path.join(tmpDir(), 'moved');
    const m = await runTraining(options({ resume: save, save: moved, recipe: { ...RECIPE, epochs: 3 }, explicit: new Set(['epochs']) }));
    bestIsWhole(moved);
    assert.ok(m.state.keepBest);
  });

  test('a new total never stretches a schedule; whatever a new run refuses, a resume refuses; a run stopped inside its last epoch is done', async () => {
    const save = path.join(tmpDir(), 'run');
    await runTraining(options({ recipe: { ...RECIPE, schedule: 'cosine' }, save }));
    const resume = (over: Partial<TrainingOptions>) => runTraining(options({ resume: save, ...over }));
    await assert.rejects(resume({ recipe: { ...RECIPE, epochs: 3 }, explicit: new Set(['epochs']) }), {
      code: 'USAGE',
      message: "--epochs 3 would stretch the run's cosine schedule, laid over its 2 epochs, and no single run gives such numbers",
      hint: "start a new run with --epochs 3 (a schedule's length is set when the run starts)",
    });
    // Warm-up on a constant rate: a new total is fine, but not one the warm-up fills.
    const warm = path.join(tmpDir(), 'warm');
    const stop = new AbortController();
    await runTraining(options({ recipe: { ...RECIPE, epochs: 3, warmupEpochs: 1 }, save: warm }), { signal: stop.signal, onBatch: (p) => p.epoch === 1 && p.batch === 2 && stop.abort() });
    await assert.rejects(runTraining(options({ resume: warm, recipe: { ...RECIPE, epochs: 1 }, explicit: new Set(['epochs']) })), { code: 'USAGE', message: '--warmup-epochs 1 leaves no epoch of the schedule (--epochs 1)' });
    // Stopped inside epoch 1 (its second): --epochs 1 asks for no more training, and is told so.
    const plain = path.join(tmpDir(), 'plain');
    const stop2 = new AbortController();
    await runTraining(options({ recipe: { ...RECIPE, epochs: 3 }, save: plain }), { signal: stop2.signal, onBatch: (p) => p.epoch === 1 && p.batch === 2 && stop2.abort() });
    await assert.rejects(runTraining(options({ resume: plain, recipe: { ...RECIPE, epochs: 1 }, explicit: new Set(['epochs']) })), {
      code: 'USAGE',
      message: 'the checkpoint has already done 1 epoch and 2 batches, as many as --epochs 1 asks for',
    });
  });

  test('onecycle with a rising phase of no steps is refused as such, not reported as a diverged run', async () => {
    await assert.rejects(runTraining(options({ recipe: { ...RECIPE, batchSize: 64, epochs: 3, schedule: 'onecycle', warmupEpochs: 1 } })), {
      code: 'USAGE',
      message: '--schedule onecycle over 3 steps (1 batch an epoch) leaves its rising phase no steps',
    });
  });

  test('a backend\'s option for another backend is refused; Nesterov without momentum names --no-nesterov', async () => {
    await assert.rejects(runTraining(options({ settings: { webgpuRunner: 'ops' } })), { code: 'USAGE', message: '--webgpu-runner is an option of the webgpu backend, not of wasm', hint: 'drop --webgpu-runner, or pass --backend webgpu' });
    await assert.rejects(runTraining(options({ recipe: { ...RECIPE, nesterov: true, momentum: 0 } })), { code: 'USAGE', hint: 'add --momentum 0.9, or turn Nesterov off with --no-nesterov' });
  });

  test('an unknown field in a saved recipe is refused, not carried into the next state.json', async () => {
    const save = path.join(tmpDir(), 'run');
    await runTraining(options({ recipe: { ...RECIPE, epochs: 1 }, save }));
    const state = readJson(path.join(save, 'state.json'));
    state.recipe.dropout = 0.5;
    fs.writeFileSync(path.join(save, 'state.json'), JSON.stringify(state));
    await assert.rejects(readState(save), { code: 'CHECKPOINT', message: `cannot resume from ${save}: state.json: recipe.dropout is not a field of this version's recipes` });
  });

  test('a reader looping against a writer always gets one whole checkpoint, of the run and of its best', async () => {
    // One step an epoch, so the run saves (and replaces its weights) every ~0.2 s while the reader reads.
    const save = path.join(tmpDir(), 'run');
    let done = false;
    const writer = runTraining(options({ recipe: { ...RECIPE, epochs: 40 }, limits: { limitTrain: 16, limitTest: 16 }, save, keepBest: true })).finally(() => (done = true));
    const seen = new Set<number>();
    let reads = 0;
    while (!fs.existsSync(path.join(save, 'best', 'state.json'))) await new Promise((r) => setTimeout(r, 20));
    while (!done) {
      for (const dir of [save, path.join(save, 'best')]) {
        const m = await loadTrainedModel(dir); // throws on a half-read checkpoint
        seen.add(m.epochs!);
        m.model.dispose();
        reads++;
      }
    }
    await writer;
    assert.ok(reads >= 20 && seen.size >= 5, `${reads} reads of ${seen.size} epochs`);
  });

  test('directories are made one level at a time, and the level that cannot be made is named (/proc spun forever)', async () => {
    const t0 = Date.now();
    await assert.rejects(makeDirs('/proc/alexnet-x/run', '--save folder', 'pass another --save'), { code: 'IO', message: /^cannot create --save folder \/proc\/alexnet-x\/run: .+ \(its folder \/proc\/alexnet-x cannot be made\)$/ });
    assert.ok(Date.now() - t0 < 5000);
  });
});

describe('number flags, timings and images: pure checks', () => {
  test('number flags take decimal and exponent forms only', () => {
    const lr = positive();
    const cases: [string, number | undefined][] = [['0.1', 0.1], ['.5', 0.5], ['5e-4', 5e-4], ['1E2', 100], [' 2 ', 2], ['0x10', undefined], ['0b11', undefined], ['0o7', undefined], ['Infinity', undefined], ['', undefined], ['1e', undefined], ['-1', undefined], ['1_000', undefined]];
    for (const [text, want] of cases) assert.equal(lr.parse(text), want, text);
    assert.equal(range(0, 1).parse('0x0'), undefined);
    assert.equal(range(0, 1).parse('0.9'), 0.9);
  });

  test('retry and stall times from the environment are bounded, and said as variables', () => {
    assert.deepEqual(networkTimingFromEnv({ ALEXNET_STALL_MS: '5', ALEXNET_RETRY_DELAY_MS: '0' }), { stallMs: 5, retryDelayMs: 0 });
    assert.throws(() => networkTimingFromEnv({ ALEXNET_STALL_MS: String(2 ** 31) }), { code: 'USAGE', message: `ALEXNET_STALL_MS must be an integer in 1..${MAX_TIMING_MS} (ms), got "2147483648"`, hint: 'e.g. ALEXNET_STALL_MS=30000, or unset it' });
    assert.throws(() => networkTimingFromEnv({ ALEXNET_RETRY_DELAY_MS: '1e-3' }), { hint: 'e.g. ALEXNET_RETRY_DELAY_MS=1000, or unset it' });
    assert.equal(networkTimingFromEnv({ ALEXNET_RETRY_DELAY_MS: '1e3' }).retryDelayMs, 1000, 'a whole number in any decimal form, as the flags take');
    // Doubled past 2^31 ms, Node.js's timer fired at once (a flood of retries) or the wait overflowed.
    for (let attempt = 0; attempt < 60; attempt++) assert.ok(retryDelay(MAX_TIMING_MS, attempt, undefined, false) <= MAX_TIMING_MS);
    assert.equal(retryDelay(1000, 3, undefined, false), 8000);
    assert.equal(retryDelay(1000, 0, 2 ** 40, false), MAX_TIMING_MS, "a server's Retry-After is bounded too");
  });

  test('a PNG whose compressed pixels cannot fill the size it claims is refused before its bitmap is made', async () => {
    const png = PNG.sync.write(Object.assign(new PNG({ width: 1, height: 1 }), { data: Buffer.from([1, 2, 3, 255]) }));
    // The same file, its header claiming 16,384 x 6,103 (CRC left wrong: the size is refused first).
    const big = Buffer.from(png);
    big.writeUInt32BE(16384, 16);
    big.writeUInt32BE(6103, 20);
    assert.ok(big.length < 100);
    const rss = process.memoryUsage().rss;
    await assert.rejects(decodeImage(big, 'big.png'), { code: 'IMAGE', message: /^cannot read big\.png: the PNG data is damaged \(it is truncated: \d+ bytes of compressed pixels cannot fill 16384 x 6103 pixels\)$/ });
    assert.ok(process.memoryUsage().rss - rss < 100e6);
    assert.equal((await decodeImage(png, 'one.png')).width, 1, 'a whole small PNG still decodes');
  });
});

describe('runs, as a user runs them', () => {
  let data: string[];
  before(() => {
    data = ['--data-dir', tmpDir(), '--url', archiveFile(archive), '--no-verify'];
  });

  test('a finished run is not replaced unasked: --resume or --overwrite, and --overwrite clears the old best/', async () => {
    const save = path.join(tmpDir(), 'run');
    const first = await runCli(['train', '--epochs', '1', '--keep-best', '--save', save, ...SMALL_RUN, ...data, '-q']);
    assert.equal(first.code, 0, first.stderr);
    const state = fs.readFileSync(path.join(save, 'state.json'), 'utf8');
    const again = await runCli(['train', '--epochs', '1', '--seed', '5', '--save', save, ...SMALL_RUN.filter((a, i, all) => a !== '--seed' && all[i - 1] !== '--seed'), ...data]);
    assert.equal(again.code, 2);
    assert.deepEqual(errorLines(again.stderr), [`error: ${save} holds a run of 1 epoch (of 1) already`]);
    assert.match(again.stderr, new RegExp(`^hint: continue it with \`.*alexnet train --resume ${save}\`, or pass --overwrite to replace it \\(its best/ too\\)$`, 'm'));
    assert.equal(fs.readFileSync(path.join(save, 'state.json'), 'utf8'), state, 'untouched');
    assert.doesNotMatch(again.stderr, /CIFAR-10/, 'refused before any data work');
    const over = await runCli(['train', '--epochs', '1', '--overwrite', '--save', save, ...SMALL_RUN, ...data]);
    assert.equal(over.code, 0, over.stderr);
    assert.match(over.stderr, new RegExp(`^--overwrite: removing the run in ${save} and its best/$`, 'm'));
    assert.ok(!fs.existsSync(path.join(save, 'best')), 'the old best/ is gone with its run');
    noTrace(again.stderr + over.stderr);
  });

  test('a first save killed before its state.json leaves no run: --resume says nothing was saved yet, and the same command again starts it', { skip: noStrace }, async () => {
    const save = path.join(tmpDir(), 'run');
    assert.equal((await runCli(['download', ...data, '-q'])).code, 0);
    const args = ['train', '--epochs', '1', '--save', save, ...SMALL_RUN, ...data];
    // A first save renames weights, model.json, metrics.jsonl, then state.json: SIGKILL as the 4th rename starts
    // (strace counts per thread: one libuv thread does them all).
    const killed = await runCliUnder(['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename', '-e', 'inject=rename:signal=KILL:when=4'], args, { env: { UV_THREADPOOL_SIZE: '1' } });
    assert.notEqual(killed.code, 0, killed.stderr);
    const left = fs.readdirSync(save);
    assert.ok(!left.includes('state.json') && left.includes('model.json') && left.some((f) => /^weights-/.test(f)), left.join(' '));
    const resume = await runCli(['train', '--resume', save]);
    assert.equal(resume.code, 1, resume.stderr);
    assert.match(errorLines(resume.stderr)[0]!, new RegExp(`^error: cannot resume from ${save}: nothing was saved yet \\(its first save was cut short: .*weights-.*, no state\\.json\\)$`));
    assert.match(resume.stderr, new RegExp(`^hint: start the run anew: the command that started it \\(\`[^\`]+ train \\.\\.\\. --save ${save}\`\\) removes what the cut save left$`, 'm'));
    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`^${save} holds no run, only what a save cut short left \\(.+\\): removing it$`, 'm'));
    assert.equal(fs.readdirSync(save).filter((f) => /^weights-/.test(f)).length, 1, 'the cut save\'s weights went');
    assert.equal((await runCli(['train', '--resume', save, '--epochs', '1'])).code, 2, 'a whole run, done');
    noTrace(resume.stderr + again.stderr);
  });

  test('a TensorFlow.js export is no run: --save into it is refused, and it is left as it is', async () => {
    const save = path.join(tmpDir(), 'run');
    assert.equal((await runCli(['train', '--epochs', '1', '--save', save, ...SMALL_RUN, ...data, '-q'])).code, 0);
    const web = path.join(tmpDir(), 'web');
    assert.equal((await runCli(['export', '--model', save, '--format', 'tfjs', '--out', web, '-q'])).code, 0);
    const before = fs.readdirSync(web).sort();
    const r = await runCli(['train', '--epochs', '1', '--save', web, ...SMALL_RUN, ...data]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(errorLines(r.stderr)[0]!, new RegExp(`^error: ${web} holds a TensorFlow.js export \\(.+\\), not a run$`));
    assert.deepEqual(fs.readdirSync(web).sort(), before);
  });

  test('--dataset, --labels or --images with --resume must name the run\'s data, refused before any data is touched', async () => {
    const save = path.join(tmpDir(), 'run');
    assert.equal((await runCli(['train', '--epochs', '2', '--save', save, ...SMALL_RUN, ...data, '-q'])).code, 0);
    const home = tmpDir(); // the default data dir goes here: nothing may be written into it
    const images = tmpDir();
    const cases: [string[], RegExp][] = [
      [['--dataset', 'cifar100'], new RegExp(`^error: --dataset cifar100 differs from the data ${save} was trained on: cifar10$`)],
      [['--dataset', 'cifar100', '--labels', 'coarse'], /^error: --dataset cifar100 differs from/],
      [['--images', images], new RegExp(`^error: --images ${images} differs from the data ${save} was trained on: cifar10$`)],
    ];
    for (const [flags, want] of cases) {
      const r = await runCli(['train', '--resume', save, '--epochs', '3', ...flags], { env: { XDG_CACHE_HOME: home, HOME: home, ALEXNET_DATA_DIR: path.join(home, 'data') } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(errorLines(r.stderr)[0]!, want);
      assert.match(r.stderr, new RegExp(`^hint: drop ${flags[0]} to resume on the run's data, or start a new run without --resume$`, 'm'));
      assert.doesNotMatch(r.stderr, /^(backend|data|decoding|downloading)\b|^CIFAR-10 /m, 'refused before the backend, a download or decoding');
    }
    assert.deepEqual(fs.readdirSync(home), []);
    const same = await runCli(['train', '--resume', save, '--epochs', '3', '--dataset', 'cifar10', ...data, '-q']);
    assert.equal(same.code, 0, same.stderr);
  });

  test('a resume refused for a hand-edited recipe hints at nothing --resume refuses', async () => {
    const save = path.join(tmpDir(), 'run');
    assert.equal((await runCli(['train', '--epochs', '1', '--save', save, ...SMALL_RUN, ...data, '-q'])).code, 0);
    const state = readJson(path.join(save, 'state.json'));
    // 64 images: holding out 64 (a valid count in itself) leaves none to train on.
    state.recipe.validSplit = 64;
    fs.writeFileSync(path.join(save, 'state.json'), JSON.stringify(state));
    const r = await runCli(['train', '--resume', save, '--epochs', '2']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(errorLines(r.stderr), [`error: cannot resume from ${save}: state.json: recipe.validSplit 64 leaves no training images (there are 64)`]);
    const hint = r.stderr.split('\n').find((l) => l.startsWith('hint:'))!;
    assert.doesNotMatch(hint, /--valid-split/);
    assert.match(hint, /^hint: the checkpoint was modified or damaged, or its data changed; resume from a complete one, or start a new run$/);
  });

  test('number flags in hex or binary are refused before a --save folder is made', async () => {
    const save = path.join(tmpDir(), 'run');
    for (const lr of ['0x10', '0b11']) {
      const r = await runCli(['train', '--lr', lr, '--save', save, ...SMALL_RUN, ...data]);
      assert.equal(r.code, 2);
      assert.deepEqual(errorLines(r.stderr), [`error: --lr must be a positive number, got "${lr}"`]);
      assert.ok(!fs.existsSync(save));
    }
  });

  test('what killed saves left (temporaries of dead pids, unnamed weights, a lock\'s temporary) goes at the next train on the folder, a finished run\'s too', async () => {
    const save = path.join(tmpDir(), 'run');
    const r = await runCli(['train', '--epochs', '1', '--keep-best', '--save', save, ...SMALL_RUN, ...data, '-q']);
    assert.equal(r.code, 0, r.stderr);
    const dead = 2 ** 22 + 12345; // above pid_max's default: no such process
    const debris = ['.report.html.tmp-DEAD-0123456789ab', 'weights-00000000000000aa.bin', '..alexnet-train.lock.DEAD-0123456789ab', 'best/.state.json.tmp-DEAD-0123456789ab'].map((f) => path.join(save, f.replace('DEAD', String(dead))));
    debris.forEach((f) => fs.writeFileSync(f, 'x'));
    const done = await runCli(['train', '--resume', save]);
    assert.equal(done.code, 2);
    assert.deepEqual(errorLines(done.stderr), ['error: the checkpoint has already done 1 epoch']);
    assert.deepEqual(debris.filter((f) => fs.existsSync(f)), []);
  });

  test('DIR/best belongs to its run: a --save or --resume into it is refused, with the owner\'s pid while it trains', async () => {
    const save = path.join(tmpDir(), 'run');
    const best = path.join(save, 'best');
    // A long run: 40 epochs of one step; stopped once the refusals are seen.
    const child = spawn(process.execPath, [BIN, 'train', '--epochs', '40', '--keep-best', '--save', save, ...SMALL_RUN.map((a) => (a === '64' ? '16' : a)), ...data, '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => child.on('close', r));
    try {
      await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => String(d).startsWith('Epoch') && resolve()));
      for (const args of [['--save', best, '--epochs', '1', ...SMALL_RUN, ...data], ['--resume', best, '--epochs', '50']]) {
        const r = await runCli(['train', ...args]);
        assert.equal(r.code, 1, r.stderr);
        assert.deepEqual(errorLines(r.stderr), [`error: ${best} is the best checkpoint of the run training in ${save} (pid ${child.pid}; lock ${path.join(save, '.alexnet-train.lock')})`]);
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const r = await runCli(['train', '--resume', best, '--epochs', '50']);
    assert.equal(r.code, 2);
    assert.deepEqual(errorLines(r.stderr), [`error: ${best} is the best checkpoint of the run in ${save}: only that run writes it`]);
    assert.match(r.stderr, new RegExp(`^hint: pass another --save DIR \\(to go on from this best epoch: --resume ${best} --save NEW_DIR\\)$`, 'm'));
  });

  test('paths that cannot be made fail at once, naming the level: --data-dir, $ALEXNET_DATA_DIR and --save under /proc', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['download', '--data-dir', '/proc/alexnet-x', '--url', archiveFile(archive), '--no-verify'], {}, /^error: cannot create data dir \/proc\/alexnet-x: /m],
      [['download', '--url', archiveFile(archive), '--no-verify'], { ALEXNET_DATA_DIR: '/proc/alexnet-x/data' }, /^error: cannot create data dir \/proc\/alexnet-x\/data: .+ \(its folder \/proc\/alexnet-x cannot be made\)$/m],
      [['train', '--save', '/proc/alexnet-x/run', ...SMALL_RUN, ...data], {}, /^error: cannot create --save folder \/proc\/alexnet-x\/run: .+ \(its folder \/proc\/alexnet-x cannot be made\)$/m],
    ];
    for (const [args, env, want] of cases) {
      const r = await runCli(args, { env, timeoutMs: 30_000 });
      assert.equal(r.signal, null, 'ended on its own');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, want);
      assert.equal(errorLines(r.stderr).length, 1);
    }
  });

  test('a save that fails after state.json is written does not say that nothing was saved', { skip: noStrace }, async () => {
    const save = path.join(tmpDir(), 'run');
    // A first save renames weights, model.json, metrics.jsonl and state.json into place, then report.html: the 5th
    // rename fails. strace counts per thread: one libuv thread does them all, and the data is there beforehand.
    assert.equal((await runCli(['download', ...data, '-q'])).code, 0);
    const r = await runCliUnder(['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename', '-e', 'inject=rename:error=EIO:when=5'], ['train', '--epochs', '1', '--save', save, ...SMALL_RUN, ...data], { env: { UV_THREADPOOL_SIZE: '1' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^hint: check the disk \\(the kernel log says what failed\\); the last checkpoint in ${save} is whole: continue with \``, 'm'));
    assert.doesNotMatch(r.stderr, /nothing was saved yet/);
  });

  test('a second Ctrl-C while a checkpoint is written says what it waits for, and the checkpoint is whole', { skip: noStrace }, async () => {
    const save = path.join(tmpDir(), 'run');
    let sent = 0;
    // Each fsync takes 0.4 s: the save the first Ctrl-C asks for lasts ~2 s, and the second lands inside it.
    // The first once epoch 0 is out (its save done): the run stops at the next batch and saves again.
    const r = await runCliUnder(['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=fsync', '-e', 'inject=fsync:delay_enter=400000'], ['train', '--epochs', '3', '--save', save, ...SMALL_RUN, ...data], {
      onStdout: (chunk, child) => {
        if (sent === 0 && chunk.startsWith('Epoch 0')) {
          sent = 1;
          // To the CLI under strace, not to strace.
          const cli = Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]);
          process.kill(cli, 'SIGINT');
          setTimeout(() => process.kill(cli, 'SIGINT'), 800);
        }
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`^SIGINT again: stopping as soon as the checkpoint in ${save} is written whole$`, 'm'));
    // Where the checkpoint is and how to go on, as the first Ctrl-C's error says.
    assert.match(r.stderr, new RegExp(`^error: interrupted again: stopped once the checkpoint in ${save} was written whole\nhint: continue with \`[^\`]+ train --resume ${save}\`$`, 'm'));
    const resumed = await runCli(['train', '--resume', save, '-q']);
    assert.equal(resumed.code, 0, resumed.stderr);
  });
});
