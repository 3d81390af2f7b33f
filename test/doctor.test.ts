import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { findLibraries } from '../src/backends/libraries.js';
import { diagnose } from '../src/backends/tensorflow/doctor.js';
import { describeAdapter, icdsByHand, type GpuAdapterInfo } from '../src/backends/webgpu/adapter.js';
import { adapterFix } from '../src/backends/webgpu/doctor.js';
import { AUTO_LINE, nativeInstalled, runCli, tmpDir } from './helpers.js';

/** The default --threads here: one per core, at most 4. */
const THREADS_HERE = Math.min(os.availableParallelism(), 4);

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

test('alexnet doctor here: each backend\'s state, the auto backend, exit 0; --json; --require-gpu exits 3 without a GPU', async () => {
  const r = await runCli(['doctor']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, nativeInstalled ? /^(ok  |--  ) @tensorflow\/tfjs-node(-gpu)?: installed/m : /@tensorflow\/tfjs-node-gpu: not installed/);
  assert.match(r.stdout.replace(/^ok   auto backend: /m, 'backend: '), AUTO_LINE);
  // The WebGPU section: the package, the Vulkan loader, and each adapter with whether it is software.
  assert.match(r.stdout, /^WebGPU \(Dawn\):\nok   webgpu 0\.6\.2 \(Dawn; Vulkan\)$/m);
  assert.match(r.stdout, /^(ok  |--  ) Vulkan loader: /m);
  if (process.env.VK_ICD_FILENAMES?.includes('lvp')) assert.match(r.stdout, /^--   adapter: llvmpipe.*: software, never chosen by auto$/m);
  const j = await runCli(['doctor', '--json']);
  const report = JSON.parse(j.stdout) as Record<string, unknown>;
  assert.equal(report.type, 'doctor');
  for (const k of ['node', 'images', 'backends', 'auto', 'canTrain', 'gpuBackend', 'fixes']) assert.ok(k in report, k);
  // The image decoder of predict and --images: sharp's versions, as the text says them.
  const images = report.images as { sharp: string; vips: string };
  assert.match(images.vips, /^\d+\.\d+\.\d+$/);
  assert.match(r.stdout, new RegExp(`^images:\nok   sharp ${images.sharp.replace(/\./g, '\\.')} \\(libvips ${images.vips.replace(/\./g, '\\.')}\\) decodes PNG, JPEG, WebP, AVIF, GIF and TIFF for predict and --images$`, 'm'));
  assert.equal(report.canTrain, true);
  const auto = (report.auto as { backend: string }).backend;
  assert.match(r.stdout, new RegExp(`^can train: yes, on ${auto}$`, 'm'));
  const backends = report.backends as { tensorflow: { libraries: object; driver: unknown }; webgpu: { package: string; adapters: unknown[] } };
  assert.ok('libcudart.so.11.0' in backends.tensorflow.libraries);
  assert.equal(backends.webgpu.package, '0.6.2');
  assert.ok(Array.isArray(backends.webgpu.adapters));
  // The wasm section: whether our matrix product has its fused multiply-add in this Node, as text and JSON alike.
  const wasm = (report.backends as { wasm: { fusedMultiplyAdd: boolean; threads: number } }).wasm;
  assert.equal(typeof wasm.fusedMultiplyAdd, 'boolean');
  assert.match(r.stdout, wasm.fusedMultiplyAdd ? /^wasm:\nok   fused multiply-add in the convolutions \(WebAssembly relaxed SIMD\)$/m : /^wasm:\n--   no WebAssembly relaxed SIMD in Node /m);
  assert.ok(Number.isInteger(wasm.threads) && wasm.threads >= 1);
  const g = await runCli(['doctor', '--require-gpu']);
  if (report.gpuBackend) assert.equal(g.code, 0, g.stderr);
  else {
    assert.equal(g.code, 3);
    assert.match(g.stderr, /^error: no GPU backend works here$/m);
    const hint = g.stderr.split('\n').find((l) => l.startsWith('hint: '))!;
    assert.ok(hint, g.stderr);
    // Each GPU backend's own fix; the CPU-only package is no answer to "no GPU".
    assert.doesNotMatch(hint, /@tensorflow\/tfjs-node@/, hint);
    assert.match(hint, /tfjs-node-gpu/);
    assert.match(hint, /Vulkan|WebGPU/);
  }
});

test('alexnet bench: a tiny run reports every field, as text and JSON', async () => {
  const r = await runCli(['bench', '--backend', 'wasm', '--steps', '1', '--batch-size', '4', '--eval-batch-size', '4', '--no-decode', '--json', '-q']);
  assert.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout) as Record<string, unknown> & { decode: Record<string, number> | null };
  assert.equal(b.backend, 'wasm');
  assert.equal(b.batchSize, 4);
  assert.equal(b.threads, THREADS_HERE, 'one thread per core, at most 4');
  for (const k of ['stepMsMedian', 'trainImagesPerSecond', 'evalMsMedian', 'evalImagesPerSecond', 'epochSeconds']) {
    assert.ok(typeof b[k] === 'number' && (b[k] as number) > 0, k);
  }
  assert.equal(b.decode, null, '--no-decode');
  const t = await runCli(['bench', '--backend', 'all', '--steps', '1', '--batch-size', '4', '--eval-batch-size', '4']);
  assert.equal(t.code, 0, t.stderr);
  // wasm on one thread per core (the default), then on one for comparison; a machine of one core runs it once.
  if (THREADS_HERE > 1) assert.match(t.stdout, new RegExp(`^wasm \\(CPU; asked for with --backend wasm\\), ${THREADS_HERE} threads\n[^]*^wasm \\(CPU; asked for with --backend wasm\\), 1 thread$`, 'm'));
  else assert.match(t.stdout, /^wasm \(CPU; asked for with --backend wasm\), 1 thread$/m);
  assert.match(t.stdout, /train step \(batch 4\): [\d.]+ ms median of 1/);
  assert.match(t.stdout, /implied epoch \(50,000 train \+ 10,000 test\): [\d.]+ s/);
  assert.equal(t.stdout.match(/^decoding 60,000 records: [\d.]+ ms \([\d.]+ MB\/s\)$/gm)?.length, 1, 'decoding timed once, for all the runs');
});

test('WebGPU adapters: software ones are recognised by flag or by name, hardware ones are not', () => {
  // [adapter.info as Dawn reports it, software?]
  const cases: [GpuAdapterInfo, boolean][] = [
    [{ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1', isFallbackAdapter: true }, true],
    [{ vendor: 'google', architecture: '', device: 'SwiftShader Device (Subzero)', description: 'SwiftShader driver' }, true],
    [{ vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: 'NVIDIA: 580.159.04 580.159.4.0' }, false],
    [{ vendor: 'apple', architecture: 'metal-3', device: 'Apple M2', description: '' }, false],
    [{ vendor: 'amd', architecture: 'rdna-3', device: 'AMD Radeon RX 7900 XTX (RADV NAVI31)', description: 'radv Mesa 24.2.8' }, false],
  ];
  for (const [info, software] of cases) assert.equal(describeAdapter(info).software, software, info.device);
  assert.equal(describeAdapter(cases[2]![0]).name, 'NVIDIA H200');
});

test('WebGPU: Vulkan drivers chosen by hand are software only when every one is', () => {
  const dir = tmpDir();
  const icd = (name: string, library: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library } }));
    return f;
  };
  const lvp = icd('lvp_icd.json', 'libvulkan_lvp.so');
  const swift = icd('vk_swiftshader_icd.json', './libvk_swiftshader.so');
  const nvidia = icd('nvidia_icd.json', 'libGLX_nvidia.so.0');
  assert.equal(icdsByHand({}), null);
  assert.deepEqual(icdsByHand({ VK_ICD_FILENAMES: `${lvp}:${swift}` })!.map((d) => d.software), [true, true]);
  assert.deepEqual(icdsByHand({ VK_DRIVER_FILES: `${lvp}:${nvidia}` })!.map((d) => d.software), [true, false]);
});

test('WebGPU fixes: per platform, and a container whose NVIDIA_DRIVER_CAPABILITIES lacks graphics', () => {
  assert.match(adapterFix('no-loader', {}, 'linux'), /apt-get install libvulkan1/);
  assert.match(adapterFix('no-adapter', { NVIDIA_DRIVER_CAPABILITIES: 'compute,utility' }, 'linux'), /lacks graphics.*NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics/);
  assert.match(adapterFix('no-adapter', { NVIDIA_DRIVER_CAPABILITIES: 'all' }, 'linux'), /Vulkan driver/);
  assert.match(adapterFix('software', {}, 'darwin'), /Metal/);
  assert.match(adapterFix('no-adapter', {}, 'win32'), /D3D12/);
});
