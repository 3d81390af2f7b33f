// End to end: a model trained on a generated learnable archive, then everything that uses it or the data:
// report.html, `eval`, `predict` and `samples`, run as a user would run them.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { evalOptions, evalCommand } from '../src/commands/eval.js';
import { predictOptions, predictCommand } from '../src/commands/predict.js';
import { samplesCommand, samplesOptions } from '../src/commands/samples.js';
import { IMAGE_BYTES, NUM_CLASSES, decodeBatch, type Split } from '../src/data/cifar.js';
import { lessonRecipe } from '../src/recipe.js';
import { runTraining } from '../src/run.js';
import { sampleLayout } from '../src/samples.js';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { captureConsole, listFiles, runCli, tileMismatch, tmpDir, upscale, useBackend } from './helpers.js';

const entries = cifarEntries({ trainPerBatch: 100, test: 200 }); // the README example's archive
// The README fixture example's recipe: every test image right from epoch 2 (valid accuracy 1.000000 at epochs 2
// and 3). Threads pinned: the shares of a batch change float rounding, so the trajectory depends on the count.
const EPOCHS = 4;
const RECIPE = { ...lessonRecipe(2), batchSize: 32, epochs: EPOCHS };

/** Decoded records of one member of the fixture, for comparing pixels. */
function fixtureSplit(member: string): Split {
  const bytes = entries.find((e) => e.path.endsWith(member))!.data!;
  const count = bytes.length / (IMAGE_BYTES + 1);
  const split: Split = { images: new Uint8Array(count * IMAGE_BYTES), labels: new Uint16Array(count), count };
  decodeBatch(bytes, member, split, 0);
  return split;
}

/** Record `r` of `split` as an RGBA image enlarged k times (nearest), as a user's photo would be larger. */
const recordRgba = (split: Split, r: number, k: number) => upscale(split.images.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES), k);

function writePng(file: string, img: { width: number; height: number; data: Buffer }): void {
  const png = new PNG({ width: img.width, height: img.height });
  png.data = img.data;
  fs.writeFileSync(file, PNG.sync.write(png));
}

const oneLineError = (stderr: string, re: RegExp) => {
  const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('backend: ') && !l.startsWith('CIFAR-10 ') && !l.startsWith('data: NOT the official'));
  assert.equal(lines.length, 2, `an error line and a hint line: ${stderr}`);
  assert.match(lines[0]!, re);
  assert.match(lines[1]!, /^hint: /);
};

describe('using a trained model', () => {
  const dir = tmpDir();
  const archive = path.join(dir, 'cifar-10-binary.tar.gz');
  const dataDir = path.join(dir, 'data');
  const model = path.join(dir, 'model');
  const data = ['--data-dir', dataDir, '--url', archive, '--no-verify'];
  const test200 = fixtureSplit('test_batch.bin');
  let lastEpoch: { validLoss: number; validAcc: number };

  before(async () => {
    fs.writeFileSync(archive, gzipTar(entries));
    await useBackend('wasm');
    const r = await runTraining({
      recipe: RECIPE,
      limits: { limitTrain: null, limitTest: null },
      explicit: new Set(),
      data: { dataDir, url: archive, md5: null, force: false, explicit: true },
      backend: 'wasm',
      gpu: false,
      settings: { threads: 2 },
      save: model,
      resume: null,
    });
    lastEpoch = r.history.at(-1)!;
  });

  test('train --save writes report.html: both curves, the confusion matrix, and the numbers behind them', () => {
    const html = fs.readFileSync(path.join(model, 'report.html'), 'utf8');
    assert.doesNotMatch(html, /<script(?! type="application\/json")/, 'no script to run');
    assert.doesNotMatch(html, /\b(src|href)="(https?:)?\/\//, 'nothing to fetch');
    const section = (id: string) => new RegExp(`<section id="${id}">(<svg[\\s\\S]*?</svg>)</section>`).exec(html)?.[1] ?? '';
    for (const id of ['loss', 'accuracy']) {
      const svg = section(id);
      assert.match(svg, /class="mark-line role-mark/, `${id}: a line mark`);
      // One point per epoch and split, and a legend naming both splits.
      assert.equal((svg.match(/class="mark-symbol role-mark[^"]*"[^>]*>([\s\S]*?)<\/g>/)?.[1]?.match(/<path /g) ?? []).length, 2 * EPOCHS, id);
      assert.match(svg, />train</);
      assert.match(svg, />valid</);
    }
    const confusion = section('confusion');
    const cells = confusion.match(/class="mark-rect role-mark[^"]*"[^>]*>([\s\S]*?)<\/g>/)?.[1]?.match(/<path /g) ?? [];
    assert.equal(cells.length, NUM_CLASSES * NUM_CLASSES, 'a cell per (true, predicted) pair');
    for (const name of ['airplane', 'truck']) assert.match(confusion, new RegExp(`>${name}<`));
    const dataJson = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!) as { history: unknown[]; confusion: number[][] };
    assert.equal(dataJson.history.length, EPOCHS);
    assert.equal(dataJson.confusion.flat().reduce((a, b) => a + b, 0), test200.count);
    assert.equal(dataJson.confusion.reduce((s, row, i) => s + row[i]!, 0), test200.count, 'the fixture is learnt: all on the diagonal');
  });

  test('eval: the same loss and accuracy as the last epoch, per class, and the matrix as a table', async () => {
    const j = await runCli(['eval', '--model', model, ...data, '--json', '-q']);
    assert.equal(j.code, 0, j.stderr);
    const r = JSON.parse(j.stdout) as { loss: number; accuracy: number; correct: number; images: number; perClass: { name: string; count: number; accuracy: number }[]; confusion: number[][] };
    assert.ok(Math.abs(r.loss - lastEpoch.validLoss) < 1e-6, `${r.loss} vs ${lastEpoch.validLoss}`);
    assert.ok(Math.abs(r.accuracy - lastEpoch.validAcc) < 1e-6);
    assert.equal(r.images, 200);
    assert.equal(r.correct, 200);
    assert.deepEqual(r.perClass.map((c) => [c.name, c.count, c.accuracy]), ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'].map((n) => [n, 20, 1]));
    const classes = (JSON.parse(j.stdout) as { perClass: { precision: number; recall: number; f1: number; predicted: number }[]; macro: { precision: number; recall: number; f1: number } });
    assert.deepEqual(classes.perClass.map((c) => [c.predicted, c.precision, c.recall, c.f1]), Array.from({ length: 10 }, () => [20, 1, 1, 1]));
    assert.deepEqual(classes.macro, { precision: 1, recall: 1, f1: 1 });
    assert.deepEqual((JSON.parse(j.stdout) as { top5: unknown }).top5, { correct: 200, fraction: 1 });
    // Test-time augmentation: each image's logits averaged with its mirror's (the fixture's classes are not mirror
    // images of each other, so the score may move, not break).
    const tta = await runCli(['eval', '--model', model, ...data, '--tta', 'flip', '--json']);
    assert.equal(tta.code, 0, tta.stderr);
    assert.match(tta.stderr, /^--tta flip: each image's logits averaged with its mirror's$/m);
    const tr = JSON.parse(tta.stdout) as { images: number; accuracy: number };
    assert.equal(tr.images, 200);
    assert.ok(tr.accuracy >= 0 && tr.accuracy <= 1);

    const t = await runCli(['eval', '--model', model, ...data]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^Test Loss: \d+\.\d{6}, Test Acc: 1\.000000 \(means over batches, as the training log's Valid Loss and Valid Acc\)\nCorrect: 200 of 200 images \(1\.000000\)$/m);
    assert.match(t.stdout, /^class +correct +accuracy +precision +F1$/m);
    assert.match(t.stdout, /^Top-5: 200 of 200 images \(1\.000000\) with the label among the 5 largest logits$/m);
    assert.match(t.stdout, /^automobile +20 \/ 20 +1\.0000 +1\.0000 +1\.0000$/m);
    assert.match(t.stdout, /^macro average: precision 1\.0000, recall 1\.0000, F1 1\.0000$/m);
    assert.match(t.stdout, /^ +airpl +autom +bird +cat +deer +dog +frog +horse +ship +truck$/m);
    assert.match(t.stdout, /^truck( +0){9} +20$/m);
    assert.match(t.stderr, new RegExp(`^model .* \\(trained ${EPOCHS} epochs\\) on 200 test images$`, 'm'));
  });

  test('predict: PNG and JPEG of any size give the right class first, with probabilities', async () => {
    const imgDir = tmpDir();
    const files: string[] = [];
    for (let r = 0; r < NUM_CLASSES; r++) {
      const file = path.join(imgDir, `record${r}.png`);
      writePng(file, recordRgba(test200, r, 2 + (r % 3))); // 64, 96 and 128 pixels a side
      files.push(file);
    }
    const jpg = path.join(imgDir, 'record13.jpg');
    fs.writeFileSync(jpg, jpeg.encode(recordRgba(test200, 13, 4), 95).data);
    files.push(jpg);

    const r = await runCli(['predict', '--model', model, ...files]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, files.length);
    const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
    lines.forEach((line, i) => {
      const m = /^(.+): (\w+) (\d\.\d{3}), (\w+) (\d\.\d{3}), (\w+) (\d\.\d{3})$/.exec(line);
      assert.ok(m, line);
      assert.equal(m[1], files[i]);
      assert.equal(m[2], names[test200.labels[i === NUM_CLASSES ? 13 : i]!], line);
      assert.ok(Number(m[3]) >= Number(m[5]) && Number(m[5]) >= Number(m[7]), `best first: ${line}`);
    });

    const j = await runCli(['predict', '--model', model, '--top', '10', '--json', '-q', files[0]!]);
    assert.equal(j.code, 0, j.stderr);
    const p = JSON.parse(j.stdout) as { type: string; image: string; top: { class: string; index: number; probability: number }[] };
    assert.equal(p.type, 'prediction');
    assert.equal(p.top.length, 10);
    assert.equal(p.top[0]!.class, 'airplane');
    assert.ok(Math.abs(p.top.reduce((s, c) => s + c.probability, 0) - 1) < 1e-4, 'all ten probabilities sum to 1');
  });

  test('samples: the PNG holds the exact pixels of the records, enlarged; --classes groups them; --out - pipes', async () => {
    const trainSplit = fixtureSplit('data_batch_1.bin');
    const out = path.join(tmpDir(), 'grid.png');
    for (const [args, byClass] of [[['--count', '23', '--scale', '3'], false], [['--classes', '--count', '30', '--scale', '2'], true]] as const) {
      const r = await runCli(['samples', ...args, '--out', out, ...data, '-q']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, out + '\n', 'the path on stdout');
      const png = PNG.sync.read(fs.readFileSync(out));
      const scale = Number(args[args.indexOf('--scale') + 1]);
      const count = Number(args[args.indexOf('--count') + 1]);
      const layout = sampleLayout(trainSplit.labels, ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'], { count, byClass, scale });
      assert.deepEqual([png.width, png.height], [layout.width, layout.height]);
      assert.equal(layout.tiles.length, byClass ? 30 : 23);
      for (const t of layout.tiles) {
        const record = trainSplit.images.subarray(t.record * IMAGE_BYTES, (t.record + 1) * IMAGE_BYTES);
        assert.equal(tileMismatch(png, t.x, t.y, record, scale), null, `record ${t.record}`);
      }
      // Names are drawn: every label box has black ink.
      for (const l of layout.labels) {
        let ink = 0;
        for (let y = l.y; y < l.y + 7 * layout.fontScale; y++) for (let x = l.x; x < l.x + 6 * layout.fontScale * l.text.length - layout.fontScale; x++) if (png.data[(y * png.width + x) * 4] === 0) ink++;
        assert.ok(ink > 10 * l.text.length, `label ${l.text} is drawn`);
      }
    }
    const piped = await runCli(['samples', '--count', '4', '--out', '-', ...data, '-q']);
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(piped.stdout.startsWith('\ufffdPNG'), 'PNG bytes on stdout');
  });

  test('bad inputs are one-line errors with a hint, exit non-zero, and leave nothing behind', async () => {
    const scratch = tmpDir();
    const text = path.join(scratch, 'notes.png');
    fs.writeFileSync(text, 'not an image\n');
    const truncated = path.join(scratch, 'cut.png');
    writePng(truncated, recordRgba(test200, 0, 2));
    fs.truncateSync(truncated, 100);
    const wrong = path.join(scratch, 'wrong');
    fs.cpSync(model, wrong, { recursive: true });
    const topo = fs.readFileSync(path.join(wrong, 'model.json'), 'utf8');
    fs.writeFileSync(path.join(wrong, 'model.json'), topo.replace('"units":10', '"units":12'));
    const image = path.join(scratch, 'ok.png');
    writePng(image, recordRgba(test200, 0, 1));

    // Each case run in-process as the command runs it: [command, args, error code, message].
    const evalWith = (m: string) => evalCommand(evalOptions({ model: m, dataDir, url: archive, verify: false }), captureConsole().con);
    const predictWith = (m: string, files: string[], flags: Record<string, string> = {}) => predictCommand(predictOptions(files, { model: m, ...flags }), captureConsole().con);
    const cases: [string, () => Promise<unknown>, string, RegExp][] = [
      ['eval, no dir', () => evalWith(path.join(scratch, 'none')), 'CHECKPOINT', /^no model in .*none: the directory does not exist$/],
      ['predict, no dir', () => predictWith(path.join(scratch, 'none'), [image]), 'CHECKPOINT', /^no model in .*none: the directory does not exist$/],
      ['predict, no model.json', () => predictWith(scratch, [image]), 'CHECKPOINT', /^no model in .*: model\.json is missing$/],
      ['predict, wrong weights', () => predictWith(wrong, [image]), 'CHECKPOINT', /^cannot load the model in .*wrong: its weights do not fit its layers \(.*\[192,12\].*\)$/],
      ['eval, wrong weights', () => evalWith(wrong), 'CHECKPOINT', /^cannot load the model in .*wrong: its weights do not fit its layers/],
      ['predict, not an image', () => predictWith(model, [image, text]), 'IMAGE', /^cannot read .*notes\.png: not a PNG, JPEG, WebP, AVIF, GIF or TIFF file$/],
      ['predict, a damaged PNG', () => predictWith(model, [truncated]), 'IMAGE', /^cannot read .*cut\.png: the PNG data is damaged \(.+\)$/],
      ['predict, no file', () => predictWith(model, [path.join(scratch, 'missing.jpg')]), 'IMAGE', /^cannot read .*missing\.jpg: no such file$/],
      ['predict --top 11', () => predictWith(model, [image], { top: '11' }), 'USAGE', /^--top 11 is more than the model's 10 classes$/],
      ['predict --top 1001', () => predictWith(model, [image], { top: '1001' }), 'USAGE', /^--top must be an integer in 1\.\.1000, got "1001"$/],
      ['samples --count 0', async () => samplesCommand(samplesOptions({ count: '0', dataDir, url: archive, verify: false })), 'USAGE', /^--count must be an integer in 1\.\.10000, got "0"$/],
      ['samples --out in no folder', async () => samplesCommand(samplesOptions({ out: path.join(scratch, 'no-such-dir', 'x.png'), dataDir, url: archive, verify: false, quiet: true }), captureConsole().con), 'IO', /^cannot write .*x\.png: no such file or directory$/],
    ];
    for (const [what, run, code, re] of cases) {
      await assert.rejects(async () => run(), (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, code, `${what}: ${e.message}`);
        assert.match(e.message, re, what);
        assert.ok(e.hint, `${what}: a hint`);
        return true;
      });
    }
    // As a user sees them: one error line and one hint line on stderr, nothing on stdout, the exit code.
    for (const [args, code, re] of [[['predict', '--model', model, text], 1, /^error: cannot read .*notes\.png: not a PNG, JPEG, WebP, AVIF, GIF or TIFF file$/], [['predict', '--model', model, '--top', '11', image], 2, /^error: --top 11 is more than the model's 10 classes$/]] as const) {
      const r = await runCli([...args]);
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stdout, '');
      oneLineError(r.stderr, re);
    }
    assert.deepEqual(listFiles(scratch).filter((f) => !f.startsWith('wrong')), ['cut.png', 'notes.png', 'ok.png'], 'no partial files');
  });
});
