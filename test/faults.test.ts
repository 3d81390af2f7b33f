// Faults (issue #13): full disks, crashes mid-save, hostile files, concurrent runs, closed pipes, signals and
// tampered checkpoints, each as the campaign found it, each answered by one `error:`/`hint:` pair (or a quiet
// stop) with nothing lost and nothing half-written. Full and read-only disks are small tmpfs mounts, which
// need root: those tests skip, saying so, elsewhere.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { loadCheckpoint, loadTrainedModel, saveCheckpoint, type SaveStep } from '../src/checkpoint.js';
import { decodeImage } from '../src/data/image.js';
import { createModel } from '../src/model.js';
import { lessonRecipe } from '../src/recipe.js';
import { predictionLine } from '../src/report.js';
import type { TrainState } from '../src/train.js';
import { BIN, SMALL_RUN, archiveFile as writeArchive, cannotMount, listFiles, noTrace, runCli, sendWithRange, serve, tmpDir, tmpfs, trainedModel as trainedOnce, useBackend } from './helpers.js';

const archiveBytes = gzipTar(cifarEntries({ trainPerBatch: 100, test: 100, seed: 8 }));
const RECIPE = SMALL_RUN;
const canMount = cannotMount(); // the skip reason, or false
if (canMount && process.env.ALEXNET_REQUIRE_FAULT_TOOLS === '1') throw new Error(`ALEXNET_REQUIRE_FAULT_TOOLS=1, but the full-disk tests cannot run: ${canMount}`);
const archiveFile = (bytes = archiveBytes) => writeArchive(bytes);

describe('full disks', { skip: canMount }, () => {
  test('unpacking into a full disk: one error line, no temporary folder left; stale ones of dead runs are removed', async () => {
    const m = tmpfs('1300k') as { dir: string; unmount: () => void };
    try {
      const r = await runCli(['download', '--data-dir', m.dir, '--url', archiveFile(), '--no-verify']);
      assert.equal(r.code, 1, r.stderr);
      noTrace(r.stderr);
      assert.match(r.stderr, new RegExp(`^error: no space left on device while unpacking into ${m.dir} \\(needs ~185 MB for the official data\\)$`, 'm'));
      assert.deepEqual(fs.readdirSync(m.dir), []);
    } finally {
      m.unmount();
    }
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, '.cifar-10-batches-bin.tmp-999999999'));
    fs.writeFileSync(path.join(dir, '.cifar-10-batches-bin.tmp-999999999', 'data_batch_1.bin'), 'half');
    const ok = await runCli(['download', '--data-dir', dir, '--url', archiveFile(), '--no-verify']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(fs.readdirSync(dir), ['cifar-10-batches-bin']);
  });

  test('downloading into a full disk is not retried as a network fault', async () => {
    const server = await serve((req, res) => sendWithRange(req, res, archiveBytes));
    const m = tmpfs('200k') as { dir: string; unmount: () => void };
    try {
      const r = await runCli(['download', '--data-dir', m.dir, '--url', server.url, '--no-verify']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: no space left on device while downloading into ${m.dir}$`, 'm'));
      assert.match(r.stderr, /^hint: free space there or pass another --data-dir/m);
      assert.doesNotMatch(r.stderr, /retrying|check the network/);
      assert.equal(server.requests.length, 1);
    } finally {
      m.unmount();
      await server.close();
    }
  });

  test('a checkpoint save on a full disk fails with one line; the previous checkpoint is whole', async () => {
    const m = tmpfs('3500k') as { dir: string; unmount: () => void };
    try {
      const save = path.join(m.dir, 'run');
      const data = ['--data-dir', tmpDir(), '--url', archiveFile(), '--no-verify'];
      const r = await runCli(['train', '--epochs', '3', '--save', save, ...RECIPE, ...data]);
      assert.equal(r.code, 1, r.stderr);
      noTrace(r.stderr);
      assert.match(r.stderr, new RegExp(`^error: no space left on device while saving the checkpoint in ${save}$`, 'm'));
      const state = JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')) as { epoch: number };
      assert.ok(state.epoch >= 1, 'at least one whole checkpoint');
      const e = await runCli(['eval', '--model', save, '-q']);
      assert.equal(e.code, 0, e.stderr);
    } finally {
      m.unmount();
    }
  });

  test('a data dir on a read-only file system: one line, whether it exists or not', async () => {
    const m = tmpfs('1m', true) as { dir: string; unmount: () => void };
    try {
      for (const [dir, re] of [[path.join(m.dir, 'data'), /^error: cannot create data dir .*: the file system is read-only$/m], [m.dir, /^error: cannot write into data dir .*: the file system is read-only$/m]] as const) {
        const r = await runCli(['download', '--data-dir', dir, '--url', archiveFile(), '--no-verify']);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, re);
        noTrace(r.stderr);
      }
    } finally {
      m.unmount();
    }
  });

  test('--save on a read-only file system fails before training', async () => {
    const m = tmpfs('1m', true) as { dir: string; unmount: () => void };
    try {
      const r = await runCli(['train', '--epochs', '1', '--save', path.join(m.dir, 'run'), ...RECIPE, '--data-dir', tmpDir(), '--url', archiveFile(), '--no-verify']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: cannot create --save folder .*\/run: the file system is read-only\nhint: make it writable, or pass --save with a folder you can write to$/m);
      assert.doesNotMatch(r.stderr, /CIFAR-10 ready/, 'before any data work');
    } finally {
      m.unmount();
    }
  });
});

describe('a checkpoint is atomic as a set', () => {
  before(() => useBackend('cpu'));

  const state = (epoch: number): TrainState => ({
    version: 1,
    recipe: { ...lessonRecipe(1), epochs: 9, batchSize: 32 },
    limitTrain: null,
    limitTest: null,
    epoch,
    batch: 0,
    partial: null,
    history: Array.from({ length: epoch }, (_, i) => ({ epoch: i, trainLoss: 1, trainAcc: 0.5, validLoss: 1, validAcc: 0.5, seconds: 1, imagesPerSecond: 1 })),
  });

  for (const step of ['weights', 'model', 'metrics', 'state', 'cleanup'] as SaveStep[]) {
    test(`a crash after "${step}": resume and eval each find one whole checkpoint`, async () => {
      const dir = tmpDir();
      const a = createModel({ seed: 1 });
      const b = createModel({ seed: 2 });
      await saveCheckpoint(dir, a, state(1));
      await assert.rejects(saveCheckpoint(dir, b, state(2), (s) => {
        if (s === step) throw new Error('killed');
      }), /killed/);
      const resumed = await loadCheckpoint(dir); // checks the weights against state.json's hash
      assert.ok([1, 2].includes(resumed.state.epoch));
      const used = await loadTrainedModel(dir);
      assert.ok([1, 2].includes(used.epochs!));
      const after = await saveCheckpoint(dir, b, state(3)).then(() => loadCheckpoint(dir));
      assert.equal(after.state.epoch, 3);
      assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('weights')).length, 1, 'old weights are removed once unused');
      [a, b, resumed.model, used.model, after.model].forEach((m) => m.dispose());
    });
  }
});

const trainedModel = () => trainedOnce(archiveBytes);

describe('hostile files', () => {
  let model: string;
  let data: string[];
  before(async () => ({ model, data } = await trainedModel()));

  test('a tall, thin PNG is refused before decoding', async () => {
    const png = Buffer.alloc(64);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png, 0);
    png.writeUInt32BE(13, 8);
    png.write('IHDR', 12, 'latin1');
    png.writeUInt32BE(1, 16);
    png.writeUInt32BE(99_999_999, 20);
    await assert.rejects(decodeImage(png, 'thin.png'), /cannot read thin\.png: 1 x 99999999 pixels: a side is longer than 16,384/);
  });

  test('images that are not regular files, or too large, are refused at once', async () => {
    const dir = tmpDir();
    fs.symlinkSync('/dev/zero', path.join(dir, 'zero.png'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.png')]);
    fs.writeFileSync(path.join(dir, 'big.png'), Buffer.alloc(1));
    fs.truncateSync(path.join(dir, 'big.png'), 65 * 1024 * 1024);
    for (const [name, re] of [['zero.png', /not a regular file/], ['fifo.png', /not a regular file/], ['big.png', /68,157,440 bytes is more than the 67,108,864/]] as const) {
      const r = await runCli(['predict', '--model', model, path.join(dir, name)], { timeoutMs: 20_000 });
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  test('a tampered model.json is refused before TensorFlow.js allocates for it', async () => {
    const bad = path.join(tmpDir(), 'run');
    fs.cpSync(model, bad, { recursive: true });
    const json = JSON.parse(fs.readFileSync(path.join(bad, 'model.json'), 'utf8'));
    json.weightsManifest[0].weights[0].shape = [100000, 100000];
    fs.writeFileSync(path.join(bad, 'model.json'), JSON.stringify(json));
    fs.rmSync(path.join(bad, 'state.json'));
    const r = await runCli(['eval', '--model', bad, ...data]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /its weights do not fit its layers \(model\.json describes 40,[\d,]+ bytes of float32, weights-[0-9a-f]{16}\.bin has 2,307,112\)/);
  });

  test('writes never replace a device or write through a symlink', async () => {
    const dir = tmpDir();
    const target = path.join(dir, 'precious.txt');
    fs.writeFileSync(target, 'keep');
    fs.symlinkSync(target, path.join(dir, 'link.png'));
    const r = await runCli(['samples', '--out', path.join(dir, 'link.png'), ...data]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: will not write .*link\.png: it is a symbolic link$/m);
    assert.equal(fs.readFileSync(target, 'utf8'), 'keep');
    if (process.getuid?.() === 0 && fs.existsSync('/dev/full')) {
      const d = await runCli(['samples', '--out', '/dev/full', ...data]);
      assert.equal(d.code, 1);
      assert.match(d.stderr, /^error: will not write \/dev\/full: it is not a regular file/m);
      assert.ok(fs.statSync('/dev/full').isCharacterDevice(), '/dev/full is still the device');
    }
  });

  test('eval and predict check the weights against state.json', async () => {
    const bad = path.join(tmpDir(), 'run');
    fs.cpSync(model, bad, { recursive: true });
    const weights = fs.readdirSync(bad).find((f) => f.startsWith('weights'))!;
    const bytes = fs.readFileSync(path.join(bad, weights));
    bytes[100]! ^= 0x40;
    fs.writeFileSync(path.join(bad, weights), bytes);
    const r = await runCli(['eval', '--model', bad, ...data]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: cannot use the model in .*: ${weights} does not belong to state\\.json$`, 'm'));
  });

  test('terminal escapes: refused in batches.meta.txt, never printed from a file name', async () => {
    const evil = gzipTar(cifarEntries({ trainPerBatch: 3, test: 3 }).map((e) => (e.path.endsWith('batches.meta.txt') ? { ...e, data: Buffer.from('air\u001b[2Jplane\nb\nc\nd\ne\nf\ng\nh\ni\nj\n') } : e)));
    const r = await runCli(['download', '--data-dir', tmpDir(), '--url', archiveFile(evil), '--no-verify']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: batches\.meta\.txt: class name 1 has control or bidirectional characters/m);
    assert.equal(predictionLine('a\u001b]0;title\u0007.png', [{ index: 0, name: 'cat\u001b[2J', probability: 1 }]), 'a?]0;title?.png: cat?[2J 1.000');
  });

  test('a member larger than any CIFAR-10 batch is refused before it is written', async () => {
    const bomb = gzipTar(cifarEntries({ trainPerBatch: 3, test: 3 }).map((e) => (e.path.endsWith('data_batch_1.bin') ? { ...e, data: Buffer.alloc(30_730_000 + 3073) } : e)));
    assert.ok(bomb.length < 1_000_000, 'compresses well');
    const dir = tmpDir();
    const r = await runCli(['download', '--data-dir', dir, '--url', archiveFile(bomb), '--no-verify']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: archive member cifar-10-batches-bin\/data_batch_1\.bin is 30,733,073 bytes; a CIFAR-10 batch has at most 30,730,000 bytes; refusing the archive$/m);
    assert.deepEqual(listFiles(dir), []);
  });
});

describe('tampered state.json', () => {
  let model: string;
  let data: string[];
  before(async () => ({ model, data } = await trainedModel()));

  test('each field is checked on load, and the error names it', async () => {
    const cases: [string, (s: Record<string, any>) => unknown, RegExp][] = [
      ['null', () => null, /state\.json: it is not a JSON object/],
      ['recipe null', (s) => ({ ...s, recipe: null }), /state\.json: recipe must be an object/],
      ['history a string', (s) => ({ ...s, history: 'x' }), /state\.json: history must be an array/],
      ['threads 64', (s) => ({ ...s, settings: { threads: 64 } }), /state\.json: settings\.threads must be an integer in 1\.\.4, got 64/],
      ['threads 64, in a checkpoint from before settings', (s) => ({ ...s, threads: 64 }), /state\.json: threads must be an integer in 1\.\.4, got 64/],
      ['batch size 0', (s) => ({ ...s, recipe: { ...s.recipe, batchSize: 0 } }), /state\.json: recipe\.batchSize must be an integer in 1\.\.65536, got 0/],
      ['lr "abc"', (s) => ({ ...s, recipe: { ...s.recipe, lr: 'abc' } }), /state\.json: recipe\.lr must be a positive number, got "abc"/],
      ['epoch -5', (s) => ({ ...s, epoch: -5 }), /state\.json: epoch must be an integer in 0\.\.1000000, got -5/],
      ['batch 1e6', (s) => ({ ...s, batch: 1e6, partial: { lossSum: 0, accSum: 0, seconds: 0 } }), /state\.json: batch 1000000 is past the epoch's \d+ batches/],
      ['an escape in a class name', (s) => ({ ...s, classNames: ['\u001b[2J', ...s.classNames.slice(1)] }), /state\.json: classNames must be 2 to 1000 names without control characters/],
    ];
    for (const [what, change, re] of cases) {
      const dir = path.join(tmpDir(), 'run');
      fs.cpSync(model, dir, { recursive: true });
      const s = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
      fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(change(s)));
      const r = await runCli(['train', '--resume', dir, '--epochs', '3', ...data]);
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, re, what);
      assert.equal(r.stdout, '', `${what}: nothing trained`);
      noTrace(r.stderr);
    }
  });

  test('--resume of a file says it is not a checkpoint directory', async () => {
    const r = await runCli(['train', '--resume', path.join(model, 'state.json')]);
    assert.match(r.stderr, /^error: cannot resume from .*state\.json: it is a file, not a checkpoint directory$/m);
  });
});

describe('concurrent runs', () => {
  test('two downloads into one data dir: the second waits, then uses the first one\'s data', async () => {
    let sent = 0;
    const server = await serve((req, res) => {
      sent++;
      // Slow: 10 chunks over ~1 s, so the two runs overlap.
      res.writeHead(200, { 'content-length': archiveBytes.length });
      const step = Math.ceil(archiveBytes.length / 10);
      let i = 0;
      const timer = setInterval(() => {
        res.write(archiveBytes.subarray(i, i + step));
        i += step;
        if (i >= archiveBytes.length) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
    });
    try {
      const dir = tmpDir();
      const args = ['download', '--data-dir', dir, '--url', server.url, '--no-verify'];
      const first = runCli(args);
      await new Promise((r) => setTimeout(r, 400));
      const [a, b] = await Promise.all([first, runCli(args)]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stderr, /waiting for a download into .* by pid \d+ to finish/);
      assert.match(b.stderr, /CIFAR-10 already in /);
      assert.equal(sent, 1, 'downloaded once');
      assert.deepEqual(fs.readdirSync(dir), ['cifar-10-batches-bin']);
    } finally {
      await server.close();
    }
  });

  test('two train --save runs into one dir: the second is refused; a stale lock is taken over', async () => {
    const save = path.join(tmpDir(), 'run');
    const data = ['--data-dir', tmpDir(), '--url', archiveFile(), '--no-verify'];
    let second: Promise<Awaited<ReturnType<typeof runCli>>> | null = null;
    // The first run trains 6 short epochs (~4 s) after its backend line: the second claims the lock well within them.
    const first = await runCli(['train', '--epochs', '6', '--save', save, ...RECIPE, ...data], {
      onStderr: (chunk) => {
        if (!second && chunk.includes('backend:')) second = runCli(['train', '--epochs', '6', '--save', save, ...RECIPE, ...data]);
      },
    });
    assert.equal(first.code, 0, first.stderr);
    const s = await second!;
    assert.equal(s.code, 1, s.stderr);
    assert.match(s.stderr, /^error: a training run saving into .* is already running \(pid \d+; lock .*\.alexnet-train\.lock\)$/m);
    fs.writeFileSync(path.join(save, '.alexnet-train.lock'), '999999999\n');
    const again = await runCli(['train', '--resume', save, '--epochs', '7']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /taking over the lock .* of a run that is gone \(pid 999999999 is gone\)/);
    assert.ok(!fs.existsSync(path.join(save, '.alexnet-train.lock')), 'released at the end');
  });
});

describe('errors that used to be stack traces', () => {
  let data: string[];
  before(() => {
    data = ['--data-dir', tmpDir(), '--url', archiveFile(), '--no-verify'];
  });

  test('--save at a file, a data dir that is a file, and a batch the backend cannot hold', async () => {
    const file = path.join(tmpDir(), 'file');
    fs.writeFileSync(file, 'x');
    const cases: [string[], number, RegExp][] = [
      [['train', '--save', file, ...RECIPE, ...data], 1, /^error: cannot create --save folder .*file: it is a file, not a folder$/m],
      [['download', '--data-dir', path.join(file, 'sub'), '--url', archiveFile(), '--no-verify'], 1, /^error: cannot create data dir .*: a file is in the way$/m],
      [['train', '--backend', 'wasm', '--batch-size', '8192', ...data], 2, /^error: --batch-size 8192 is more than the wasm backend holds \(4096\)$/m],
      [['samples', '--count', '10000', '--scale', '16', ...data], 2, /^error: --count 10000 at --scale 16 makes a \d+ x \d+ image; at most 100 megapixels are written$/m],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /^hint: /m);
      noTrace(r.stderr);
    }
  });

  test('malformed URLs and redirects to file:, ftp: or nowhere', async () => {
    const server = http.createServer((req, res) => {
      const to = req.url === '/file' ? 'file:///etc/passwd' : req.url === '/ftp' ? 'ftp://example.com/x' : 'http://[::1';
      res.writeHead(302, { location: to }).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const cases: [string, RegExp][] = [
        ['http://[::1', /^error: --url "http:\/\/\[::1" is not a valid URL$/m],
        ['file://host/x', /^error: --url "file:\/\/host\/x" is not a local file URL/m],
        [`${base}/file`, /^error: .* redirected to file: \("file:\/\/\/etc\/passwd"\), which is not followed$/m],
        [`${base}/ftp`, /^error: .* redirected to ftp: .*which is not followed$/m],
        [`${base}/bad`, /^error: .* redirected to an invalid location "http:\/\/\[::1"$/m],
      ];
      for (const [url, re] of cases) {
        const r = await runCli(['download', '--data-dir', tmpDir(), '--url', url]);
        assert.ok(r.code === 1 || r.code === 2, `${url}: ${r.stderr}`);
        assert.match(r.stderr, re, url);
        noTrace(r.stderr);
      }
    } finally {
      server.close();
    }
  });

  test('a closed pipe stops quietly (141): train after its checkpoint, samples --out - at once', async () => {
    const save = path.join(tmpDir(), 'run');
    const child = spawn(process.execPath, [BIN, 'train', '--epochs', '20', '--save', save, ...RECIPE, ...data], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy()); // `| head -1`
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 141, stderr);
    noTrace(stderr);
    assert.doesNotMatch(stderr, /^error:/m);
    const state = JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')) as { epoch: number };
    assert.ok(state.epoch >= 1 && state.epoch < 20, 'stopped early, checkpoint whole');
    const s = spawn(process.execPath, [BIN, 'samples', '--out', '-', ...data], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    s.stderr.on('data', (d) => (err += d));
    s.stdout.once('data', () => s.stdout.destroy()); // `| head -c 10`
    const sc = await new Promise<number | null>((r) => s.on('close', r));
    assert.ok(sc === 141 || sc === 0, `exit ${sc}: ${err}`);
    noTrace(err);
  });

  test('SIGTERM while starting up: the promised message and 130', async () => {
    let sent = false;
    const r = await runCli(['train', '--epochs', '1', ...RECIPE, ...data], {
      onStderr: (chunk, child) => {
        if (!sent && chunk.includes('backend:')) {
          sent = true;
          child.kill('SIGTERM');
        }
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /^error: interrupted by SIGTERM/m);
  });
});
