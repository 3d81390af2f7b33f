// The network, our wasm kernels against the cpu backend's, one SGD step on both, and memory.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { switchBackendForTests } from '../src/backends/index.js';
import { DeviceRunner } from '../src/backends/runner.js';
import { DataParallel, shardSizes } from '../src/backends/wasm/parallel.js';
import { PARAMETER_COUNT, createModel, summarize } from '../src/model.js';
import { trainStep } from '../src/step.js';
import { relErr } from './helpers.js';
import * as tf from '../src/tf.js';

/** Runs `f` on a backend with plain arrays in and out, so nothing crosses backends by accident. */
async function on<T>(backend: 'wasm' | 'cpu', f: () => T): Promise<T> {
  await switchBackendForTests(backend);
  return tf.tidy(f as () => tf.TensorContainer) as T;
}

function randomArray(n: number, seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal([n], 0, 1, 'float32', seed).dataSync() as Float32Array).slice();
}


describe('model', () => {
  before(() => switchBackendForTests('wasm'));

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
  // This network's shapes at batch 4: the cpu backend takes ~10 s for conv2's gradients even so.
  const convCases = [
    { name: 'conv1', x: [4, 32, 32, 3], w: [5, 5, 3, 64] },
    { name: 'conv2', x: [4, 13, 13, 64], w: [5, 5, 64, 64] },
  ];
  for (const c of convCases) {
    test(`Conv2DBackpropFilter and Conv2DBackpropInput, ${c.name}`, async () => {
      const n = (s: number[]) => s.reduce((p, q) => p * q, 1);
      const outShape = [c.x[0]!, c.x[1]! - 4, c.x[2]! - 4, 64];
      const xv = randomArray(n(c.x), 1);
      const wv = randomArray(n(c.w), 2);
      const dyv = randomArray(n(outShape), 3);
      const grads = (backend: 'wasm' | 'cpu') => on(backend, () => {
        const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
        const w = tf.tensor4d(wv, c.w as [number, number, number, number]);
        const dy = tf.tensor4d(dyv, outShape as [number, number, number, number]);
        const dw = tf.grad((f) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, 1, 'valid'), dy)))(w);
        const dx = tf.conv2dTranspose(dy, w, c.x as [number, number, number, number], 1, 'valid');
        return { dw: dw.dataSync().slice(), dx: dx.dataSync().slice() };
      });
      const wasm = await grads('wasm');
      const cpu = await grads('cpu');
      assert.ok(relErr(wasm.dw, cpu.dw) <= 1e-4, `dW relative error ${relErr(wasm.dw, cpu.dw)}`);
      assert.ok(relErr(wasm.dx, cpu.dx) <= 1e-4, `dx relative error ${relErr(wasm.dx, cpu.dx)}`);
    });
  }

  test('the filter-gradient kernel rejects a stride it does not cover', async () => {
    await switchBackendForTests('wasm');
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
  });

  test('one whole SGD step: loss and every updated weight match the cpu backend within 1e-4', async () => {
    const batch = 4; // ~15 s on the cpu backend
    const xv = randomArray(batch * 32 * 32 * 3, 8).map((v) => Math.max(-1, Math.min(1, v / 2)));
    const labels = Int32Array.from({ length: batch }, (_, i) => (i * 3) % 10);
    const step = async (backend: 'wasm' | 'cpu') => {
      await switchBackendForTests(backend);
      const model = createModel({ seed: 11 });
      const opt = tf.train.sgd(0.1);
      const x = tf.tensor4d(xv, [batch, 32, 32, 3]);
      const y = tf.tensor1d(labels, 'int32');
      const { loss, acc } = trainStep(model, opt, x, y);
      const out = { loss: loss.dataSync()[0]!, weights: model.weights.map((w) => w.read().dataSync().slice()) };
      tf.dispose([x, y, loss, acc]);
      model.dispose();
      opt.dispose();
      return out;
    };
    const wasm = await step('wasm');
    const cpu = await step('cpu');
    assert.ok(Math.abs(wasm.loss - cpu.loss) <= 1e-4, `loss ${wasm.loss} vs ${cpu.loss}`);
    wasm.weights.forEach((w, i) => {
      let worst = 0;
      for (let k = 0; k < w.length; k++) worst = Math.max(worst, Math.abs(w[k]! - cpu.weights[i]![k]!));
      assert.ok(worst <= 1e-4, `weight ${i}: max |wasm - cpu| ${worst}`);
    });
  });

  test('a training step leaves tf.memory().numTensors unchanged', async () => {
    await switchBackendForTests('wasm');
    const model = createModel({ seed: 1 });
    const opt = tf.train.sgd(0.1);
    const x = tf.randomUniform([4, 32, 32, 3], -1, 1) as tf.Tensor4D;
    const y = tf.tensor1d([1, 2, 3, 4], 'int32');
    tf.dispose(Object.values(trainStep(model, opt, x, y))); // the first step may create optimizer state
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(Object.values(trainStep(model, opt, x, y)));
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, y]);
    model.dispose();
  });

  test('data-parallel steps and evaluation (3 threads, uneven shards) match one thread within 1e-5, without leaking tensors', async () => {
    await switchBackendForTests('wasm');
    const batch = 7; // shards of 3, 2 and 2
    const xv = randomArray(batch * 32 * 32 * 3, 5).map((v) => Math.max(-1, Math.min(1, v / 2)));
    const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7) % 10);
    const one = createModel({ seed: 3 });
    const many = createModel({ seed: 3 });
    const [opt1, optN] = [tf.train.sgd(0.1), tf.train.sgd(0.1)];
    const dp = await DataParallel.start(3, many.trainableWeights.map((w) => w.shape as number[]));
    try {
      const x = tf.tensor4d(xv, [batch, 32, 32, 3]);
      const y = tf.tensor1d(labels, 'int32');
      const before = tf.memory().numTensors;
      for (let s = 0; s < 2; s++) {
        const a = trainStep(one, opt1, x, y);
        const b = await dp.stepOn(many, optN, xv, labels, batch);
        assert.ok(Math.abs(a.loss.dataSync()[0]! - b.loss.dataSync()[0]!) <= 1e-5, 'loss');
        assert.ok(Math.abs(a.acc.dataSync()[0]! - b.acc.dataSync()[0]!) <= 1e-6, 'accuracy');
        tf.dispose([a.loss, a.acc, b.loss, b.acc]);
      }
      assert.equal(tf.memory().numTensors, before);
      one.trainableWeights.forEach((w, i) => {
        assert.ok(relErr(many.trainableWeights[i]!.read().dataSync(), w.read().dataSync()) <= 1e-5, w.name);
      });
      // Evaluation shared out the same way: 11 images in batches of 4, 4 and 3, each cut among 3 threads.
      const split = { images: Uint8Array.from({ length: 11 * 3072 }, (_, i) => (i * 131) % 256), labels: Uint8Array.from({ length: 11 }, (_, i) => i % 10), count: 11 };
      const alone = await new DeviceRunner(1).evaluate(many, split, 4);
      const shared = await dp.evaluate(many, split, 4);
      assert.ok(Math.abs(alone.loss - shared.loss) <= 1e-5, `loss ${alone.loss} vs ${shared.loss}`);
      assert.ok(Math.abs(alone.acc - shared.acc) <= 1e-6, `accuracy ${alone.acc} vs ${shared.acc}`);
      assert.deepEqual([...shared.predictions], [...alone.predictions]);
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([x, y]);
    } finally {
      await dp.dispose();
      one.dispose();
      many.dispose();
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
