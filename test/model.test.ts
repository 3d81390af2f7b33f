// The network, our wasm kernels against the cpu backend's (and our cpu kernel against the stock one), whole SGD
// steps of the runners that training uses, data-parallel steps against one thread, and memory.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { inOrder } from '../src/batches.js';
import { type Runner } from '../src/backends/index.js';
import { stockConv2DBackpropFilter } from '../src/backends/cpu/kernels/Conv2DBackpropFilter.js';
import { OpsRunner } from '../src/backends/runner.js';
import { DataParallel, shardSizes } from '../src/backends/wasm/parallel.js';
import type { Split } from '../src/data/cifar.js';
import { PARAMETER_COUNT, createModel, summarize } from '../src/model.js';
import { lessonRecipe } from '../src/recipe.js';
import { AUTO_LINE, relErr, runCli, useBackend } from './helpers.js';
import tf from '../src/tf.cjs';

/** Runs `f` on a backend with plain arrays in and out, so nothing crosses backends by accident. */
async function on<T>(backend: 'wasm' | 'cpu', f: () => T): Promise<T> {
  await useBackend(backend);
  return tf.tidy(f as () => tf.TensorContainer) as T;
}

function randomArray(n: number, seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal([n], 0, 1, 'float32', seed).dataSync() as Float32Array).slice();
}

/** `n` images whose pixels hash their position, labels cycling through the classes. */
const syntheticSplit = (n: number, salt: number): Split => ({
  images: Uint8Array.from({ length: n * 3072 }, (_, i) => (i * 131 + salt * 17 + (i >> 9)) & 0xff),
  labels: Uint16Array.from({ length: n }, (_, i) => (i * 7 + salt) % 10),
  count: n,
});


describe('model', () => {
  before(() => useBackend('wasm'));

  test('the seed\'s table: layer shapes, 576,778 parameters, [1, 10] out', () => {
    const model = createModel({ seed: 1 });
    const s = summarize(model);
    assert.equal(s.totalParams, PARAMETER_COUNT);
    assert.deepEqual(s.outputShape, [1, 10]);
    assert.deepEqual(s.layers.map((l) => [l.name, l.outputShape.join('x'), l.params]), [
      ['conv1', '28x28x64', 4864],
      ['max_pool1', '13x13x64', 0],
      ['conv2', '9x9x64', 102464],
      ['max_pool2', '4x4x64', 0],
      ['flatten', '1024', 0],
      ['fc1', '384', 393600],
      ['fc2', '192', 73920],
      ['fc3', '10', 1930],
    ]);
    model.dispose();
  });

  test('PyTorch initialisation: every weight and bias within +-1/sqrt(fan_in), and not all tiny', () => {
    const model = createModel({ seed: 7 });
    const fanIn: Record<string, number> = { conv1: 75, conv2: 1600, fc1: 1024, fc2: 384, fc3: 192 };
    for (const w of model.weights) {
      const layer = w.originalName.split('/')[0]!;
      const bound = 1 / Math.sqrt(fanIn[layer]!);
      const v = w.read().dataSync();
      let max = 0;
      for (const x of v) max = Math.max(max, Math.abs(x));
      assert.ok(max <= bound, `${w.originalName}: max |w| ${max} > ${bound}`);
      assert.ok(max > bound * 0.8, `${w.originalName}: max |w| ${max} looks too small for uniform(+-${bound})`);
    }
    model.dispose();
  });

  test('the same seed gives the same weights; glorot has zero biases', () => {
    const a = createModel({ seed: 3 });
    const b = createModel({ seed: 3 });
    a.weights.forEach((w, i) => assert.deepEqual(w.read().dataSync(), b.weights[i]!.read().dataSync()));
    const g = createModel({ init: 'glorot', seed: 3 });
    assert.ok(g.weights.filter((w) => w.originalName.endsWith('bias')).every((w) => w.read().dataSync().every((x) => x === 0)));
    [a, b, g].forEach((m) => m.dispose());
  });
});

describe('wasm kernels against the cpu backend', () => {
  // This network's shapes at batch 4: the cpu backend takes ~10 s for conv2's gradients even so. Then odd shapes:
  // rows left over from the product's 4-row tiles, a window not square; and 6 output channels, which our
  // product (a multiple of 8 columns) leaves to the stock kernels and XNNPACK.
  const convCases = [
    { name: 'conv1', x: [4, 32, 32, 3], w: [5, 5, 3, 64] },
    { name: 'conv2', x: [4, 13, 13, 64], w: [5, 5, 64, 64] },
    { name: 'odd rows, a 3x2 window', x: [3, 9, 7, 8], w: [3, 2, 8, 16] },
    { name: '6 output channels', x: [2, 8, 8, 3], w: [3, 3, 3, 6] },
  ];
  for (const c of convCases) {
    test(`Conv2D, Conv2DBackpropFilter and Conv2DBackpropInput, ${c.name}`, async () => {
      const n = (s: number[]) => s.reduce((p, q) => p * q, 1);
      const outShape = [c.x[0]!, c.x[1]! - c.w[0]! + 1, c.x[2]! - c.w[1]! + 1, c.w[3]!];
      const xv = randomArray(n(c.x), 1);
      const wv = randomArray(n(c.w), 2);
      const dyv = randomArray(n(outShape), 3);
      const grads = (backend: 'wasm' | 'cpu') => on(backend, () => {
        const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
        const w = tf.tensor4d(wv, c.w as [number, number, number, number]);
        const dy = tf.tensor4d(dyv, outShape as [number, number, number, number]);
        const y = tf.conv2d(x, w, 1, 'valid');
        const dw = tf.grad((f) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, 1, 'valid'), dy)))(w);
        const dx = tf.conv2dTranspose(dy, w, c.x as [number, number, number, number], 1, 'valid');
        return { y: y.dataSync().slice(), dw: dw.dataSync().slice(), dx: dx.dataSync().slice() };
      });
      const wasm = await grads('wasm');
      const cpu = await grads('cpu');
      assert.ok(relErr(wasm.y, cpu.y) <= 1e-5, `y relative error ${relErr(wasm.y, cpu.y)}`);
      assert.ok(relErr(wasm.dw, cpu.dw) <= 1e-4, `dW relative error ${relErr(wasm.dw, cpu.dw)}`);
      assert.ok(relErr(wasm.dx, cpu.dx) <= 1e-4, `dx relative error ${relErr(wasm.dx, cpu.dx)}`);
    });
  }

  test('conv1\'s filter gradient, read in place, is the product of its matrix of patches to the bit', async () => {
    // The kernel reads the patches in x transposed, in runs of OW values that the sum's blocks of 256 cut; the
    // product of the explicit [75, n*OH*OW] matrix (tf.matMul, the same blocks) sums the same values in the same
    // order, so every value must match exactly.
    const [n, h, w, ci, k, co] = [2, 32, 32, 3, 5, 64];
    const [oh, ow] = [h - k + 1, w - k + 1];
    const xv = randomArray(n * h * w * ci, 11);
    const dyv = randomArray(n * oh * ow * co, 12);
    const got = await on('wasm', () => {
      const x = tf.tensor4d(xv, [n, h, w, ci]);
      const dy = tf.tensor4d(dyv, [n, oh, ow, co]);
      const dw = tf.grad((f) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, 1, 'valid'), dy)))(tf.zeros([k, k, ci, co]) as tf.Tensor4D);
      const patches = new Float32Array(k * k * ci * n * oh * ow);
      let o = 0;
      for (let r = 0; r < k; r++) for (let s = 0; s < k; s++) for (let c = 0; c < ci; c++) {
        for (let b = 0; b < n; b++) for (let y = 0; y < oh; y++) for (let z = 0; z < ow; z++) patches[o++] = xv[((b * h + y + r) * w + z + s) * ci + c]!;
      }
      const product = tf.matMul(tf.tensor2d(patches, [k * k * ci, n * oh * ow]), tf.reshape(dy, [n * oh * ow, co]));
      return { kernel: dw.dataSync().slice(), product: product.dataSync().slice() };
    });
    assert.deepEqual(got.kernel, got.product);
  });

  test('FusedConv2D (evaluation) gives the values of training\'s conv, bias add and ReLU, to the bit', async () => {
    const xv = randomArray(3 * 13 * 13 * 64, 13);
    const wv = randomArray(5 * 5 * 64 * 64, 14).map((v) => v / 40);
    const bv = randomArray(64, 15);
    const got = await on('wasm', () => {
      const [x, w, b] = [tf.tensor4d(xv, [3, 13, 13, 64]), tf.tensor4d(wv, [5, 5, 64, 64]), tf.tensor1d(bv)];
      return {
        fused: tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'valid', bias: b, activation: 'relu' }).dataSync().slice(),
        apart: tf.relu(tf.add(tf.conv2d(x, w, 1, 'valid'), b)).dataSync().slice(),
        linear: tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'valid', bias: b }).dataSync().slice(),
        added: tf.add(tf.conv2d(x, w, 1, 'valid'), b).dataSync().slice(),
      };
    });
    assert.ok(got.fused.some((v) => v === 0) && got.fused.some((v) => v > 0), 'the ReLU cut some values and kept others');
    assert.deepEqual(got.fused, got.apart);
    assert.deepEqual(got.linear, got.added);
  });

  test('Transpose, ours and the stock kernel it leaves the rest to, gives the cpu backend\'s values to the bit', async () => {
    // Ours takes float32 of rank 2 to 4 whose last axis moves, it and the axis taking its place multiples of 4.
    const cases: [number[], number[]][] = [
      [[8, 5, 3, 12], [3, 1, 2, 0]], // conv2's filter gradient's input, smaller
      [[4, 6, 8, 4], [3, 0, 1, 2]],
      [[4, 3, 8, 12], [2, 3, 0, 1]],
      [[16, 8], [1, 0]],
      [[3, 8, 12], [2, 0, 1]],
      [[4, 6, 8, 3], [3, 0, 1, 2]], // a last axis of 3: the stock kernel
      [[4, 6, 8, 4], [1, 2, 0, 3]], // the last axis stays: the stock kernel
    ];
    for (const [shape, perm] of cases) {
      const v = randomArray(shape.reduce((a, b) => a * b, 1), 16);
      const run = (backend: 'wasm' | 'cpu') => on(backend, () => tf.transpose(tf.tensor(v, shape), perm).dataSync().slice());
      assert.deepEqual(await run('wasm'), await run('cpu'), `${JSON.stringify(shape)} by ${JSON.stringify(perm)}`);
    }
  });

  test('the filter-gradient kernel rejects a stride it does not cover', async () => {
    await useBackend('wasm');
    const x = tf.zeros([1, 8, 8, 2]) as tf.Tensor4D;
    const dy = tf.zeros([1, 3, 3, 4]) as tf.Tensor4D;
    assert.throws(() => tf.grad((f) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, 2, 'valid'), dy)))(tf.zeros([3, 3, 2, 4]) as tf.Tensor4D), /does not support stride 2x2/);
    tf.dispose([x, dy]);
  });

  test('MaxPoolGrad (with ReLU ties), bias Sum and transposed MatMul', async () => {
    const xv = randomArray(4 * 28 * 28 * 8, 4).map((v) => Math.max(v, 0)); // ReLU zeros make ties
    const dyv = randomArray(4 * 13 * 13 * 8, 5);
    const av = randomArray(16 * 32, 6);
    const bv = randomArray(16 * 24, 7);
    const run = (backend: 'wasm' | 'cpu') => on(backend, () => {
      const x = tf.tensor4d(xv, [4, 28, 28, 8]);
      const dy = tf.tensor4d(dyv, [4, 13, 13, 8]);
      const pool = tf.grad((t) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 3, 2, 'valid'), dy)))(x);
      const sum = tf.sum(x, [0, 1, 2]);
      const a = tf.tensor2d(av, [16, 32]);
      const b = tf.tensor2d(bv, [16, 24]);
      return {
        pool: pool.dataSync().slice(),
        sum: sum.dataSync().slice(),
        tA: tf.matMul(a, b, true, false).dataSync().slice(),
        tB: tf.matMul(b, a, true, false).dataSync().slice(),
        tAB: tf.matMul(a, tf.transpose(b), true, true).dataSync().slice(),
      };
    });
    const wasm = await run('wasm');
    const cpu = await run('cpu');
    for (const k of ['pool', 'sum', 'tA', 'tB', 'tAB'] as const) {
      assert.ok(relErr(wasm[k], cpu[k]) <= 1e-5, `${k}: relative error ${relErr(wasm[k], cpu[k])}`);
    }
    // 8 channels go through our WebAssembly four at a time, 9 through the JS loop: channels are independent, so
    // the first 8 of 9 must be the same to the bit (the kernel claims the loop's sums, in the loop's order).
    const ninth = randomArray(4 * 28 * 28, 8).map((v) => Math.max(v, 0));
    const dyNinth = randomArray(4 * 13 * 13, 9);
    const loop = await on('wasm', () => {
      const x = tf.concat([tf.tensor4d(xv, [4, 28, 28, 8]), tf.tensor4d(ninth, [4, 28, 28, 1])], 3);
      const dy = tf.concat([tf.tensor4d(dyv, [4, 13, 13, 8]), tf.tensor4d(dyNinth, [4, 13, 13, 1])], 3);
      const pool = tf.grad((t) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 3, 2, 'valid'), dy)))(x);
      return tf.slice(pool, [0, 0, 0, 0], [4, 28, 28, 8]).dataSync().slice();
    });
    assert.deepEqual(wasm.pool, loop);
    // The bias gradient's Sum the same way: 16 channels through our WebAssembly, 17 through the JS loop.
    const sv = randomArray(3 * 5 * 7 * 17, 10);
    const sums = await on('wasm', () => {
      const x17 = tf.tensor4d(sv, [3, 5, 7, 17]);
      const x16 = tf.slice(x17, [0, 0, 0, 0], [3, 5, 7, 16]);
      return { simd: tf.sum(x16, [0, 1, 2]).dataSync().slice(), loop: tf.slice(tf.sum(x17, [0, 1, 2]), [0], [16]).dataSync().slice() };
    });
    const cpuSum = await on('cpu', () => tf.sum(tf.slice(tf.tensor4d(sv, [3, 5, 7, 17]), [0, 0, 0, 0], [3, 5, 7, 16]), [0, 1, 2]).dataSync().slice());
    assert.deepEqual(sums.simd, sums.loop);
    assert.ok(relErr(sums.simd, cpuSum) <= 1e-5, `sum: relative error ${relErr(sums.simd, cpuSum)}`);
  });

  test('two runner steps (what training runs): the loss and every updated weight match the cpu backend within 1e-4', async () => {
    const split = syntheticSplit(4, 8);
    const steps = async (backend: 'wasm' | 'cpu') => {
      const b = await useBackend(backend);
      const model = createModel({ seed: 11 });
      const runner = await b.runner({ model, recipe: lessonRecipe(11), settings: { threads: 1 } });
      for (let i = 0; i < 2; i++) await runner.step(split, inOrder(0, 4), 0.1);
      const out = { numbers: await runner.numbers(), weights: model.weights.map((w) => w.read().dataSync().slice()) };
      await runner.dispose();
      model.dispose();
      return out;
    };
    const wasm = await steps('wasm');
    const cpu = await steps('cpu');
    assert.ok(relErr(wasm.numbers, cpu.numbers) <= 1e-4, `losses and accuracies ${wasm.numbers} vs ${cpu.numbers}`);
    wasm.weights.forEach((w, i) => assert.ok(relErr(w, cpu.weights[i]!) <= 1e-4, `weight ${i}: relative error ${relErr(w, cpu.weights[i]!)}`));
  });

  test('the runners\' steps and evaluation leave tf.memory().numTensors unchanged (one thread and three)', async () => {
    const backend = await useBackend('wasm');
    const split = syntheticSplit(6, 2);
    for (const threads of [1, 3]) {
      const model = createModel({ seed: 1 });
      const runner = await backend.runner({ model, recipe: lessonRecipe(1), settings: { threads } });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) await runner.step(split, inOrder(i * 3, 3), 0.1);
      assert.equal((await runner.numbers()).length, 4, 'a loss and an accuracy per step');
      const r = await runner.evaluate(split, 4);
      assert.equal(r.predictions.length, 6);
      assert.equal(tf.memory().numTensors, before, `${threads} thread(s)`);
      await runner.dispose();
      model.dispose();
    }
  });

  test('data-parallel steps and evaluation (3 threads, uneven shards, label smoothing) match one thread within 1e-5', async () => {
    await useBackend('wasm');
    const split = syntheticSplit(11, 5);
    const one = createModel({ seed: 3 });
    const many = createModel({ seed: 3 });
    // With label smoothing: the workers' shards take the recipe's loss too (else their gradients would differ).
    const recipe = { ...lessonRecipe(1), labelSmoothing: 0.2 };
    const alone = new OpsRunner({ model: one, recipe, settings: {} }, { threads: 1 });
    const dp = await DataParallel.start({ model: many, recipe, settings: {} }, 3);
    try {
      for (const runner of [alone, dp] as Runner[]) for (let s = 0; s < 2; s++) await runner.step(split, inOrder(s, 7), 0.1); // shards of 3, 2 and 2
      const [a, b] = [await alone.numbers(), await dp.numbers()];
      assert.ok(relErr(b, a) <= 1e-5, `losses and accuracies ${b} vs ${a}`);
      one.trainableWeights.forEach((w, i) => assert.ok(relErr(many.trainableWeights[i]!.read().dataSync(), w.read().dataSync()) <= 1e-5, w.name));
      // Evaluation shared out the same way: 11 images in batches of 4, 4 and 3, each cut among 3 threads.
      const e1 = await alone.evaluate(split, 4);
      const e3 = await dp.evaluate(split, 4);
      assert.ok(Math.abs(e1.loss - e3.loss) <= 1e-5, `loss ${e1.loss} vs ${e3.loss}`);
      assert.ok(Math.abs(e1.acc - e3.acc) <= 1e-6, `accuracy ${e1.acc} vs ${e3.acc}`);
      assert.deepEqual([...e3.predictions], [...e1.predictions]);
      assert.deepEqual([...e3.ranks], [...e1.ranks], 'each label\'s rank, for top-5');
      assert.ok(relErr(e3.logits, e1.logits) <= 1e-5, `logits, for test-time augmentation: ${relErr(e3.logits, e1.logits)}`);
      assert.ok(e1.ranks.every((r, i) => (r === 0) === (e1.predictions[i] === split.labels[i])), 'rank 0 is a top-1 hit');
    } finally {
      await dp.dispose();
      one.dispose();
      many.dispose();
    }
  });
});

describe('the cpu backend\'s filter gradient', () => {
  test('is the stock kernel\'s, bit for bit (valid and same padding, strides, odd shapes)', async () => {
    await useBackend('cpu');
    const stock = tf.getKernel('Conv2DBackpropFilter', 'cpu')!; // ours, registered over the stock one...
    const cases = [
      { x: [2, 13, 13, 6], f: [5, 5, 6, 4], strides: 1, pad: 'valid' as const },
      { x: [3, 11, 9, 5], f: [3, 4, 5, 7], strides: 2, pad: 'same' as const },
      { x: [1, 8, 10, 2], f: [2, 3, 2, 3], strides: [2, 1] as [number, number], pad: 'valid' as const },
    ];
    for (const c of cases) {
      const x = tf.tensor4d(randomArray(c.x.reduce((a, b) => a * b), 1), c.x as [number, number, number, number]);
      const filterShape = c.f as [number, number, number, number];
      const y = tf.conv2d(x, tf.zeros(filterShape), c.strides as [number, number], c.pad);
      const dy = tf.tensor4d(randomArray(y.size, 2), y.shape as [number, number, number, number]);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape };
      const args = { inputs: { x, dy }, backend: tf.backend(), attrs } as never;
      const ours = tf.engine().makeTensorFromTensorInfo(stock.kernelFunc(args) as tf.TensorInfo);
      // ...and the stock one it replaced.
      const theirs = tf.engine().makeTensorFromTensorInfo(stockConv2DBackpropFilter!(args) as tf.TensorInfo);
      assert.deepEqual(ours.dataSync(), theirs.dataSync(), JSON.stringify(c));
      tf.dispose([x, y, dy, ours, theirs]);
    }
  });
});

test('shardSizes: as equal as possible, larger first, never an empty shard', () => {
  const cases: [number, number, number[]][] = [
    [64, 2, [32, 32]],
    [7, 3, [3, 2, 2]],
    [65, 4, [17, 16, 16, 16]],
    [1, 4, [1]],
    [3, 1, [3]],
  ];
  for (const [n, k, want] of cases) assert.deepEqual(shardSizes(n, k), want, `${n} over ${k}`);
});

test('alexnet summary: the table, and the same as JSON; auto says which backend and why', async () => {
  const r = await runCli(['summary']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^conv1 +Conv2D +\[28, 28, 64\] +4,864$/m);
  assert.match(r.stdout, /^fc3 +Dense +\[10\] +1,930$/m);
  assert.match(r.stdout, /^total parameters: 576,778$/m);
  assert.match(r.stdout, /^output of a zero \[1, 32, 32, 3\] input: \[1, 10\]$/m);
  assert.match(r.stderr, AUTO_LINE);
  const j = await runCli(['summary', '--json', '-q']);
  const s = JSON.parse(j.stdout) as { type: string; totalParams: number; outputShape: number[]; layers: { name: string }[] };
  assert.equal(s.type, 'network');
  assert.equal(s.totalParams, 576778);
  assert.deepEqual(s.outputShape, [1, 10]);
  assert.deepEqual(s.layers.map((l) => l.name), ['conv1', 'max_pool1', 'conv2', 'max_pool2', 'flatten', 'fc1', 'fc2', 'fc3']);
});
