import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { diagnose, findLibraries } from '../src/doctor.js';
import { runCli, tmpDir } from './helpers.js';

test('diagnose: real load errors map to their fixes', () => {
  // [error text as reported, expected problem, a phrase the fix must contain]
  const cases: [string, RegExp, RegExp][] = [
    // tensorflow/tfjs#8362, #8505 (CUDA-12-only hosts)
    ["W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: No such file or directory", /CUDA 11 libraries/, /CUDA 11\.2 runtime/],
    ["Could not load dynamic library 'libcublasLt.so.11'; dlerror: libcublasLt.so.11: cannot open shared object file", /CUDA 11 libraries/, /LD_LIBRARY_PATH/],
    ["Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file: No such file or directory", /cuDNN 8/, /cuDNN 8\.1/],
    // tensorflow/tfjs#8742, #5200, #3622 (install behind a proxy / offline)
    ['TAR_BAD_ARCHIVE: Unrecognized archive format', /not libtensorflow/, /TFJS_NODE_CDN_STORAGE/],
    ['Error: libtensorflow.so.2: cannot open shared object file: No such file or directory', /libtensorflow was not installed/, /npm rebuild/],
    ["Error: Cannot find module '/app/node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v8/tfjs_binding.node'", /native addon/, /npm rebuild @tensorflow\/tfjs-node-gpu/],
    ["/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.27' not found (required by libtensorflow.so.2)", /C library is older/, /glibc/],
    ["Cannot find package '@tensorflow/tfjs-node-gpu' imported from /x/dist/src/backend.js", /not installed/, /npm install/],
    ['something nobody has seen', /does not load/, /npm rebuild/],
  ];
  for (const [text, problem, fix] of cases) {
    const d = diagnose(text);
    assert.match(d.problem, problem, text);
    assert.match(d.fix, fix, text);
  }
});

test('findLibraries: ldconfig -p first, then LD_LIBRARY_PATH', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'libcudnn.so.8'), '');
  const ldconfigOut = '1234 libs found in cache `/etc/ld.so.cache\'\n\tlibcudart.so.11.0 (libc6,x86-64) => /usr/local/cuda-11.2/lib64/libcudart.so.11.0\n\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n';
  assert.deepEqual(findLibraries(['libcudart.so.11.0', 'libcudnn.so.8', 'libcublas.so.11'], ldconfigOut, `/nonexistent:${dir}`), {
    'libcudart.so.11.0': '/usr/local/cuda-11.2/lib64/libcudart.so.11.0',
    'libcudnn.so.8': path.join(dir, 'libcudnn.so.8'),
    'libcublas.so.11': null,
  });
  assert.deepEqual(findLibraries(['libcudnn.so.8'], null, undefined), { 'libcudnn.so.8': null });
});

test('alexnet doctor here: no native binding, names the wasm fallback, exit 0; --json; --require-gpu exits 3', async () => {
  const r = await runCli(['doctor']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /@tensorflow\/tfjs-node-gpu: not installed/);
  assert.match(r.stdout, /auto backend: wasm \(CPU; native TensorFlow is not installed/);
  assert.match(r.stdout, /^can train: yes, on wasm$/m);
  const j = await runCli(['doctor', '--json']);
  const report = JSON.parse(j.stdout) as Record<string, unknown>;
  for (const k of ['node', 'flavours', 'auto', 'libraries', 'driver', 'canTrain', 'gpuBackend', 'fixes']) assert.ok(k in report, k);
  assert.equal(report.canTrain, true);
  assert.equal(report.gpuBackend, false);
  assert.equal((report.auto as { backend: string }).backend, 'wasm');
  assert.ok('libcudart.so.11.0' in (report.libraries as object));
  const g = await runCli(['doctor', '--require-gpu']);
  assert.equal(g.code, 3);
  assert.match(g.stderr, /^error: no GPU backend works here$/m);
  assert.match(g.stderr, /^hint: /m);
});

test('alexnet bench: a tiny run reports every field, as text and JSON', async () => {
  const r = await runCli(['bench', '--backend', 'wasm', '--steps', '1', '--batch-size', '4', '--eval-batch-size', '4', '--json', '-q']);
  assert.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout) as Record<string, unknown> & { decode: Record<string, number> };
  assert.equal(b.backend, 'wasm');
  assert.equal(b.batchSize, 4);
  assert.equal(b.threads, 2, 'one thread per core');
  for (const k of ['stepMsMedian', 'trainImagesPerSecond', 'evalMsMedian', 'evalImagesPerSecond', 'epochSeconds']) {
    assert.ok(typeof b[k] === 'number' && (b[k] as number) > 0, k);
  }
  assert.equal(b.decode.records, 60000);
  assert.ok(b.decode.msMedian > 0);
  const t = await runCli(['bench', '--backend', 'all', '--steps', '1', '--batch-size', '4', '--eval-batch-size', '4']);
  assert.equal(t.code, 0, t.stderr);
  // Two cores here: wasm on both (the default), then on one for comparison.
  assert.match(t.stdout, /^wasm \(CPU; asked for with --backend wasm\), 2 threads\n[^]*^wasm \(CPU; asked for with --backend wasm\), 1 thread$/m);
  assert.match(t.stdout, /train step \(batch 4\): [\d.]+ ms median of 1/);
  assert.match(t.stdout, /implied epoch \(50,000 train \+ 10,000 test\): [\d.]+ s/);
});
