// Past CIFAR-10 (issue #27): CIFAR-100 from a generated archive of its layout, and a folder of the user's own PNG
// and JPEG images, each end to end as a user runs them (train, eval, predict, samples), and their bad input.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { dataRequest } from '../src/commands/download.js';
import { CIFAR100_LABELS, decodeBatch } from '../src/data/cifar.js';
import { ensureFolderRecords, listFolder } from '../src/data/folder.js';
import { cifar100Entries, cifarEntries, gzipTar, writeImageFolder } from '../scripts/fixture.js';
import { ROOT, archiveFile, listFiles, noTrace, runCli, tmpDir } from './helpers.js';

const EPOCH_LINE = /^Epoch \d+\. Train Loss: \d+\.\d{6}, Train Acc: \d\.\d{6}, Valid Loss: \d+\.\d{6}, Valid Acc: \d\.\d{6}, Time \d\d:\d\d:\d\d$/;
const QUICK = ['--batch-size', '16', '--seed', '3', '--threads', '1'];

/** One error line and one hint line on stderr, the exit code, nothing on stdout. */
function refused(r: { code: number | null; stdout: string; stderr: string }, code: number, re: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n').filter((l) => !/^(backend: |data: |image folder |--skip-bad-images: )/.test(l));
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0]!, re);
  assert.match(lines[1]!, /^hint: /);
  noTrace(r.stderr);
}

describe('--dataset cifar100', () => {
  const archive = archiveFile(gzipTar(cifar100Entries({ train: 300, test: 100 })), 'cifar-100-binary.tar.gz');

  test('fine labels: train, eval and predict name its 100 classes; state.json and --json record the data set', async () => {
    const dataDir = tmpDir();
    const run = path.join(tmpDir(), 'run');
    const data = ['--dataset', 'cifar100', '--data-dir', dataDir, '--url', archive, '--no-verify'];
    const r = await runCli(['train', ...data, '--epochs', '1', ...QUICK, '--save', run]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), EPOCH_LINE);
    assert.match(r.stderr, /^CIFAR-100 ready in .*cifar-100-binary \(400 records\)$/m);
    assert.match(r.stderr, /^data: NOT the official CIFAR-100 \(archive MD5 [0-9a-f]{32}, 400 records, from /m);
    const state = JSON.parse(fs.readFileSync(path.join(run, 'state.json'), 'utf8')) as { classNames: string[]; confusion: number[][]; data: Record<string, unknown> };
    assert.equal(state.classNames.length, 100);
    assert.equal(state.classNames[0], 'aquatic_0');
    assert.equal(state.confusion.length, 100);
    assert.deepEqual([state.data.dataset, state.data.labels], ['cifar100', 'fine']);

    const e = await runCli(['eval', '--model', run, '--json', '-q']);
    assert.equal(e.code, 0, e.stderr);
    const ej = JSON.parse(e.stdout) as { images: number; perClass: { name: string }[]; confusion: number[][]; data: { dataset: string; classes: number } };
    assert.equal(ej.images, 100);
    assert.equal(ej.perClass.length, 100);
    assert.equal(ej.perClass[99]!.name, 'vehicles_4');
    assert.deepEqual([ej.data.dataset, ej.data.classes], ['cifar100', 100]);

    // A model of 100 classes on CIFAR-10's data is refused, saying which data set it needs.
    const cifar10 = archiveFile(gzipTar(cifarEntries({ trainPerBatch: 2, test: 20 })));
    const wrong = await runCli(['eval', '--model', run, '--data-dir', dataDir, '--url', cifar10, '--no-verify', '-q']);
    refused(wrong, 2, /^error: the model in .* has 100 classes; the data \(CIFAR-10\) has 10$/);
    assert.match(wrong.stderr, /hint: evaluate it on its data: --dataset cifar100/);

    const img = path.join(tmpDir(), 'one.png');
    const s = await runCli(['samples', ...data, '--count', '3', '--out', img, '-q']);
    assert.equal(s.code, 0, s.stderr);
    const p = await runCli(['predict', '--model', run, '--top', '100', '--json', '-q', img]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal((JSON.parse(p.stdout) as { top: unknown[] }).top.length, 100);
  });

  test('--labels coarse: 20 superclasses, and a resume keeps the run\'s data set', async () => {
    const dataDir = tmpDir();
    const run = path.join(tmpDir(), 'run');
    const data = ['--dataset', 'cifar100', '--labels', 'coarse', '--data-dir', dataDir, '--url', archive, '--no-verify'];
    const r = await runCli(['train', ...data, '--epochs', '1', ...QUICK, '--limit-train', '64', '--save', run, '-q']);
    assert.equal(r.code, 0, r.stderr);
    const state = JSON.parse(fs.readFileSync(path.join(run, 'state.json'), 'utf8')) as { classNames: string[]; data: Record<string, unknown> };
    assert.deepEqual([state.classNames.length, state.classNames[19], state.data.labels], [20, 'vehicles_2', 'coarse']);
    const again = await runCli(['train', '--resume', run, '--epochs', '2', '-q']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout.trim(), /^Epoch 1\. /);
    const s = await runCli(['summary', '--classes', '20', '--json', '-q']);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual((JSON.parse(s.stdout) as { outputShape: number[] }).outputShape, [1, 20]);
  });

  test('its records are checked: both labels in range; --labels and --dataset refused where they mean nothing', async () => {
    const records = cifar100Entries({ train: 5, test: 5 }).find((e) => e.path.endsWith('test.bin'))!.data!;
    const bad = Buffer.from(records);
    bad[3074 + 1] = 100; // record 1's fine label
    assert.throws(() => decodeBatch(bad, 'test.bin', undefined, 0, CIFAR100_LABELS.fine), /test\.bin: record 1 has fine label 100, outside 0\.\.99/);
    const split = decodeBatch(records, 'test.bin', undefined, 0, CIFAR100_LABELS.coarse);
    assert.deepEqual([...split.labels], [0, 0, 0, 0, 0]);
    assert.equal(dataRequest({ dataset: 'cifar100' }).md5, '03b5dce01913d631647c71ecec9e9cb8');
    assert.match(dataRequest({ dataset: 'cifar100' }).url, /cifar-100-binary\.tar\.gz$/);
    for (const [args, re] of [
      [['--labels', 'coarse'], /^error: --labels is CIFAR-100's \(fine: 100 classes, coarse: 20\)$/m],
      [['--dataset', 'cifar100', '--images', tmpDir()], /^error: --images reads a folder: --dataset is for a downloaded data set$/m],
      [['--dataset', 'imagenet'], /^error: option '--dataset <name>' argument 'imagenet' is invalid/],
    ] as const) {
      const r = await runCli(['train', ...args, '--epochs', '1']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
      noTrace(r.stderr);
    }
  });
});

describe('--images DIR', () => {
  test('train/ and test/ folders of PNG and JPEG: the network learns them; eval, predict and samples name the classes', async () => {
    const images = tmpDir();
    writeImageFolder(images, { classes: ['cat', 'dog', 'ship'], perClass: 16, test: 6 });
    const dataDir = tmpDir();
    const run = path.join(tmpDir(), 'run');
    const r = await runCli(['train', '--images', images, '--data-dir', dataDir, '--epochs', '4', '--batch-size', '8', '--seed', '2', '--threads', '1', '--save', run]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`^image folder ${images}: 66 images in 3 classes \\(train/ and test/\\), kept as records in `, 'm'));
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 4);
    lines.forEach((l) => assert.match(l, EPOCH_LINE));
    assert.match(lines[3]!, /Valid Acc: 1\.000000/, 'three colours are learnt in four epochs');

    const e = await runCli(['eval', '--model', run]);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /^Correct: 18 of 18 images/m);
    for (const name of ['cat', 'dog', 'ship']) assert.match(e.stdout, new RegExp(`^${name} +6 / 6 +1\\.0000 +1\\.0000 +1\\.0000$`, 'm'));
    assert.match(e.stderr, /^image folder .*: 66 images in 3 classes, read from its records in /m);

    const p = await runCli(['predict', '--model', run, path.join(images, 'test', 'dog', 'dog_1.jpg'), path.join(images, 'test', 'ship', 'ship_2.png')]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /dog_1\.jpg: dog \d\.\d{3}, \w+ \d\.\d{3}, \w+ \d\.\d{3}\n.*ship_2\.png: ship /);

    const png = path.join(tmpDir(), 'grid.png');
    const s = await runCli(['samples', '--images', images, '--data-dir', dataDir, '--classes', '--count', '6', '--out', png, '-q']);
    assert.equal(s.code, 0, s.stderr);
    assert.ok(fs.statSync(png).size > 1000);
  });

  test('a folder without test/: --valid-split holds images out, eval reads the same ones; a change rebuilds the records and says so', async () => {
    const images = tmpDir();
    writeImageFolder(images, { classes: ['a', 'b'], perClass: 10 });
    const dataDir = tmpDir();
    const run = path.join(tmpDir(), 'run');
    const base = ['--images', images, '--data-dir', dataDir, '--epochs', '1', ...QUICK];
    const no = await runCli(['train', ...base]);
    refused(no, 2, /^error: --images .*: no test\/ folder, so there is nothing to validate on$/);
    assert.doesNotMatch(no.stderr, /decoding|kept as records/, 'refused before any file is decoded');
    assert.deepEqual(fs.readdirSync(dataDir), [], 'and no records left behind');
    const r = await runCli(['train', ...base, '--valid-split', '0.25', '--save', run]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kept as records in /);
    const e = await runCli(['eval', '--model', run, '--json']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal((JSON.parse(e.stdout) as { images: number }).images, 5);
    assert.match(e.stderr, /on 5 held-out validation \(the folder has no test\/\) images/);
    // A model of two classes: predict shows both unless told otherwise (its default of 3 is more than there are).
    const p = await runCli(['predict', '--model', run, '-q', path.join(images, 'a', 'a_0.png')]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /a_0\.png: [ab] \d\.\d{3}, [ab] \d\.\d{3}\n$/);
    // The records gone (another machine, a cleaned cache): the folder, where it is, makes them again elsewhere.
    fs.rmSync(dataDir, { recursive: true });
    const elsewhere = tmpDir();
    const moved = await runCli(['eval', '--model', run, '--json'], { env: { ALEXNET_DATA_DIR: elsewhere } });
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal((JSON.parse(moved.stdout) as { images: number }).images, 5);
    assert.match(moved.stderr, /^the run's data \(.*\) is not on this machine; using the image folder .* and .*$/m);
    assert.ok(!fs.existsSync(dataDir), 'the recorded data dir is not written');
    assert.ok(fs.readdirSync(elsewhere).some((f) => f.startsWith('images-')));

    fs.copyFileSync(path.join(images, 'a', 'a_0.png'), path.join(images, 'a', 'a_new.png'));
    fs.rmSync(path.join(images, 'b', 'b_1.jpg'));
    const again = await runCli(['train', ...base, '--valid-split', '0.25', '-q']);
    assert.equal(again.code, 0, again.stderr);
    const verbose = await runCli(['samples', '--images', images, '--data-dir', dataDir, '--out', path.join(tmpDir(), 's.png')]);
    assert.match(verbose.stderr, /read from its records/);
    fs.appendFileSync(path.join(images, 'a', 'a_new.png'), Buffer.alloc(0));
    fs.utimesSync(path.join(images, 'a', 'a_new.png'), new Date(), new Date(Date.now() + 5000));
    const changed = await runCli(['samples', '--images', images, '--data-dir', dataDir, '--out', path.join(tmpDir(), 's.png')]);
    assert.match(changed.stderr, /^image folder .* changed since its records were made \(1 file changed\): making them again$/m);
    const listing = await listFolder(images);
    assert.deepEqual(listing.classNames, ['a', 'b']);
    assert.equal(listing.files.length, 20);
  });

  test('the public layout as it comes: a README and other files beside the class folders, DIR/train without test/ (test/data/photos)', async () => {
    const photos = path.join(ROOT, 'test', 'data', 'photos');
    const images = path.join(tmpDir(), 'cifar10-jpeg');
    fs.cpSync(photos, path.join(images, 'train'), { recursive: true });
    fs.copyFileSync(path.join(photos, 'README.md'), path.join(images, 'README.md'));
    fs.writeFileSync(path.join(images, '.DS_Store'), 'x');
    const listing = await listFolder(images);
    assert.deepEqual(listing.classNames, ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    assert.equal(listing.files.length, 30);
    assert.equal(listing.split, false);
    assert.deepEqual(listing.leftOut.sort(), ['.DS_Store', 'README.md', 'train/README.md', 'train/pil-rgb.bin']);
    const run = path.join(tmpDir(), 'run');
    const dataDir = tmpDir();
    const r = await runCli(['train', '--images', images, '--data-dir', dataDir, '--epochs', '1', '--valid-split', '10', ...QUICK, '--save', run]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^image folder .*cifar10-jpeg: left out 4 files beside the class folders or hidden \(\.DS_Store, README\.md, train\/README\.md, \.\.\.\)$/m);
    assert.match(r.stderr, /: 30 images in 10 classes \(no test\/ folder\), kept as records in /m);
    // The records hold libjpeg-turbo's pixels: PIL's, byte for byte.
    const pil = fs.readFileSync(path.join(photos, 'pil-rgb.bin'));
    const records = fs.readFileSync(path.join(dataDir, fs.readdirSync(dataDir).find((f) => f.startsWith('images-'))!, 'train.bin'));
    const ours = new Set(Array.from({ length: 30 }, (_, k) => Buffer.from(records.subarray(k * 3074 + 2, (k + 1) * 3074)).toString('hex')));
    const theirs = Array.from({ length: 30 }, (_, k) => {
      const hwc = pil.subarray(k * 3072, (k + 1) * 3072);
      const planar = Buffer.alloc(3072);
      for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) planar[c * 1024 + p] = hwc[p * 3 + c]!;
      return planar.toString('hex');
    });
    assert.deepEqual(theirs.filter((t) => !ours.has(t)), [], 'every photograph\'s record is PIL\'s pixels');
  });

  test('the walk: links to a folder read already (a loop, the parent) are named and left out; any depth or width is read', async () => {
    const images = tmpDir();
    writeImageFolder(images, { classes: ['cat', 'dog'], perClass: 9 });
    fs.symlinkSync('.', path.join(images, 'cat', 'loop'));
    fs.symlinkSync('..', path.join(images, 'dog', 'up'));
    const deep = path.join(images, 'dog', ...Array.from({ length: 40 }, (_, i) => `d${i}`));
    fs.mkdirSync(deep, { recursive: true });
    fs.copyFileSync(path.join(images, 'dog', 'dog_0.png'), path.join(deep, 'deep.png'));
    const listing = await listFolder(images);
    assert.equal(listing.files.length, 19, 'the 18 images and the one 41 folders deep, each once');
    assert.ok(listing.files.some((f) => f.file.endsWith('/d39/deep.png')));
    assert.deepEqual(listing.loops.sort(), ['cat/loop', 'dog/up']);
    const r = await runCli(['train', '--images', images, '--data-dir', tmpDir(), '--epochs', '1', '--valid-split', '4', ...QUICK, '-q']);
    assert.equal(r.code, 0, r.stderr);
    const noisy = await runCli(['samples', '--images', images, '--data-dir', tmpDir(), '--out', path.join(tmpDir(), 's.png')]);
    assert.match(noisy.stderr, /^image folder .*: left out 2 links to a folder read already, a loop \(cat\/loop, dog\/up\)$/m);
    // 130,000 files in one folder (inside the 300,000 cap): listed without overflowing the stack.
    const wide = tmpDir();
    fs.mkdirSync(path.join(wide, 'a', 'many'), { recursive: true });
    fs.mkdirSync(path.join(wide, 'b'));
    for (let i = 0; i < 130_000; i++) fs.closeSync(fs.openSync(path.join(wide, 'a', 'many', `${i}.png`), 'w'));
    fs.closeSync(fs.openSync(path.join(wide, 'b', 'x.png'), 'w'));
    assert.equal((await listFolder(wide)).files.length, 130_001);
    fs.rmSync(wide, { recursive: true });
    const sys = await runCli(['train', '--images', '/sys/class', '--data-dir', tmpDir(), '--epochs', '1', '--valid-split', '0.1', ...QUICK]);
    assert.notEqual(sys.code, 0);
    assert.equal(sys.stderr.split('\n').filter((l) => l.startsWith('error:')).length, 1, sys.stderr);
    noTrace(sys.stderr);
  });

  test('the records know their folder: a resume or an eval of the run refuses a folder changed since, naming the change; names come from the folders', async () => {
    const images = tmpDir();
    writeImageFolder(images, { classes: ['a', 'b'], perClass: 8, test: 4 });
    const dataDir = tmpDir();
    const run = path.join(tmpDir(), 'run');
    const first = await runCli(['train', '--images', images, '--data-dir', dataDir, '--epochs', '1', ...QUICK, '--save', run, '-q']);
    assert.equal(first.code, 0, first.stderr);
    // The image replaced (same name, other bytes and time): the resume would train on other data.
    const victim = path.join(images, 'train', 'a', 'a_2.png');
    fs.copyFileSync(path.join(images, 'train', 'a', 'a_0.png'), victim);
    fs.utimesSync(victim, new Date(), new Date(Date.now() + 5000));
    const resume = await runCli(['train', '--resume', run, '--epochs', '2']);
    refused(resume, 1, new RegExp(`^error: the image folder ${images} is not the one ${run} was trained on \\(1 file changed since\\)$`));
    assert.match(resume.stderr, /^hint: put the folder back as it was, or start a new run on it \(without --resume\)$/m);
    // eval of the run: the same refusal, where an added image would score another held-out set.
    fs.copyFileSync(path.join(images, 'test', 'b', 'b_0.png'), path.join(images, 'test', 'b', 'b_new.png'));
    const e = await runCli(['eval', '--model', run]);
    refused(e, 1, /^error: the image folder .* is not the one .* was trained on \(.+ since\)$/);
    assert.match(e.stderr, new RegExp(`^hint: put the folder back as it was, or evaluate on it as it is now with \`.*alexnet eval --model ${run} --images ${images}\`$`, 'm'));
    const asked = await runCli(['eval', '--model', run, '--images', images, '--data-dir', dataDir, '-q']);
    assert.equal(asked.code, 0, asked.stderr);
    // A folder with other class names is not scored as if they were the model's.
    const other = tmpDir();
    writeImageFolder(other, { classes: ['x', 'y'], perClass: 2, test: 2 });
    refused(await runCli(['eval', '--model', run, '--images', other, '--data-dir', tmpDir()]), 2, /^error: the data's classes \(x, y\) are not the ones .* was trained on \(a, b\)$/);
    // A class_names.txt edited in the record cache: the folders name the classes.
    const records = path.join(dataDir, fs.readdirSync(dataDir).find((f) => f.startsWith('images-'))!);
    fs.writeFileSync(path.join(records, 'class_names.txt'), 'evil\nnames\n');
    const again = await runCli(['train', '--images', images, '--data-dir', dataDir, '--epochs', '1', ...QUICK, '--save', path.join(tmpDir(), 'run2'), '--json', '-q']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(fs.readFileSync(path.join(records, 'class_names.txt'), 'utf8'), 'a\nb\n');
    // A data dir inside the folder would be a class next time.
    refused(await runCli(['train', '--images', images, '--data-dir', path.join(images, 'cache'), '--epochs', '1', ...QUICK]), 2, /^error: the data dir .*cache is inside --images .*: its records would be read as images of a class$/);
    assert.ok(!fs.existsSync(path.join(images, 'cache')));
  });

  test('every kind of image predict reads: gray, palette and 16-bit PNG, CMYK and progressive JPEG, not square (test/data/image-kinds, made with Pillow)', async () => {
    const kinds = path.join(ROOT, 'test', 'data', 'image-kinds');
    const dir = tmpDir();
    const place: [string, string, number[]][] = [
      ['warm', 'cmyk.jpg', [200, 30, 40]],
      ['warm', 'palette.png', [200, 30, 40]],
      ['cold', 'progressive.jpg', [30, 160, 220]],
      ['gray', 'gray.png', [100, 100, 100]],
      ['gray', 'gray16.png', [128, 128, 128]],
    ];
    // CMYK: libvips converts it through a CMYK profile, as browsers do; Pillow, which made the file from RGB, uses
    // the plain 255 - (C + K), so its colour comes back within 30 levels, not 2.
    const tolerance = (file: string) => (file === 'cmyk.jpg' ? 30 : 2);
    for (const [cls, file] of place) {
      fs.mkdirSync(path.join(dir, cls), { recursive: true });
      fs.copyFileSync(path.join(kinds, file), path.join(dir, cls, file));
    }
    const dataDir = tmpDir();
    const r = await ensureFolderRecords(dir, dataDir, { skipBad: false, force: false });
    const bytes = fs.readFileSync(path.join(r.dir, 'train.bin'));
    const got = Array.from({ length: bytes.length / 3074 }, (_, k) => {
      const at = k * 3074;
      const mean = [0, 1, 2].map((c) => Math.round(bytes.subarray(at + 2 + c * 1024, at + 2 + (c + 1) * 1024).reduce((a, b) => a + b, 0) / 1024));
      return `${['cold', 'gray', 'warm'][bytes.readUInt16BE(at)]} ${mean.join(',')}`;
    }).sort();
    // Sorted as `got` is; the two warm images want the same colour, the CMYK one (first) with its wider tolerance.
    const want = place.map(([cls, file, rgb]) => ({ text: `${cls} ${rgb.join(',')}`, within: tolerance(file) })).sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
    assert.equal(got.length, place.length, 'a record an image');
    got.forEach((g, i) => {
      const [gc, gv] = g.split(' ');
      const [wc, wv] = want[i]!.text.split(' ');
      assert.equal(gc, wc);
      gv!.split(',').forEach((v, c) => assert.ok(Math.abs(Number(v) - Number(wv!.split(',')[c])) <= want[i]!.within, `${g} vs ${want[i]!.text}`));
    });
  });

  test('bad input is named: a corrupt image, a file that is not an image, an empty class, one class, a stray file, a control character; --skip-bad-images counts', async () => {
    const make = (mutate: (dir: string) => void) => {
      const dir = tmpDir();
      writeImageFolder(dir, { classes: ['x', 'y'], perClass: 4 });
      mutate(dir);
      return dir;
    };
    const dataDir = tmpDir();
    const train = (dir: string, ...more: string[]) => runCli(['train', '--images', dir, '--data-dir', dataDir, '--epochs', '1', '--valid-split', '2', ...QUICK, ...more]);
    const corrupt = make((d) => fs.writeFileSync(path.join(d, 'x', 'broken.png'), fs.readFileSync(path.join(d, 'x', 'x_0.png')).subarray(0, 60)));
    refused(await train(corrupt), 1, /^error: --images: .*broken\.png: the PNG data is damaged/);
    const text = make((d) => fs.writeFileSync(path.join(d, 'y', 'notes.txt'), 'hello'));
    refused(await train(text), 1, /^error: --images: .*notes\.txt: not a PNG, JPEG, WebP, AVIF, GIF or TIFF file \(by its name\)$/);
    refused(await train(make((d) => fs.mkdirSync(path.join(d, 'z')))), 1, /^error: class folder .*\/z holds no images$/);
    refused(await train(make((d) => fs.rmSync(path.join(d, 'y'), { recursive: true }))), 1, /^error: .* has 1 class folder \(x\); a data set needs 2 to 1000$/);
    // A file beside the class folders is no class (ImageFolder's rule): left out, and said.
    const readme = await runCli(['train', '--images', make((d) => fs.writeFileSync(path.join(d, 'README.md'), 'hi')), '--data-dir', tmpDir(), '--epochs', '1', '--valid-split', '2', ...QUICK]);
    assert.equal(readme.code, 0, readme.stderr);
    assert.match(readme.stderr, /^image folder .*: left out 1 file beside the class folders or hidden \(README\.md\)$/m);
    refused(await train(make((d) => fs.copyFileSync(path.join(d, 'x', 'x_0.png'), path.join(d, 'x', 'ring\u0007.png')))), 1, /^error: --images: .*ring\?\.png: its name has control characters$/);
    refused(await train(make((d) => fs.mkdirSync(path.join(d, 'bad\u001bname')))), 1, /^error: class folder "bad\\u001bname" in .*: a class name must be at most 64 characters/);
    assert.deepEqual(listFiles(dataDir).filter((f) => !f.startsWith('.')), [], 'nothing half-written in the data dir');
    const newDir = path.join(tmpDir(), 'made', 'here');
    refused(await runCli(['train', '--images', corrupt, '--data-dir', newDir, '--epochs', '1', '--valid-split', '2', ...QUICK]), 1, /broken\.png: the PNG data is damaged/);
    assert.ok(!fs.existsSync(path.dirname(newDir)), 'a data dir the run made is removed with nothing in it');

    const skipped = await train(corrupt, '--skip-bad-images');
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /^--skip-bad-images: 1 file left out \(first: x\/broken\.png: the PNG data is damaged/m);
    assert.match(skipped.stderr, /: 8 images in 2 classes \(no test\/ folder\)/);
    refused(await runCli(['train', '--skip-bad-images', '--epochs', '1']), 2, /^error: --skip-bad-images needs --images DIR$/);
    refused(await runCli(['train', '--images', path.join(dataDir, 'none'), '--epochs', '1']), 1, /^error: --images .*none: no such folder$/);
  });
});
