// Hardening, second campaign (issue #20): each fault the campaign found, as a user or a flaky world meets it, and
// what the README promises instead: one `error:` line and a `hint:`, no stack, a non-zero exit, bounded time and
// memory, nothing lost, and no debris that blocks a retry. The test names carry the item numbers.
//
// Faults of the disk are injected with strace (`-e inject=fsync:error=EIO`), a pid namespace comes from unshare, a
// small disk from a tmpfs: each of those tests skips, saying why, where the tool is missing or needs root (CI runs
// as root and has them).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import { cifarEntries, gzipTar, makeTar, md5, type TarEntry } from '../scripts/fixture.js';
import { saveCheckpoint, type SaveStep } from '../src/checkpoint.js';
import { BATCHES_DIR, META_FILE, RECORD_BYTES, TEST_FILE, TRAIN_FILES } from '../src/data/cifar.js';
import { fetchArchive } from '../src/data/download.js';
import { TarGuard } from '../src/data/tar_guard.js';
import { acquireLock, currentOwner, startTime } from '../src/lock.js';
import { createModel } from '../src/model.js';
import { lessonRecipe } from '../src/recipe.js';
import type { TrainState } from '../src/train.js';
import { BIN, SMALL_RUN, archiveFile as writeArchive, cannotMount, listFiles, nativeInstalled, noTrace, runCli, runCliUnder, sendWithRange, serve, tmpDir, tmpfs, trainedModel as trainedOnce, withUlimit, useBackend, works, noStrace } from './helpers.js';

const archiveBytes = gzipTar(cifarEntries({ trainPerBatch: 100, test: 100, seed: 9 }));
const RECIPE = SMALL_RUN;
/** The lines of stderr that start with `error:`: exactly one, whatever the error. */
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('error:'));

const archiveFile = (bytes = archiveBytes) => writeArchive(bytes);

const noUnshare = process.getuid?.() === 0 ? works('unshare', ['--pid', '--fork', '--mount-proc', 'true'], 'unshare --pid --fork --mount-proc fails here') : 'needs root for a new pid namespace';
const noMount = cannotMount();
const noDevFull = fs.existsSync('/dev/full') ? false : 'needs /dev/full';
// CI (.ci/run) has them all: there a missing one is a failure, not a skip.
const missing = [noStrace, noUnshare, noMount, noDevFull].filter(Boolean);
if (missing.length > 0 && process.env.ALEXNET_REQUIRE_FAULT_TOOLS === '1') throw new Error(`ALEXNET_REQUIRE_FAULT_TOOLS=1, but: ${missing.join('; ')}`);

/** strace running the CLI with `inject` (e.g. `fsync:error=EIO`), on the syscalls touching `paths` only when given. */
const strace = (inject: string, paths: string[] = []) => ['strace', '-f', '-qq', '-o', '/dev/null', ...paths.flatMap((p) => ['-P', p]), '-e', `trace=${inject.split(':')[0]}`, '-e', `inject=${inject}`];

/**
 * A gzipped tar of members made of zero bytes, then the entries `then`, streamed to `file` (hundreds of MB of tar
 * in ~1 MB of gzip, without holding them in memory).
 */
async function zeroArchive(file: string, members: { path: string; size: number }[], then: TarEntry[] = []): Promise<void> {
  const zeros = Buffer.alloc(1 << 20);
  async function* tar() {
    for (const m of members) {
      // makeTar's header for an empty member, then given the real size (and its checksum again).
      const header = makeTar([{ path: m.path, data: Buffer.alloc(0) }]).subarray(0, 512);
      header.write(m.size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
      header.write('        ', 148, 'ascii');
      let sum = 0;
      for (const b of header) sum += b;
      header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
      yield header;
      for (let left = m.size; left > 0; left -= zeros.length) yield zeros.subarray(0, Math.min(left, zeros.length));
      yield Buffer.alloc((512 - (m.size % 512)) % 512);
    }
    yield makeTar(then); // with the end-of-archive marker
  }
  await pipeline(Readable.from(tar(), { objectMode: false }), createGzip({ level: 1 }), fs.createWriteStream(file));
}

const trainedModel = () => trainedOnce(archiveBytes);

/** A copy of the trained checkpoint, to change. */
async function checkpointCopy(): Promise<string> {
  const dir = path.join(tmpDir(), 'run');
  fs.cpSync((await trainedModel()).model, dir, { recursive: true });
  return dir;
}

/** A 32 x 32 PNG of one colour. */
function png(file: string, shade = 100): string {
  const p = new PNG({ width: 32, height: 32 });
  p.data.fill(shade);
  fs.writeFileSync(file, PNG.sync.write(p));
  return file;
}

/** A `sleep` that runs while a test needs a live process that is not ours. */
function liveStranger(): { pid: number; stop: () => void } {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  return { pid: child.pid!, stop: () => child.kill('SIGKILL') };
}

describe('archives and downloads', () => {
  test('1. a gzip of zeros and a member that is not CIFAR-10\'s are refused within seconds', async () => {
    const dir = tmpDir();
    // 64 MiB of zeros in a ~65 KB gzip: unpacked for 128 s at 377 MB before (the first zero block ends a tar).
    const zeros = path.join(dir, 'zeros.tar.gz');
    await pipeline(Readable.from((function* () {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(1 << 20);
    })()), createGzip({ level: 9 }), fs.createWriteStream(zeros));
    assert.ok(fs.statSync(zeros).size < 100_000);
    const z = await runCli(['download', '--data-dir', tmpDir(), '--url', zeros, '--no-verify'], { timeoutMs: 30_000 });
    assert.equal(z.code, 1, z.stderr);
    assert.match(z.stderr, /^error: cannot unpack zeros\.tar\.gz: it is not a tar archive$/m);

    const junk = archiveFile(gzipTar([...cifarEntries({ trainPerBatch: 3, test: 3 }), { path: 'junk.bin', data: Buffer.alloc(1 << 20) }]));
    const j = await runCli(['download', '--data-dir', tmpDir(), '--url', junk, '--no-verify'], { timeoutMs: 30_000 });
    assert.equal(j.code, 1, j.stderr);
    assert.match(j.stderr, /^error: refusing cifar-10-binary\.tar\.gz: member "junk\.bin" is 1,048,576 bytes, more than a member of CIFAR-10 of that name has \(65,536\)$/m);

    [z, j].forEach((r) => noTrace(r.stderr));
  });

  test('1. the guard in front of tar: the end marker ends it, caps hold per member and in all, sizes it cannot follow are refused', () => {
    const tarOf = (entries: TarEntry[]) => makeTar(entries);
    const guard = (total = 1_000_000) => new TarGuard({ total, member: (name) => (name.endsWith('.bin') ? Infinity : 100) });
    // Everything after the end-of-archive marker is not passed on, however much follows.
    const g = guard();
    const archive = Buffer.concat([tarOf([{ path: 'a.bin', data: Buffer.alloc(700) }]), Buffer.alloc(100_000)]);
    const passed = g.take(archive);
    assert.ok(g.ended);
    assert.equal(passed.length, 512 + 1024 + 1024); // header, data (padded), the marker and one more zero block
    // Past the total (each member within its own cap): refused within the chunk that passes it.
    assert.throws(() => guard(5_000).take(tarOf([{ path: 'a.bin', data: Buffer.alloc(3000) }, { path: 'b.bin', data: Buffer.alloc(3000) }])), /it unpacks to more than 5,000 bytes/);
    // A member over its cap: at its header, before any of its bytes.
    assert.throws(() => guard().take(tarOf([{ path: 'readme.html', data: Buffer.alloc(200) }]).subarray(0, 512)), /member "readme\.html" is 200 bytes, more than a member of CIFAR-10 of that name has \(100\)/);
    // A size in base-256 (over 8 GB), and a pax header that would move the members' boundaries.
    const huge = tarOf([{ path: 'a.bin', data: Buffer.alloc(0) }]).subarray(0, 512);
    huge[124] = 0x80;
    assert.throws(() => guard().take(huge), /base-256/);
    const pax = tarOf([{ path: 'PaxHeader', data: Buffer.from('20 size=99999999999\n') }]);
    pax[156] = 'x'.charCodeAt(0);
    assert.throws(() => guard().take(pax), /a pax header sets a member's size/);
  });


  test('2. Ctrl-C while unpacking stops it: 130, no temporary folder, no lock, no data', { skip: noStrace }, async () => {
    // The official layout, of zeros (184 MB to unpack), read from a slow disk: each read of the archive takes
    // 100 ms (strace delays it), so that the unpacking takes seconds, as the official archive's does on a slow
    // machine. It used to go on to the end, and install the data, before the Ctrl-C was heard.
    const archive = path.join(tmpDir(), 'cifar-10-binary.tar.gz');
    const meta = cifarEntries().find((e) => e.path.endsWith(META_FILE))!;
    await zeroArchive(archive, [...TRAIN_FILES, TEST_FILE].map((f) => ({ path: `${BATCHES_DIR}/${f}`, size: RECORD_BYTES * 10_000 })), [meta]);
    const data = tmpDir();
    let sent = false;
    let poll: NodeJS.Timeout | undefined;
    const r = await runCliUnder(strace('read:delay_exit=100000', [archive]), ['download', '--data-dir', data, '--url', archive, '--no-verify'], {
      timeoutMs: 60_000,
      onStderr: (_, child) => {
        // Once the unpacking has begun (its temporary folder is there), Ctrl-C.
        poll ??= setInterval(() => {
          if (!sent && fs.readdirSync(data).some((n) => n.startsWith('.cifar-10-batches-bin.tmp-'))) {
            sent = true;
            // To the CLI, strace's child (strace itself would stop tracing, and the reads their delay).
            process.kill(Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]), 'SIGINT');
          }
        }, 5);
      },
    });
    clearInterval(poll);
    assert.ok(sent, 'the unpacking was seen');
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(fs.readdirSync(data), [], 'no temporary folder, no lock, no half data');
    assert.match(r.stderr, /^error: interrupted by SIGINT while getting the data$/m);
  });

  test('3. a download far larger than an archive is refused: as announced, and as sent', async () => {
    const chunk = Buffer.alloc(1 << 20);
    const server = await serve((req, res) => {
      if (req.headers.range) return void res.writeHead(500).end(); // what an older version retried into
      // Zeros without end (bounded here at 300 MB), announced as 50 GB or not announced at all.
      res.writeHead(200, req.url!.includes('announced') ? { 'content-length': '50000000000' } : {});
      let sentBytes = 0;
      const pump = () => {
        while (sentBytes < 300 * chunk.length && !res.destroyed) {
          sentBytes += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    try {
      const dir = tmpDir();
      const a = await runCli(['download', '--data-dir', dir, '--url', server.url.replace(/[^/]+$/, 'announced.tar.gz'), '--no-verify'], { timeoutMs: 60_000 });
      assert.equal(a.code, 1, a.stderr);
      assert.match(a.stderr, /^error: http:\/\/127\.0\.0\.1:\d+\/announced\.tar\.gz announces 50,000,000,000 bytes, more than the 268,435,456 bytes a CIFAR-10 archive can have$/m);
      assert.deepEqual(listFiles(dir), []);
      noTrace(a.stderr);
      // Not announced: cut as the bytes pass the cap (here a small one, to keep the test quick), the part removed.
      const dir2 = tmpDir();
      await assert.rejects(
        fetchArchive({ url: server.url.replace(/[^/]+$/, 'endless.tar.gz'), dest: path.join(dir2, 'a.tar.gz'), md5: null, maxBytes: 3 << 20, retryDelayMs: 0 }),
        /^AlexnetError: http:\/\/127\.0\.0\.1:\d+\/endless\.tar\.gz sent more than 3,145,728 bytes, more than the 3,145,728 bytes allowed$/,
      );
      assert.deepEqual(listFiles(dir2), []);
    } finally {
      await server.close();
    }
  });

  test('9. a drip (a byte every 100 ms) is cut by the low-speed limit, retried, and given up', async () => {
    const server = await serve((req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('x')), 100);
      res.on('close', () => clearInterval(timer));
    });
    try {
      // A stall limit of 200 ms: each 400 ms must bring 64 KiB.
      const r = await runCli(['download', '--data-dir', tmpDir(), '--url', server.url, '--no-verify'], { env: { ALEXNET_STALL_MS: '200' }, timeoutMs: 60_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: download of http:\/\/127\.0\.0\.1:\d+\/cifar-10-binary\.tar\.gz failed after 6 attempts: only \d+ bytes in 0\.4 s$/m);
      assert.equal(server.requests.length, 6);
    } finally {
      await server.close();
    }
  });

  test('10. 429 with Retry-After is waited for and retried', async () => {
    const server = await serve((req, res, n) => (n === 1 ? res.writeHead(429, { 'retry-after': '1' }).end() : sendWithRange(req, res, archiveBytes)));
    try {
      const r = await runCli(['download', '--data-dir', tmpDir(), '--url', server.url, '--md5', md5(archiveBytes)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^download: server answered 429 Too Many Requests; retrying in 1\.0 s \(attempt 2 of 6\)$/m);
    } finally {
      await server.close();
    }
  });

  test('11. a password in --url is never printed nor recorded', async () => {
    const server = await serve((req, res) => (req.url!.endsWith('missing.tar.gz') ? res.writeHead(404).end() : sendWithRange(req, res, archiveBytes)));
    try {
      const withPassword = (file: string) => server.url.replace('http://', 'http://user:s3cret@').replace(/[^/]+$/, file);
      const missing = await runCli(['download', '--data-dir', tmpDir(), '--url', withPassword('missing.tar.gz')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error: http:\/\/user:\*\*\*@127\.0\.0\.1:\d+\/missing\.tar\.gz answered 404 Not Found$/m);
      const dir = tmpDir();
      const ok = await runCli(['download', '--data-dir', dir, '--url', withPassword('cifar-10-binary.tar.gz'), '--md5', md5(archiveBytes)]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stderr, /from http:\/\/user:\*\*\*@127\.0\.0\.1/);
      for (const text of [missing.stderr, ok.stderr, fs.readFileSync(path.join(dir, BATCHES_DIR, 'manifest.json'), 'utf8')]) assert.doesNotMatch(text, /s3cret/);
    } finally {
      await server.close();
    }
  });

  test('23. a file of the user\'s at DIR/cifar-10-binary.tar.gz is neither used nor deleted', async () => {
    const server = await serve((req, res) => sendWithRange(req, res, archiveBytes));
    try {
      const dir = tmpDir();
      fs.writeFileSync(path.join(dir, 'cifar-10-binary.tar.gz'), 'my own file');
      const r = await runCli(['download', '--data-dir', dir, '--url', server.url, '--md5', md5(archiveBytes)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(dir, 'cifar-10-binary.tar.gz'), 'utf8'), 'my own file');
    } finally {
      await server.close();
    }
  });

  test('7. eval of a checkpoint from elsewhere: its recorded URL is not fetched, its recorded data dir not written', async () => {
    const { dataDir } = await trainedModel();
    const server = await serve((req, res) => sendWithRange(req, res, archiveBytes));
    try {
      const dir = await checkpointCopy();
      const elsewhere = path.join(tmpDir(), 'their-data');
      const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
      state.data = { ...state.data, url: server.url, dataDir: elsewhere, md5: md5(archiveBytes) };
      fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
      // The data this user has: in the default data dir.
      const r = await runCli(['eval', '--model', dir], { env: { ALEXNET_DATA_DIR: dataDir } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`^the run's data \\(${elsewhere}\\) is not on this machine; using ${dataDir}$`, 'm'));
      assert.equal(server.requests.length, 0, 'the recorded URL was not fetched');
      assert.ok(!fs.existsSync(elsewhere), 'nothing written where the checkpoint says');
    } finally {
      await server.close();
    }
  });

  test('19. a hand-unpacked batch larger than any of CIFAR-10\'s: one line, nothing read', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, BATCHES_DIR));
    for (const e of cifarEntries({ trainPerBatch: 10, test: 10 })) if (e.data && !e.path.endsWith('.html')) fs.writeFileSync(path.join(dir, e.path), e.data);
    // 2.15 GB, sparse: past what Node.js reads into one buffer (ERR_FS_FILE_TOO_LARGE and a stack before).
    fs.truncateSync(path.join(dir, BATCHES_DIR, TRAIN_FILES[0]!), RECORD_BYTES * 700_000);
    const r = await runCli(['train', '--epochs', '1', '--data-dir', dir, ...RECIPE]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cifar-10-batches-bin\/data_batch_1\.bin is 2,151,100,000 bytes; a CIFAR-10 batch has at most 30,730,000$/m);
    noTrace(r.stderr);
  });
});

describe('disks, streams and signals', () => {
  let model: string;
  let data: string[];
  before(async () => ({ model, data } = await trainedModel()));

  test('4. EIO on fsync, rename or a read, and EDQUOT: one line naming the file or the operation', { skip: noStrace }, async () => {
    const { dataDir } = await trainedModel();
    const dir = await checkpointCopy();
    const weights = fs.readdirSync(dir).find((f) => f.startsWith('weights-'))!;
    const image = png(path.join(tmpDir(), 'cat.png'));
    const archive = archiveFile();
    const cases: [string, string[], string[], RegExp][] = [
      ['fsync EIO', strace('fsync:error=EIO'), ['train', '--resume', dir, '--epochs', '2'], new RegExp(`^error: an input/output error \\(the disk or the file system failed\\) while saving the checkpoint in ${dir}\\nhint: check the disk \\(the kernel log says what failed\\); the last checkpoint in ${dir} is whole: continue with \\x60`, 'm')],
      ['fsync EDQUOT', strace('fsync:error=EDQUOT'), ['train', '--resume', dir, '--epochs', '2'], new RegExp(`^error: disk quota exceeded while saving the checkpoint in ${dir}$`, 'm')],
      ['rename EIO', strace('rename:error=EIO'), ['train', '--epochs', '1', '--save', path.join(tmpDir(), 'new'), ...RECIPE, ...data], /^error: an input\/output error \(the disk or the file system failed\) while saving the checkpoint in .*\nhint: check the disk \(the kernel log says what failed\), then run the command again \(nothing was saved yet\)$/m],
      ['state.json', strace('read:error=EIO', [path.join(dir, 'state.json')]), ['eval', '--model', dir, '-q'], new RegExp(`^error: cannot read state\\.json in ${dir}: an input/output error \\(the disk or the file system failed\\)$`, 'm')],
      ['weights', strace('read:error=EIO', [path.join(dir, weights)]), ['eval', '--model', dir, '-q'], new RegExp(`^error: cannot read ${weights} in ${dir}: an input/output error`, 'm')],
      ['a batch', strace('read,pread64:error=EIO', [path.join(dataDir, BATCHES_DIR, TRAIN_FILES[0]!)]), ['train', '--epochs', '1', '--data-dir', dataDir, ...RECIPE, '-q'], /^error: cannot read cifar-10-batches-bin\/data_batch_1\.bin: an input\/output error/m],
      ['the archive', strace('read:error=EIO', [archive]), ['download', '--data-dir', tmpDir(), '--url', archive, '--md5', md5(archiveBytes)], new RegExp(`^error: cannot read archive ${archive}: an input/output error`, 'm')],
      ['an image', strace('read:error=EIO', [image]), ['predict', '--model', dir, image], new RegExp(`^error: cannot read ${image}: an input/output error`, 'm')],
    ];
    for (const [what, wrapper, args, re] of cases) {
      const r = await runCliUnder(wrapper, args);
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, re, what);
      assert.equal(errorLines(r.stderr).length, 1, what);
      noTrace(r.stderr);
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).epoch, 1, 'the checkpoint is the one before');
  });

  test('5. results to a full stdout (`> /dev/full`): one line and exit 1, after the checkpoint is safe', { skip: noDevFull }, async () => {
    const image = png(path.join(tmpDir(), 'cat.png'));
    const save = path.join(tmpDir(), 'run');
    const cases: [string[], string][] = [
      [['eval', '--model', model, '-q'], 'eval'],
      [['predict', '--json', '--model', model, image, '-q'], 'predict'],
      [['train', '--json', '--epochs', '2', '--save', save, ...RECIPE, ...data, '-q'], 'train'],
    ];
    for (const [args, what] of cases) {
      const r = await runCli(args, { stdoutTo: '/dev/full' });
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, 'error: cannot write results: no space left on device\nhint: send stdout where there is room (a file on another disk, or a pipe)\n', what);
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')).epoch, 1, 'the first epoch was saved before its line failed');
  });

  test('12. a first save that fails leaves nothing, and its hint does not promise a previous checkpoint', { skip: noMount }, async () => {
    const m = tmpfs('1m') as { dir: string; unmount: () => void }; // smaller than the 2.3 MB of weights
    const mnt = m.dir;
    try {
      const save = path.join(mnt, 'run');
      const r = await runCli(['train', '--epochs', '1', '--save', save, ...RECIPE, ...data]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: no space left on device while saving the checkpoint in ${save}\\nhint: free space there, then run the command again \\(nothing was saved yet\\)$`, 'm'));
      assert.deepEqual(fs.readdirSync(mnt), [], 'the run\'s folder is gone with its half checkpoint');
    } finally {
      m.unmount();
    }
  });

  test('12. a first save that fails at any step is rolled back entirely', async () => {
    await useBackend('cpu');
    const state: TrainState = {
      version: 1,
      recipe: { ...lessonRecipe(1), epochs: 2, batchSize: 16 },
      limitTrain: null, limitTest: null, epoch: 1, batch: 0, partial: null,
      history: [{ epoch: 0, trainLoss: 1, trainAcc: 0.5, validLoss: 1, validAcc: 0.5, seconds: 1, imagesPerSecond: 1 }],
    };
    const m = createModel({ seed: 1 });
    try {
      for (const step of ['weights', 'model', 'metrics'] as SaveStep[]) {
        const dir = tmpDir();
        await assert.rejects(saveCheckpoint(dir, m, state, (s) => {
          if (s === step) throw new Error('disk full');
        }), /disk full/);
        assert.deepEqual(fs.readdirSync(dir), [], `failed after ${step}`);
      }
    } finally {
      m.dispose();
    }
  });

  test('13. the next save removes what killed saves left: temporaries and unused weights', async () => {
    const dir = await checkpointCopy();
    fs.writeFileSync(path.join(dir, '.weights-0123456789abcdef.bin.tmp-999999999-0123456789ab'), Buffer.alloc(2_307_112));
    fs.writeFileSync(path.join(dir, '.state.json.tmp-999999999-0123456789ab'), '{');
    fs.writeFileSync(path.join(dir, 'weights-0123456789abcdef.bin'), Buffer.alloc(2_307_112)); // a kill before its unlink
    const r = await runCli(['train', '--resume', dir, '--epochs', '2', '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.') || f.startsWith('weights-')).length, 1, fs.readdirSync(dir).join(' '));
  });

  test('14. SIGHUP (a closed terminal) stops like SIGTERM: 130, its position saved', async () => {
    const save = path.join(tmpDir(), 'run');
    let sent = false;
    const r = await runCli(['train', '--epochs', '50', '--save', save, ...RECIPE, ...data], {
      onStdout: (chunk, child) => {
        if (!sent && chunk.includes('Epoch 0.')) {
          sent = true;
          child.kill('SIGHUP');
        }
      },
    });
    assert.equal(r.signal, null, 'not killed by the signal');
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: interrupted by SIGHUP at epoch \\d+, batch \\d+; checkpoint saved in ${save}$`, 'm'));
    assert.ok(JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')).epoch >= 1);
  });

  test('21. an empty path is refused for every path flag, and nothing is written where the command ran', async () => {
    const cwd = tmpDir();
    const cases: [string[], string][] = [
      [['train', '--epochs', '1', '--save', '', ...RECIPE, ...data], '--save'],
      [['train', '--resume', ''], '--resume'],
      [['eval', '--model', ''], '--model'],
      [['samples', '--out', '', ...data], '--out'],
      [['download', '--data-dir', ''], '--data-dir'],
      [['download', '--url', ''], '--url'],
      [['predict', '--model', model, ''], 'IMAGE'],
    ];
    for (const [args, flag] of cases) {
      const r = await runCli(args, { cwd });
      assert.equal(r.code, 2, `${flag}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error: ${flag} needs a path, got an empty one$`, 'm'), flag);
    }
    assert.deepEqual(fs.readdirSync(cwd), []);
  });
});

describe('locks', () => {
  test('6. a lock of pid 1 in a new pid namespace, where this run is pid 1 too, is taken over', { skip: noUnshare }, async () => {
    const dir = await checkpointCopy();
    fs.writeFileSync(path.join(dir, '.alexnet-train.lock'), '1\n'); // an older version's lock, in a container
    const r = await runCliUnder(['unshare', '--pid', '--fork', '--mount-proc'], ['train', '--resume', dir, '--epochs', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^taking over the lock .* of a run that is gone \(pid 1 is this process's own: a previous process had it\)$/m);
  });

  test('6. a lock whose pid now belongs to another process is taken over; a wait for a live one is bounded', async () => {
    const stranger = liveStranger();
    try {
      const dir = tmpDir();
      const file = path.join(dir, 'lock');
      const me = currentOwner();
      // The pid is alive, but started at another time than the lock's owner did: the pid was reused.
      fs.writeFileSync(file, JSON.stringify({ pid: stranger.pid, boot: me.boot, start: 1 }));
      const notes: string[] = [];
      const release = await acquireLock(file, { what: 'a test', wait: true, hint: '', onNote: (n) => notes.push(n) });
      await release();
      assert.match(notes.join('\n'), me.boot === null ? /pid \d+ is gone|taking over/ : new RegExp(`\\(pid ${stranger.pid} is now another process\\)`));
      // Its real owner (the same start time) holds it: waited for, up to the bound.
      for (let i = 0; i < 50 && startTime(stranger.pid) === null; i++) await new Promise((r) => setTimeout(r, 10));
      fs.writeFileSync(file, JSON.stringify({ pid: stranger.pid, boot: me.boot, start: startTime(stranger.pid) }));
      await assert.rejects(acquireLock(file, { what: 'a test', wait: true, hint: '', pollMs: 20, maxWaitMs: 300 }), new RegExp(`^AlexnetError: gave up waiting for a test \\(pid ${stranger.pid}\\) after 0\\.\\d s$`));
    } finally {
      stranger.stop();
    }
  });

  test('15. an empty lock is being written: the next run waits for it, then sees the owner', async () => {
    const dir = await checkpointCopy();
    const lock = path.join(dir, '.alexnet-train.lock');
    fs.writeFileSync(lock, ''); // created, its owner not yet written (as an older version did)
    const stranger = liveStranger();
    try {
      setTimeout(() => fs.writeFileSync(lock, `${stranger.pid}\n`), 1000);
      const r = await runCli(['train', '--resume', dir, '--epochs', '2', '-q']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: a training run saving into ${dir} is already running \\(pid ${stranger.pid}; lock `, 'm'));
      assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).epoch, 1, 'nothing trained into the folder');
    } finally {
      stranger.stop();
    }
  });
});

describe('images, names and numbers', () => {
  let model: string;
  before(async () => ({ model } = await trainedModel()));

  /**
   * A baseline JPEG of one grey, made by hand: `components` (1, grey, or 3 at full resolution, as jpeg-js writes)
   * one-code Huffman tables, every block empty. Tiny to store; a decoder still does all the work.
   */
  function flatJpeg(w: number, h: number, components: 1 | 3): Buffer {
    const seg = (marker: number, body: number[] | Buffer) => Buffer.concat([Buffer.from([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 255]), Buffer.from(body)]);
    const table = (cls: number) => [cls << 4, 1, ...Array<number>(15).fill(0), 0]; // one code, of length 1, for 0
    const ids = Array.from({ length: components }, (_, i) => i + 1);
    const blocks = Math.ceil(w / 8) * Math.ceil(h / 8) * components;
    return Buffer.concat([
      Buffer.from([0xff, 0xd8]),
      seg(0xdb, [0, ...Array<number>(64).fill(1)]),
      seg(0xc0, [8, h >> 8, h & 255, w >> 8, w & 255, components, ...ids.flatMap((id) => [id, 0x11, 0])]),
      seg(0xc4, [...table(0), ...table(1)]),
      seg(0xda, [components, ...ids.flatMap((id) => [id, 0]), 0, 63, 0]),
      Buffer.alloc(Math.ceil((blocks * 2) / 8)), // each block: DC difference 0, then end of block
      Buffer.from([0xff, 0xd9]),
    ]);
  }

  // 59 megapixels of grey: past jpeg-js's own memory cap (512 MB, exceeded by 54 MB), which refused such JPEGs as
  // damaged before decodeImage raised it, and decoded in 2.1 s where 42 megapixels in three components took 7.3 s
  // (jpeg.decode alone, Intel Xeon, 2026-12-07; in `npm test`, two files at a time, that test took 32-46 s).
  test('8. a 59-megapixel JPEG is read (the README allows 100); a 101-megapixel one is too large', async () => {
    const dir = tmpDir();
    const big = path.join(dir, 'big.jpg');
    fs.writeFileSync(big, flatJpeg(7700, 7700, 1));
    const huge = path.join(dir, 'huge.jpg');
    fs.writeFileSync(huge, flatJpeg(10_050, 10_050, 3).subarray(0, 4096)); // refused at its header
    const r = await runCli(['predict', '--model', model, big]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^.*big\.jpg: \w+ \d\.\d{3}/m);
    const h = await runCli(['predict', '--model', model, huge, big]);
    assert.equal(h.code, 1);
    assert.match(h.stderr, /^error: cannot read .*huge\.jpg: 10050 x 10050 pixels is too large: more than 100 megapixels$/m);
  });

  test('16. a 69-byte PNG that claims 16,384 x 6,103 pixels is truncated, said before decoding', async () => {
    const file = path.join(tmpDir(), 'cut.png');
    const ihdr = Buffer.alloc(25);
    ihdr.writeUInt32BE(13, 0);
    ihdr.write('IHDR', 4, 'latin1');
    ihdr.writeUInt32BE(16384, 8);
    ihdr.writeUInt32BE(6103, 12);
    ihdr.set([8, 6, 0, 0, 0], 16);
    const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ihdr, Buffer.from('\x00\x00\x40\x00IDATx\x9c', 'latin1'), Buffer.alloc(69 - 8 - 25 - 10)]);
    assert.equal(bytes.length, 69);
    fs.writeFileSync(file, bytes);
    const r = await runCli(['predict', '--model', model, file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot read .*cut\.png: the PNG data is damaged \(.*\)$/m);
    assert.equal(r.stdout, '');
  });

  test('22. 300 images under `ulimit -n 256`: read one at a time', async () => {
    const dir = tmpDir();
    const files = Array.from({ length: 300 }, (_, i) => png(path.join(dir, `img${i}.png`), i % 256));
    const r = await runCliUnder(withUlimit('-n 256'), ['predict', '--model', model, ...files]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 300);
  });

  test('17. file names and lock files cannot forge lines or drive the terminal; bidi controls in class names are refused', async () => {
    const evil = path.join(tmpDir(), 'a\nerror: forged\u001b]0;pwned\u0007.png');
    const r = await runCli(['predict', '--model', model, evil]);
    assert.equal(r.code, 1);
    assert.equal(errorLines(r.stderr).length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /[\u001b\u0007]/);
    assert.match(r.stderr, /^error: cannot read .*a\?error: forged\?\]0;pwned\?\.png: no such file$/m);

    const dir = await checkpointCopy();
    const lock = path.join(dir, '.alexnet-train.lock');
    fs.writeFileSync(lock, '\u001b[2J\nerror: forged\n');
    fs.utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const l = await runCli(['train', '--resume', dir, '--epochs', '2']);
    assert.equal(l.code, 0, l.stderr);
    assert.doesNotMatch(l.stderr, /\u001b|forged/);
    assert.match(l.stderr, /^taking over the lock .* of a run that is gone \(it is empty or unreadable, and \d+ s old\)$/m);

    const bidi = gzipTar(cifarEntries({ trainPerBatch: 3, test: 3 }).map((e) => (e.path.endsWith(META_FILE) ? { ...e, data: Buffer.from('air\u202eenalp\nb\nc\nd\ne\nf\ng\nh\ni\nj\n') } : e)));
    const b = await runCli(['download', '--data-dir', tmpDir(), '--url', archiveFile(bidi), '--no-verify']);
    assert.equal(b.code, 1);
    assert.match(b.stderr, /^error: batches\.meta\.txt: class name 1 has control or bidirectional characters/m);
  });

  test('18. non-finite weights are refused, and so are sums that are not finite in float32', async () => {
    // An exported model (no state.json, so no hash to check) whose first weight is NaN.
    const dir = await checkpointCopy();
    fs.rmSync(path.join(dir, 'state.json'));
    const weights = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('weights-'))!);
    const bytes = fs.readFileSync(weights);
    bytes.writeFloatLE(NaN, 0);
    fs.writeFileSync(weights, bytes);
    const n = await runCli(['eval', '--model', dir, ...(await trainedModel()).data]);
    assert.equal(n.code, 1, n.stderr);
    assert.match(n.stderr, /^error: cannot load the model in .*: its weights hold a non-finite value \(NaN at 0 of 576,778\)$/m);

    // A resumed partial epoch whose loss sum overflows float32 (it printed `Train Loss: Infinity` and saved null).
    const run = await checkpointCopy();
    const state = JSON.parse(fs.readFileSync(path.join(run, 'state.json'), 'utf8'));
    fs.writeFileSync(path.join(run, 'state.json'), JSON.stringify({ ...state, batch: 1, partial: { lossSum: 1e308, accSum: 0, seconds: 0 } }));
    const p = await runCli(['train', '--resume', run, '--epochs', '2']);
    assert.equal(p.code, 1, p.stderr);
    assert.match(p.stderr, /state\.json: partial must be null or \{lossSum, accSum, seconds\}: finite float32 sums/);
    assert.equal(p.stdout, '');
  });
});

describe('backends', () => {
  test('20. bench and eval hold the backend\'s batch limit, as train does', async () => {
    const { model } = await trainedModel();
    const b = await runCli(['bench', '--backend', 'wasm', '--batch-size', '8192', '--steps', '1'], { timeoutMs: 60_000 });
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /^error: --batch-size 8192 is more than the wasm backend holds \(4096\)$/m);
    const e = await runCli(['eval', '--backend', 'wasm', '--model', model, '--batch-size', '8192'], { timeoutMs: 60_000 });
    assert.equal(e.code, 2, e.stderr);
    assert.match(e.stderr, /^error: --batch-size 8192 is more than the wasm backend holds \(4096\)$/m);
  });

  test('24. Dawn\'s warnings stay off stderr under -q', async (t) => {
    const r = await runCli(['summary', '--backend', 'webgpu', '-q'], { stderrToFile: true });
    if (r.code !== 0 && process.env.ALEXNET_REQUIRE_WEBGPU !== '1') return t.skip(`webgpu does not start here: ${r.stderr.split('\n')[0]}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  test('25. under `ulimit -v`, wasm says what limit it hit, in one line; auto does not fall back to the cpu backend', async () => {
    const { data } = await trainedModel();
    const args = ['train', '--epochs', '1', ...RECIPE, ...data];
    const w = await runCliUnder(withUlimit('-v 1500000'), [...args, '--backend', 'wasm'], { timeoutMs: 60_000 });
    assert.equal(w.code, 1, w.stderr);
    assert.match(w.stderr, /^error: --backend wasm: the wasm backend did not start: out of memory; this process may use at most 1,465 MiB of address space \(ulimit -v\)$/m);
    assert.match(w.stderr, /^hint: raise the limit \(`ulimit -v unlimited`\)/m);
    noTrace(w.stderr);
    if (nativeInstalled) return; // there, auto takes native TensorFlow, which starts under this limit
    const a = await runCliUnder(withUlimit('-v 1500000'), args, { timeoutMs: 60_000 });
    assert.equal(a.code, 1, a.stderr);
    assert.match(a.stderr, /^error: no backend starts here: .*the wasm backend did not start: out of memory; this process may use at most 1,465 MiB of address space \(ulimit -v\)$/m);
    assert.equal(errorLines(a.stderr).length, 1);
    noTrace(a.stderr);
  });

  test('--gpu without a GPU: the hint gives each GPU backend\'s fix, not the CPU-only package', async (t) => {
    const r = await runCli(['train', '--gpu', '--epochs', '1', '--data-dir', tmpDir(), '--url', path.join(tmpDir(), 'none.tar.gz')]);
    if (!/no GPU backend works here/.test(r.stderr)) return t.skip('a GPU backend works here');
    assert.equal(r.code, 3, r.stderr);
    const hint = r.stderr.split('\n').find((l) => l.startsWith('hint:'))!;
    assert.match(hint, /tfjs-node-gpu/);
    assert.doesNotMatch(hint, /@tensorflow\/tfjs-node@/, 'the CPU-only package does not answer --gpu');
    assert.match(hint, /Vulkan/);
    assert.match(hint, new RegExp(`\`node ${BIN.replace(/[.]/g, '\\.')} doctor\` checks each$`));
  });
});
