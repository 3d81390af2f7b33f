// `alexnet export` (issue #27), checked by the clients users deploy to: ONNX Runtime (onnxruntime-node) gives the
// probabilities `alexnet predict --json` gives, ONNX's own checker passes where Debian's python3-onnx is installed,
// and the TensorFlow.js folder loads through tf.loadLayersModel over HTTP, as a browser loads it.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { NORMALISE } from '../src/batches.js';
import { loadTrainedModel } from '../src/checkpoint.js';
import { IMAGE_BYTES, IMAGE_SIZE, decodeBatch, type Split } from '../src/data/cifar.js';
import { decodeImage, toCifarImage } from '../src/data/image.js';
import { decodeOnnx, kernelToOihw, onnxModel, readLayers } from '../src/onnx.js';
import tf from '../src/tf.cjs';
import tfl from '../src/tfl.cjs';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { ROOT, listFiles, noStrace, noTrace, relErr, run, runCli, runCliUnder, serve, tmpDir, trainedModel, upscale, useBackend } from './helpers.js';

const entries = cifarEntries({ trainPerBatch: 20, test: 40 });
const archive = gzipTar(entries);

/** `images` (32x32x3 HWC bytes each) as the ONNX model's input: normalised as training does, NCHW. */
function nchw(images: Uint8Array[]): ort.Tensor {
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  const x = new Float32Array(images.length * IMAGE_BYTES);
  images.forEach((img, n) => {
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) x[n * IMAGE_BYTES + c * plane + p] = NORMALISE[img[p * 3 + c]!]!;
  });
  return new ort.Tensor('float32', x, [images.length, 3, IMAGE_SIZE, IMAGE_SIZE]);
}

const softmax = (row: number[]) => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** Debian's Chromium (apt-get install -y chromium), for the README's browser example, or null. */
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p)) ?? null;

/** The first python3 with Debian's python3-onnx (PATH's, else /usr/bin's), or null. */
const onnxPython = ['python3', '/usr/bin/python3'].find((py) => spawnSync(py, ['-c', 'import onnx']).status === 0) ?? null;

if (noStrace && process.env.ALEXNET_REQUIRE_FAULT_TOOLS === '1') throw new Error(`ALEXNET_REQUIRE_FAULT_TOOLS=1, but: ${noStrace}`);

describe('export', () => {
  let model: string;
  let testSplit: Split;
  before(async () => {
    ({ model } = await trainedModel(archive));
    const bytes = entries.find((e) => e.path.endsWith('test_batch.bin'))!.data!;
    testSplit = decodeBatch(bytes, 'test_batch.bin');
  });

  test('--format onnx: ONNX Runtime gives the probabilities of `predict --json` within 1e-5, and the class names ride along', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'model.onnx');
    const r = await runCli(['export', '--model', model, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^ONNX model written to ${out.replace(/[.]/g, '\\.')} \\([\\d,]+ bytes, 10 classes, trained 1 epoch; class names in ${path.join(dir, 'model.labels.txt').replace(/[.]/g, '\\.')}\\); input: float32 \\[N, 3, 32, 32\\] \\(NCHW, RGB\\), each value \\(pixel / 255 - 0\\.5\\) / 0\\.5 per RGB channel; ONNX opset 13\\n$`));
    assert.deepEqual(listFiles(dir), ['model.labels.txt', 'model.onnx'], 'the model and its class names, nothing else');
    assert.equal(fs.readFileSync(path.join(dir, 'model.labels.txt'), 'utf8'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');

    // Images of other sizes, as a user has them: predict resizes them; the same 32x32 goes to ONNX Runtime.
    const files = [0, 1, 2, 3].map((i) => {
      const file = path.join(dir, `image${i}.png`);
      const img = upscale(testSplit.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), 2 + i); // 64 to 160 pixels a side
      const png = new PNG({ width: img.width, height: img.height });
      png.data = img.data;
      fs.writeFileSync(file, PNG.sync.write(png));
      return file;
    });
    const p = await runCli(['predict', '--model', model, '--top', '10', '--json', '-q', ...files]);
    assert.equal(p.code, 0, p.stderr);
    const predicted = p.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { top: { index: number; probability: number }[] }).top);

    const session = await ort.InferenceSession.create(out);
    assert.deepEqual([session.inputNames, session.outputNames], [['images'], ['logits']]);
    const images = await Promise.all(files.map(async (f) => toCifarImage(await decodeImage(fs.readFileSync(f), f))));
    const { logits } = await session.run({ images: nchw(images) });
    assert.deepEqual(logits!.dims, [files.length, 10]);
    const data = Array.from(logits!.data as Float32Array);
    let worst = 0;
    predicted.forEach((top, n) => {
      const probs = softmax(data.slice(n * 10, (n + 1) * 10));
      assert.equal(top.length, 10);
      for (const { index, probability } of top) worst = Math.max(worst, Math.abs(probs[index]! - probability));
    });
    assert.ok(worst < 1e-5, `largest difference ${worst}`);

    const decoded = decodeOnnx(fs.readFileSync(out));
    const meta = Object.fromEntries(decoded.metadataProps.map((m) => [m.key, m.value]));
    assert.deepEqual(JSON.parse(meta.classNames!), ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    assert.match(meta.input!, /NCHW/);
    assert.equal(Number(decoded.opsetImport[0]!.version), 13);
  });

  test('--input raw: ONNX Runtime fed libjpeg-turbo\'s pixels of real photographs (PIL\'s, uint8 NHWC) gives predict\'s probabilities on the JPEG files', async () => {
    const photos = path.join(ROOT, 'test', 'data', 'photos');
    const files = fs.readdirSync(photos).filter((c) => fs.statSync(path.join(photos, c)).isDirectory()).sort().flatMap((c) => ['0000', '1234', '4321'].map((n) => path.join(photos, c, `${n}.jpg`)));
    const pil = fs.readFileSync(path.join(photos, 'pil-rgb.bin'));
    const dir = tmpDir();
    const out = path.join(dir, 'raw.onnx');
    const r = await runCli(['export', '--model', model, '--input', 'raw', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /; input: uint8 \[N, 32, 32, 3\] \(NHWC, RGB\), pixels 0-255 as a decoder gives them; normalised inside; ONNX opset 13\n$/);
    const p = await runCli(['predict', '--model', model, '--json', '-q', ...files]);
    assert.equal(p.code, 0, p.stderr);
    const predicted = p.stdout.trim().split('\n').map((l) => JSON.parse(l) as { top: { index: number }[]; probabilities: number[]; logits: number[]; classes: string[] });
    const session = await ort.InferenceSession.create(out);
    assert.deepEqual(session.inputNames, ['pixels']);
    const { logits } = await session.run({ pixels: new ort.Tensor('uint8', new Uint8Array(pil), [files.length, 32, 32, 3]) });
    const data = Array.from(logits!.data as Float32Array);
    let worst = 0;
    predicted.forEach((row, n) => {
      const probs = softmax(data.slice(n * 10, (n + 1) * 10));
      assert.equal(row.probabilities.length, 10);
      assert.equal(row.classes[row.top[0]!.index], fs.readFileSync(path.join(dir, 'raw.labels.txt'), 'utf8').split('\n')[row.top[0]!.index]);
      assert.equal(probs.indexOf(Math.max(...probs)), row.top[0]!.index, `${files[n]}: the same top-1`);
      row.probabilities.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - probs[k]!))));
      assert.deepEqual(softmax(row.logits).map((v) => Math.round(v * 1e5)), row.probabilities.map((v) => Math.round(v * 1e5)), 'the probabilities are the logits\' softmax');
    });
    assert.ok(worst < 1e-4, `largest difference ${worst}`);
  });

  test('the README\'s Node.js example runs as printed, and names the class `predict` names', async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const code = /In Node\.js, with `npm install onnxruntime-node sharp`[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(code, 'the README has the Node.js example');
    // In a folder of this checkout (removed after), so that its imports resolve to node_modules as a user's do.
    const dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'readme-example-'));
    try {
      fs.writeFileSync(path.join(dir, 'predict.mjs'), code);
      const e = await runCli(['export', '--model', model, '--input', 'raw', '--out', path.join(dir, 'model.onnx'), '-q']);
      assert.equal(e.code, 0, e.stderr);
      const photo = path.join(ROOT, 'test', 'data', 'photos', 'ship', '1234.jpg');
      const r = await run(process.execPath, ['predict.mjs', photo], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const p = await runCli(['predict', '--model', model, '-q', photo]);
      const [name, probability] = p.stdout.trim().split(': ')[1]!.split(', ')[0]!.split(' ');
      assert.equal(r.stdout.trim(), `${name} ${probability}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the README\'s browser example runs offline in headless Chromium and names the class `predict` names', async (t) => {
    if (chromium === null) {
      if (process.env.ALEXNET_REQUIRE_CHROMIUM) assert.fail('ALEXNET_REQUIRE_CHROMIUM is set, but there is no chromium here (apt-get install -y chromium)');
      return t.skip('no chromium here (apt-get install -y chromium)');
    }
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const page = /In a browser, offline, [\s\S]*?```html\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(page, 'the README has the browser example');
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'index.html'), page);
    const e = await runCli(['export', '--model', model, '--format', 'tfjs', '--input', 'raw', '--out', path.join(dir, 'web'), '-q']);
    assert.equal(e.code, 0, e.stderr);
    // A 32x32 PNG of a test image: the page's resize to 32x32 leaves it as it is, as predict does.
    const png = new PNG({ width: 32, height: 32 });
    png.data = Buffer.from(upscale(testSplit.images.subarray(0, IMAGE_BYTES), 1).data);
    fs.writeFileSync(path.join(dir, 'cat.png'), PNG.sync.write(png));
    const server = await serve((req, res) => {
      const url = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
      const file = url.startsWith('/node_modules/') ? path.join(ROOT, url) : path.join(dir, url === '/' ? 'index.html' : url);
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return void res.writeHead(404).end();
      const type = file.endsWith('.html') ? 'text/html' : file.endsWith('.js') ? 'text/javascript' : file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
      res.writeHead(200, { 'content-type': type }).end(fs.readFileSync(file));
    });
    const profile = tmpDir();
    try {
      const r = await run(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--virtual-time-budget=20000', '--dump-dom', server.url.replace(/[^/]*$/, '')], { timeoutMs: 60_000 });
      const title = /<title>([^<]*)<\/title>/.exec(r.stdout)?.[1];
      const p = await runCli(['predict', '--model', model, '-q', path.join(dir, 'cat.png')]);
      assert.equal(title, p.stdout.split(': ')[1]!.split(' ')[0], `${r.stdout.slice(0, 400)}\n${r.stderr.slice(-800)}`);
    } finally {
      await server.close();
    }
  });

  test('--input raw for tfjs: a Rescaling layer inside; 0-255 pixels give what the normalised ones give the run\'s model', async () => {
    const out = path.join(tmpDir(), 'web');
    const r = await runCli(['export', '--model', model, '--format', 'tfjs', '--input', 'raw', '--out', out, '-q']);
    assert.equal(r.code, 0, r.stderr);
    await useBackend('cpu');
    const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; userDefinedMetadata: { input: string } };
    const weights = fs.readFileSync(path.join(out, json.weightsManifest[0]!.paths[0]!));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0]!.weights, weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length) as ArrayBuffer }));
    assert.match(json.userDefinedMetadata.input, /pixels 0-255 .*Rescaling/);
    assert.equal(loaded.layers[0]!.getClassName(), 'Rescaling');
    const pixels = Float32Array.from({ length: 3 * IMAGE_BYTES }, (_, i) => (i * 37 + 11) % 256);
    const fromRun = (await loadTrainedModel(model)).model;
    try {
      const a = tf.tidy(() => (loaded.predict(tf.tensor4d(pixels, [3, 32, 32, 3])) as tf.Tensor).dataSync());
      const b = tf.tidy(() => (fromRun.predict(tf.tensor4d(pixels.map((v) => NORMALISE[v]!), [3, 32, 32, 3])) as tf.Tensor).dataSync());
      assert.ok(relErr(a, b) < 1e-5, `relative difference ${relErr(a, b)}`);
    } finally {
      loaded.dispose();
      fromRun.dispose();
    }
  });

  test('ONNX\'s own checker passes (Debian\'s python3-onnx)', (t) => {
    if (onnxPython === null) {
      if (process.env.ALEXNET_REQUIRE_ONNX_CHECKER) assert.fail('ALEXNET_REQUIRE_ONNX_CHECKER is set, but no python3 imports onnx (apt-get install -y python3-onnx)');
      t.skip('no python3 with the onnx module here (apt-get install -y python3-onnx)');
      return;
    }
    const dir = tmpDir();
    const out = path.join(dir, 'model.onnx');
    return runCli(['export', '--model', model, '--out', out, '-q']).then((r) => {
      assert.equal(r.code, 0, r.stderr);
      const c = spawnSync(onnxPython, ['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True); print("ok")', out], { encoding: 'utf8' });
      assert.equal(c.stdout.trim(), 'ok', c.stderr);
    });
  });

  test('--format tfjs: a folder tfl.loadLayersModel loads over HTTP, as a browser does, with the same outputs and the class names', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'web');
    const r = await runCli(['export', '--model', model, '--format', 'tfjs', '--out', out, '--json', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { type: string; format: string; out: string; classNames: string[]; input: string };
    assert.deepEqual([j.type, j.format, j.out, j.classNames.length], ['export', 'tfjs', out, 10]);
    const names = listFiles(dir);
    assert.equal(names.length, 3, names.join());
    assert.match(names.join(), /^web\/labels\.txt,web\/model\.json,web\/weights-[0-9a-f]{16}\.bin$/);
    assert.equal(fs.readFileSync(path.join(out, 'labels.txt'), 'utf8').split('\n')[9], 'truck');

    const server = await serve((req, res) => {
      const file = path.join(out, path.basename(new URL(req.url!, 'http://x').pathname));
      if (!fs.existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200).end(fs.readFileSync(file));
    });
    await useBackend('cpu');
    const x = tf.randomUniform([3, 32, 32, 3], -1, 1, 'float32', 7);
    try {
      const loaded = await tfl.loadLayersModel(server.url.replace(/[^/]+$/, 'model.json'));
      const meta = loaded.getUserDefinedMetadata() as { classNames: string[]; input: string };
      assert.equal(meta.classNames[9], 'truck');
      assert.match(meta.input, /NHWC/);
      const fromRun = (await loadTrainedModel(model)).model;
      const [a, b] = [loaded, fromRun].map((m) => Array.from(tf.tidy(() => m.predict(x) as tf.Tensor).dataSync()));
      assert.deepEqual(a, b, 'the run\'s weights, exactly');
      loaded.dispose();
      fromRun.dispose();
    } finally {
      x.dispose();
      await server.close();
    }
  });

  test('an existing --out is refused without --overwrite and replaced whole with it; a checkpoint folder is never written into', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'model.onnx');
    fs.writeFileSync(out, 'mine');
    const r = await runCli(['export', '--model', model, '--out', out, '-q']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: --out .*model\.onnx exists\nhint: pass another --out, or `.*alexnet export \.\.\. --overwrite` replaces it\n$/);
    assert.equal(fs.readFileSync(out, 'utf8'), 'mine');
    const o = await runCli(['export', '--model', model, '--out', out, '--overwrite', '-q']);
    assert.equal(o.code, 0, o.stderr);
    assert.ok(fs.statSync(out).size > 2_000_000);
    assert.deepEqual(listFiles(dir), ['model.labels.txt', 'model.onnx']);

    const before = listFiles(model);
    const c = await runCli(['export', '--model', model, '--format', 'tfjs', '--out', model, '--overwrite', '-q']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /^error: --out .* holds other files than an export's \(.*\)\nhint: pass a new or empty folder as --out/);
    assert.deepEqual(listFiles(model), before);

    const web = path.join(dir, 'web');
    assert.equal((await runCli(['export', '--model', model, '--format', 'tfjs', '--out', web, '-q'])).code, 0);
    const again = await runCli(['export', '--model', model, '--format', 'tfjs', '--out', web, '-q']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /holds an earlier export/);
    assert.equal((await runCli(['export', '--model', model, '--format', 'tfjs', '--out', web, '--overwrite', '-q'])).code, 0);
    assert.equal(listFiles(dir).length, 5, listFiles(dir).join());
  });

  test('--overwrite never replaces a file of a run (this one\'s or another\'s best/), nor the model being read', async () => {
    const run = path.join(tmpDir(), 'run');
    fs.cpSync(model, run, { recursive: true });
    fs.cpSync(model, path.join(run, 'best'), { recursive: true });
    const before = listFiles(run);
    const bytes = (f: string) => fs.readFileSync(path.join(run, f));
    const saved = before.map(bytes);
    const weights = before.find((f) => /^weights-/.test(f))!;
    const cases: [string[], RegExp][] = [
      ...['state.json', 'model.json', 'metrics.jsonl', weights].map((f): [string[], RegExp] => [['--out', path.join(run, f)], new RegExp(`^error: --out ${path.join(run, f)} is a file of the model being read \\(--model ${run}\\): an export never replaces it$`, 'm')]),
      [['--out', path.join(run, 'best', 'state.json')], /^error: --out .*best\/state\.json is a file of the model being read/],
      [['--out', path.join(run, 'best'), '--format', 'tfjs'], /^error: --out .*best holds other files than an export's/],
      [['--out', path.dirname(run), '--format', 'tfjs'], /^error: --out .* holds other files than an export's/],
    ];
    for (const [args, want] of cases) {
      const r = await runCli(['export', '--model', run, ...args, '--overwrite', '-q']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.match(r.stderr, /^hint: /m);
      noTrace(r.stderr);
    }
    // Another run's files: its best/ read as the model, the run beside it written to.
    const other = await runCli(['export', '--model', path.join(run, 'best'), '--out', path.join(run, 'state.json'), '--overwrite', '-q']);
    assert.equal(other.code, 2, other.stderr);
    assert.match(other.stderr, new RegExp(`^error: --out ${path.join(run, 'state.json')} belongs to the run in ${run} \\(a folder with state\\.json\\): an export never replaces a run's files$`, 'm'));
    assert.deepEqual(listFiles(run), before);
    assert.deepEqual(before.map(bytes), saved, 'every file of the run as it was');
    // A new file beside the run is fine: it replaces nothing.
    const beside = await runCli(['export', '--model', run, '--out', path.join(run, 'model.onnx'), '-q']);
    assert.equal(beside.code, 0, beside.stderr);
  });

  test('a killed tfjs --overwrite leaves the earlier export or the new one at --out, and the next export tidies what it left', { skip: noStrace }, async () => {
    const dir = tmpDir();
    const web = path.join(dir, 'web');
    assert.equal((await runCli(['export', '--model', model, '--format', 'tfjs', '--out', web, '-q'])).code, 0);
    // An earlier export with other weights: its weights file renamed, as another model's would be named.
    const earlier = () => {
      fs.rmSync(web, { recursive: true, force: true });
      fs.cpSync(path.join(dir, 'keep'), web, { recursive: true });
    };
    const json = JSON.parse(fs.readFileSync(path.join(web, 'model.json'), 'utf8'));
    const real = json.weightsManifest[0].paths[0].slice(2);
    fs.renameSync(path.join(web, real), path.join(web, 'weights-00000000000000ee.bin'));
    json.weightsManifest[0].paths = ['./weights-00000000000000ee.bin'];
    fs.writeFileSync(path.join(web, 'model.json'), JSON.stringify(json));
    fs.cpSync(web, path.join(dir, 'keep'), { recursive: true });
    // The overwrite renames labels.txt, the new weights, then model.json into place: a SIGKILL as each rename starts.
    for (const when of [1, 2, 3]) {
      earlier();
      const r = await runCliUnder(['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename', '-e', `inject=rename:signal=KILL:when=${when}`], ['export', '--model', model, '--format', 'tfjs', '--out', web, '--overwrite', '-q'], { env: { UV_THREADPOOL_SIZE: '1' } });
      assert.notEqual(r.code, 0, `when=${when}: ${r.stderr}`);
      const named = JSON.parse(fs.readFileSync(path.join(web, 'model.json'), 'utf8')).weightsManifest[0].paths[0].slice(2);
      assert.equal(named, 'weights-00000000000000ee.bin', `when=${when}: the earlier export, whole`);
      assert.equal(fs.statSync(path.join(web, named)).size, 2_307_112, `when=${when}: the weights model.json names are there, whole`);
    }
    // What a killed export left: its temporaries inside --out, an .onnx's beside it, and an older version's pair of
    // folders (the new export, and the earlier one moved aside, with nothing at --out).
    const dead = 2 ** 22 + 4321;
    fs.writeFileSync(path.join(web, `.model.json.tmp-${dead}-0123456789ab`), '{');
    fs.writeFileSync(path.join(dir, `.m.onnx.tmp-${dead}-0123456789ab`), Buffer.alloc(1000));
    const onnx = await runCli(['export', '--model', model, '--out', path.join(dir, 'm.onnx'), '-q']);
    assert.equal(onnx.code, 0, onnx.stderr);
    const again = await runCli(['export', '--model', model, '--format', 'tfjs', '--out', web, '--overwrite', '-q']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(listFiles(web), ['labels.txt', 'model.json', real]);
    fs.rmSync(web, { recursive: true });
    fs.cpSync(path.join(dir, 'keep'), path.join(dir, `.web.tmp-${dead}-0123456789ab-old`), { recursive: true });
    fs.cpSync(path.join(dir, 'keep'), path.join(dir, `.web.tmp-${dead}-0123456789ab`), { recursive: true });
    const restored = await runCli(['export', '--model', model, '--format', 'tfjs', '--out', web, '-q']);
    assert.equal(restored.code, 2, 'the export moved aside is back at --out, and is not replaced unasked');
    assert.match(restored.stderr, /holds an earlier export/);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temporaries left');
    assert.deepEqual(listFiles(web), listFiles(path.join(dir, 'keep')));
  });

  test('bad input: one error line and a hint, a non-zero exit, nothing written', async () => {
    const dir = tmpDir();
    const cases: [string[], number, RegExp][] = [
      [['--model', path.join(dir, 'none'), '--out', path.join(dir, 'm.onnx')], 1, /^error: no model in .*none: the directory does not exist$/m],
      [['--model', model], 2, /^error: required option '--out <path>' not specified$/m],
      [['--model', model, '--out', path.join(dir, 'm.onnx'), '--format', 'pt'], 2, /^error: option '--format <name>' argument 'pt' is invalid/m],
      [['--model', model, '--out', dir], 2, /^error: --out .* is a directory$/m],
      [['--model', model, '--out', ''], 2, /^error: --out needs a path, got an empty one$/m],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli(['export', ...args, '-q']);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /^hint: /m);
      noTrace(r.stderr);
    }
    assert.deepEqual(listFiles(dir), []);
  });
});

describe('the ONNX converter', () => {
  test('kernelToOihw moves [kh, kw, in, out] to [out, in, kh, kw]', () => {
    const shape: [number, number, number, number] = [2, 3, 4, 5];
    const k = Float32Array.from({ length: 120 }, (_, i) => i);
    const o = kernelToOihw(k, shape);
    for (const [y, x, i, c] of [[0, 0, 0, 0], [1, 2, 3, 4], [1, 0, 2, 3], [0, 2, 1, 0]] as const) {
      assert.equal(o[((c * 4 + i) * 2 + y) * 3 + x], k[((y * 3 + x) * 4 + i) * 5 + c], `${[y, x, i, c]}`);
    }
  });

  test('layouts beyond the lesson\'s (same padding, strides, tanh, no bias) run in ONNX Runtime as in TensorFlow.js', async () => {
    await useBackend('cpu');
    const m = tfl.sequential();
    m.add(tfl.layers.conv2d({ inputShape: [32, 32, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh', useBias: false, kernelInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 1 }) }));
    m.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }));
    m.add(tfl.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'sigmoid', kernelInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 2 }) }));
    m.add(tfl.layers.flatten());
    m.add(tfl.layers.dense({ units: 5, kernelInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 3 }) }));
    const bytes = onnxModel(await readLayers(m, 'test'), { classNames: ['a', 'b', 'c', 'd', 'e'], inputShape: [32, 32, 3], producerVersion: 'test', input: 'normalized' });
    const session = await ort.InferenceSession.create(bytes);
    const images = [0, 1].map((i) => Uint8Array.from({ length: IMAGE_BYTES }, (_, p) => (p * 7 + i * 31) % 256));
    const { logits } = await session.run({ images: nchw(images) });
    const x = tf.tensor4d(Float32Array.from(images.flatMap((img) => Array.from(img, (v) => NORMALISE[v]!))), [2, 32, 32, 3]);
    const want = (m.predict(x) as tf.Tensor).dataSync();
    const got = logits!.data as Float32Array;
    want.forEach((v, i) => assert.ok(Math.abs(v - got[i]!) < 1e-5, `${i}: ${v} vs ${got[i]}`));
    tf.dispose(x);
    m.dispose();
  });

  test('a layer with no ONNX form here is refused by name', async () => {
    await useBackend('cpu');
    const m = tfl.sequential();
    m.add(tfl.layers.conv2d({ inputShape: [32, 32, 3], filters: 2, kernelSize: 3 }));
    m.add(tfl.layers.batchNormalization({ name: 'bn' }));
    await assert.rejects(readLayers(m, '/tmp/m'), /cannot export the model in \/tmp\/m: layer bn \(BatchNormalization\) has no ONNX form in this tool/);
    m.dispose();
  });
});
