// The webgpu backend (issue #11): each kernel of the training path against the cpu backend, one SGD step, no
// leaked tensors, GPU errors as the tool's errors, and `alexnet train --backend webgpu` end to end, with a
// checkpoint that `eval` on wasm reads back. On a machine without a GPU this runs on the software adapter that
// scripts/software-vulkan.sh unpacks (`npm test` points the tests at it). Where no adapter exists the tests
// skip, saying why; with ALEXNET_REQUIRE_WEBGPU=1 (CI) they fail instead.
//
// Shapes are small: lavapipe takes ~0.9 s for a batch-16 step. Numerics: lavapipe's forward pass differs from
// cpu by ~2e-7, which can flip a max-pool's argmax at a near-tie, so kernels are checked one by one, and
// whole steps by their loss and weights at a tolerance a flipped tie does not exceed.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { NORMALISE, epochBatches, inOrder } from '../src/batches.js';
import type { ActiveBackend } from '../src/backends/index.js';
import { TILE_M, planSplitK } from '../src/backends/webgpu/wgsl/splitk.js';
import { start } from '../src/backends/webgpu/index.js';
import { compilePlan, type Plan } from '../src/backends/webgpu/compiled/plan.js';
import type { CompiledRunner } from '../src/backends/webgpu/compiled/runner.js';
import { fusedObjective } from '../src/backends/webgpu/ops/runner.js';
import type { Split } from '../src/data/cifar.js';
import { createModel } from '../src/model.js';
import { lessonRecipe } from '../src/recipe.js';
import { lossAndGrads, lessonObjective, objectiveOf } from '../src/step.js';
import tf from '../src/tf.cjs';
import tfl from '../src/tfl.cjs';
import { relErr, runCli, serveArchive, tmpDir, useBackend } from './helpers.js';

let webgpu: ActiveBackend | null = null;
let why = '';
try {
  webgpu = await useBackend('webgpu');
} catch (e) {
  why = (e as Error).message;
}
const skip = webgpu === null ? `no WebGPU adapter here (${why}); bash scripts/software-vulkan.sh makes a software one` : false;
if (skip && process.env.ALEXNET_REQUIRE_WEBGPU === '1') throw new Error(`ALEXNET_REQUIRE_WEBGPU=1 but ${skip}`);

const randomArray = (n: number, seed: number) => {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
};


/** Runs `f` on `backend` and reads every tensor it returns, asynchronously (WebGPU cannot read synchronously). */
async function on(backend: 'webgpu' | 'cpu', f: () => Record<string, tf.Tensor>): Promise<Record<string, Float32Array>> {
  await useBackend(backend);
  const out = tf.tidy(f);
  const read: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(out)) read[k] = (await t.data()) as Float32Array;
  tf.dispose(Object.values(out));
  return read;
}

async function compare(f: () => Record<string, tf.Tensor>, tolerance: number): Promise<void> {
  const gpu = await on('webgpu', f);
  const cpu = await on('cpu', f);
  for (const k of Object.keys(cpu)) assert.ok(relErr(gpu[k]!, cpu[k]!) <= tolerance, `${k}: relative error ${relErr(gpu[k]!, cpu[k]!)} > ${tolerance}`);
}

const t4 = (v: Float32Array, s: number[]) => tf.tensor4d(v, s as [number, number, number, number]);
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

test('planSplitK: whole tiles per chunk, every position in exactly one chunk, ~1,024 workgroups', () => {
  // [m, k, n] -> [slices, chunk]
  const cases: [number, number, number, number, number][] = [
    [64 * 28 * 28, 75, 64, 448, 112], // conv1 at batch 64: 2 tiles of k, 1 of n
    [512 * 28 * 28, 75, 64, 512, 784], // conv1 at batch 512
    [64 * 9 * 9, 1600, 64, 41, 128], // conv2 at batch 64: 25 tiles of k
    [15 * 28 * 28, 75, 64, 368, 32],
    [5, 3, 2, 1, 16],
  ];
  for (const [m, k, n, slices, chunk] of cases) {
    const p = planSplitK(m, k, n);
    assert.deepEqual(p, { slices, chunk }, `${m} x ${k} x ${n}`);
    assert.equal(p.chunk % TILE_M, 0);
    assert.ok((p.slices - 1) * p.chunk < m && p.slices * p.chunk >= m);
  }
});

describe('webgpu kernels against the cpu backend', { skip }, () => {
  // The network's two convolutions at batch 2, then odd shapes, strides and `same` padding.
  const convCases = [
    { name: 'conv1', x: [2, 32, 32, 3], w: [5, 5, 3, 64], stride: 1, pad: 'valid' as const },
    { name: 'conv2', x: [2, 13, 13, 64], w: [5, 5, 64, 64], stride: 1, pad: 'valid' as const },
    { name: 'odd channels and size', x: [3, 11, 9, 5], w: [3, 4, 5, 7], stride: 1, pad: 'valid' as const },
    { name: 'stride 2, same padding', x: [2, 12, 10, 6], w: [3, 3, 6, 9], stride: 2, pad: 'same' as const },
    // 11,760 positions: the split-K filter gradient takes chunks of two 16-position tiles, the last one short.
    { name: 'conv1 at batch 15', x: [15, 32, 32, 3], w: [5, 5, 3, 64], stride: 1, pad: 'valid' as const },
  ];
  for (const c of convCases) {
    test(`Conv2D, Conv2DBackpropFilter and Conv2DBackpropInput, ${c.name}`, async () => {
      const xv = randomArray(size(c.x), 1);
      const wv = randomArray(size(c.w), 2);
      await compare(() => {
        const x = t4(xv, c.x);
        const w = t4(wv, c.w);
        const y = tf.conv2d(x, w, c.stride, c.pad);
        const dy = tf.tensor(randomArray(y.size, 3), y.shape);
        const [dx, dw] = tf.grads((a, b) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), dy)))([x, w]);
        return { y, dx: dx!, dw: dw! };
      }, 1e-4);
    });
  }

  test('the filter gradient runs our split-K programs, not the stock kernel', async () => {
    await useBackend('webgpu');
    const x = tf.zeros([1, 8, 8, 2]) as tf.Tensor4D;
    const g = tf.grad((f) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, 'valid')))(tf.zeros([3, 3, 2, 4]) as tf.Tensor4D);
    await g.data();
    const programs = Object.keys((tf.backend() as unknown as { pipelineCache: object }).pipelineCache);
    assert.ok(programs.some((k) => k.startsWith('alexnetConv2DDerFilterSplitK_')), programs.join('\n'));
    assert.ok(!programs.some((k) => k.startsWith('conv2DDerFilter_')), 'the stock filter-gradient program ran');
    tf.dispose([x, g]);
  });

  test('bias, ReLU, MaxPool and their gradients (ReLU zeros make max-pool ties)', async () => {
    const xv = randomArray(2 * 28 * 28 * 8, 4);
    const bv = randomArray(8, 5);
    await compare(() => {
      const x = t4(xv, [2, 28, 28, 8]);
      const b = tf.tensor1d(bv);
      const f = (a: tf.Tensor, c: tf.Tensor) => tf.maxPool(tf.relu(tf.add(a, c)) as tf.Tensor4D, 3, 2, 'valid');
      const y = f(x, b);
      const dy = tf.tensor(randomArray(y.size, 6), y.shape);
      const [dx, db] = tf.grads((a, c) => tf.sum(tf.mul(f(a!, c!), dy)))([x, b]);
      return { y, dx: dx!, db: db! };
    }, 1e-5);
  });

  test('dense layers: MatMul (every transpose), bias Sum, softmax cross-entropy, its gradient, ArgMax', async () => {
    const av = randomArray(6 * 24, 7);
    const wv = randomArray(24 * 10, 8);
    const labels = [3, 1, 4, 1, 5, 9];
    await compare(() => {
      const a = tf.tensor2d(av, [6, 24]);
      const w = tf.tensor2d(wv, [24, 10]);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
      const loss = (p: tf.Tensor, q: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D));
      const [da, dw] = tf.grads(loss)([a, w]);
      return {
        loss: loss(a, w),
        da: da!,
        dw: dw!,
        tA: tf.matMul(w, a, true, true),
        argMax: tf.cast(tf.argMax(tf.matMul(a, w), 1), 'float32'),
        biasSum: tf.sum(a, 0),
      };
    }, 1e-5);
  });
});

test('auto and --gpu take a hardware adapter and never a software one', { skip }, async () => {
  for (const req of [{ auto: true, gpuOnly: false }, { auto: false, gpuOnly: true }]) {
    const r = await start(req);
    if (webgpu!.gpu) assert.equal(r.ok && r.backend.gpu, true, JSON.stringify(req));
    else assert.match(r.ok ? 'started' : r.reason, /software adapter/, JSON.stringify(req));
  }
});

describe('webgpu training step', { skip }, () => {
  after(() => useBackend('webgpu'));

  test('the op-by-op runner: two steps (gathered on the GPU, a one-dispatch update per weight) match the cpu backend', async () => {
    const split: Split = { images: Uint8Array.from({ length: 4 * 3072 }, (_, i) => (i * 37) & 0xff), labels: Uint16Array.from([3, 1, 4, 1]), count: 4 };
    const steps = async (name: 'webgpu' | 'cpu') => {
      const backend = await useBackend(name);
      const model = createModel({ seed: 12 });
      const runner = await backend.runner({ model, recipe: lessonRecipe(12), settings: { webgpuRunner: 'ops' } });
      for (let i = 0; i < 2; i++) await runner.step(split, inOrder(0, 4), 0.1);
      const numbers = await runner.numbers();
      await runner.sync();
      const weights = await Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
      await runner.dispose();
      model.dispose();
      return { numbers, weights };
    };
    const gpu = await steps('webgpu');
    const cpu = await steps('cpu');
    assert.ok(relErr(gpu.numbers, cpu.numbers) <= 1e-5, `losses and accuracies ${gpu.numbers} vs ${cpu.numbers}`);
    gpu.weights.forEach((w, i) => assert.ok(relErr(w, cpu.weights[i]!) <= 1e-4, `weight ${i}: relative error ${relErr(w, cpu.weights[i]!)}`));
    await useBackend('webgpu');
    const programs = Object.keys((tf.backend() as unknown as { pipelineCache: object }).pipelineCache);
    for (const p of ['alexnetSgdUpdate', 'alexnetGatherNormalise']) assert.ok(programs.some((k) => k.startsWith(p)), `${p} ran`);
  });

  test('the fused loss, accuracy and loss gradient equal the seed\'s on cpu (ties, large logits, odd batch)', async () => {
    const n = 9;
    const base = randomArray(n * 10, 21);
    const logitsV = Float32Array.from(base, (v, i) => (i < 10 ? 80 * v : i < 20 ? (i % 10 < 3 ? 2 : 1) : 4 * v)); // row 0 large, row 1 a 3-way tie
    const labels = Int32Array.from([3, 1, 0, 9, 4, 4, 7, 2, 5]);
    const run = async (name: 'webgpu' | 'cpu', objective: typeof lessonObjective) => {
      await useBackend(name);
      const logits = tf.tensor2d(logitsV, [n, 10]);
      const y = tf.tensor1d(labels, 'int32');
      const dy = tf.grad((l) => objective(l as tf.Tensor2D, y).loss)(logits);
      const { loss, acc } = objective(logits, y);
      const out = { loss: (await loss.data())[0]!, acc: (await acc.data())[0]!, dy: (await dy.data()) as Float32Array };
      tf.dispose([logits, y, dy, loss, acc]);
      return out;
    };
    // The seed's one-hot targets, and label smoothing as PyTorch's (tf.losses.softmaxCrossEntropy's on cpu).
    for (const smoothing of [0, 0.1, 0.35]) {
      const gpu = await run('webgpu', fusedObjective(smoothing));
      const cpu = await run('cpu', objectiveOf(smoothing));
      assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-5 * Math.max(1, cpu.loss), `smoothing ${smoothing}: loss ${gpu.loss} vs ${cpu.loss}`);
      assert.equal(gpu.acc, cpu.acc, 'accuracy: the first maximum, as tf.argMax');
      assert.ok(relErr(gpu.dy, cpu.dy) <= 1e-5, `smoothing ${smoothing}: d loss / d logits: relative error ${relErr(gpu.dy, cpu.dy)}`);
    }
  });

  test('the runner\'s steps and evaluation leave tf.memory().numTensors unchanged', async () => {
    const backend = await useBackend('webgpu');
    const model = createModel({ seed: 1 });
    const split: Split = { images: Uint8Array.from({ length: 6 * 3072 }, (_, i) => (i * 31) & 0xff), labels: Uint16Array.from([0, 1, 2, 3, 4, 5]), count: 6 };
    const runner = await backend.runner({ model, recipe: lessonRecipe(1), settings: {} });
    await runner.step(split, inOrder(0, 3), 0.1); // the first step uploads the split
    await runner.numbers();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) await runner.step(split, inOrder(3, 3), 0.1);
    assert.equal((await runner.numbers()).length, 4);
    const r = await runner.evaluate(split, 4);
    assert.equal(r.predictions.length, 6);
    assert.ok(Number.isFinite(r.loss));
    assert.equal(tf.memory().numTensors, before);
    await runner.dispose();
    model.dispose();
  });

  test('a GPU validation error becomes the tool\'s error, not stale numbers', async () => {
    const backend = await useBackend('webgpu');
    const model = createModel({ seed: 1 });
    const split = { images: new Uint8Array(2 * 3072), labels: Uint16Array.from([0, 1]), count: 2 };
    const runner = await backend.runner({ model, recipe: lessonRecipe(1), settings: {} });
    const device = (tf.backend() as unknown as { device: { createBuffer(d: object): unknown; queue: { onSubmittedWorkDone(): Promise<void> } } }).device;
    device.createBuffer({ size: 4, usage: 0 }); // invalid: a buffer needs a usage
    await device.queue.onSubmittedWorkDone();
    await assert.rejects(runner.evaluate(split, 2), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'BACKEND');
      assert.match(e.message, /^WebGPU: /);
      return true;
    });
    // Reported once: the next evaluation runs.
    assert.equal((await runner.evaluate(split, 2)).predictions.length, 2);
    await runner.dispose();
    model.dispose();
  });
});

describe('the compiled step (issue #18)', { skip }, () => {
  // 8 images whose pixels hash their position, and a batch of 4 of them.
  const split: Split = { images: Uint8Array.from({ length: 8 * 3072 }, (_, i) => (i * 37 + (i >> 7)) & 0xff), labels: Uint16Array.from([3, 1, 4, 1, 5, 9, 2, 6]), count: 8 };
  const recipe = { ...lessonRecipe(12), batchSize: 4, evalBatchSize: 8 };

  test('the plan is read from the model\'s own layers, weights where model.trainableWeights has them', () => {
    const model = createModel({ seed: 1 });
    const plan = compilePlan(model) as Plan;
    assert.deepEqual(plan.layers.map((l) => [l.name, l.op.kind, l.output.join('x')]), [
      ['conv1', 'conv', '28x28x64'],
      ['max_pool1', 'pool', '13x13x64'],
      ['conv2', 'conv', '9x9x64'],
      ['max_pool2', 'pool', '4x4x64'],
      ['flatten', 'flatten', '1x1x1024'],
      ['fc1', 'dense', '1x1x384'],
      ['fc2', 'dense', '1x1x192'],
      ['fc3', 'dense', '1x1x10'],
    ]);
    assert.equal(plan.size, 576_778);
    assert.deepEqual(plan.weights.map((w) => w.offset), [0, 4800, 4864, 107264, 107328, 500544, 500928, 574656, 574848, 576768]);
    model.dispose();
  });

  // The lesson's head, and CIFAR-100's (issue #27): the plan reads the head's width from the model.
  for (const [classes, labels] of [[10, [3, 1, 4, 1]], [100, [3, 97, 42, 99]]] as const) {
    test(`one step, ${classes} classes: the loss and every weight gradient within 1e-4 of the cpu backend's; 23 dispatches`, async () => {
      await useBackend('cpu');
      const model = createModel({ seed: 12, classes });
      const batch: Split = { images: split.images.subarray(0, 4 * 3072), labels: Uint16Array.from(labels), count: 4 };
      const x = tf.tensor4d(Float32Array.from(batch.images, (v) => NORMALISE[v]!), [4, 32, 32, 3]);
      const y = tf.tensor1d(Int32Array.from(batch.labels), 'int32');
      const want = lossAndGrads(model, x, y);
      const wantLoss = (await want.loss.data())[0]!;
      const wantGrads = await Promise.all(model.trainableWeights.map(async (w) => (await want.grads[(w.read() as tf.Variable).name]!.data()) as Float32Array));
      tf.dispose([x, y, want.loss, want.acc, ...Object.values(want.grads)]);
      const backend = await useBackend('webgpu');
      const runner = (await backend.runner({ model, recipe, settings: { webgpuRunner: 'compiled' } })) as CompiledRunner;
      try {
        assert.equal(runner.label, 'compiled');
        await runner.step(batch, inOrder(0, 4), 0.1);
        const [loss] = await runner.numbers();
        assert.ok(Math.abs(loss! - wantLoss) <= 1e-4 * Math.max(1, wantLoss), `loss ${loss} vs ${wantLoss}`);
        (await runner.probe.gradients!()).forEach((g, i) => assert.ok(relErr(g, wantGrads[i]!) <= 1e-4, `${model.trainableWeights[i]!.name}: relative error ${relErr(g, wantGrads[i]!)}`));
        assert.equal(runner.probe.dispatchesPerStep, 23);
      } finally {
        await runner.dispose();
        model.dispose();
      }
    });
  }

  test('20 steps (batches of 2 and 1, the shorter last batch of an epoch of 3): losses within 1e-3 of the cpu backend\'s', async () => {
    const steps = async (name: 'webgpu' | 'cpu') => {
      const backend = await useBackend(name);
      const model = createModel({ seed: 12 });
      const runner = await backend.runner({ model, recipe: { ...recipe, batchSize: 2 }, settings: { webgpuRunner: 'compiled' } });
      for (let s = 0; s < 20; s++) await runner.step(split, s % 2 === 0 ? inOrder(0, 2) : inOrder(2, 1), 0.05);
      const numbers = await runner.numbers();
      await runner.dispose();
      model.dispose();
      return numbers.filter((_, i) => i % 2 === 0);
    };
    const gpu = await steps('webgpu');
    const cpu = await steps('cpu');
    assert.ok(relErr(gpu, cpu) <= 1e-3, `losses ${gpu} vs ${cpu}`);
  });

  test('momentum, Nesterov, weight decay and label smoothing on augmented batches: each runner\'s weights and momentum within 1e-4 of the cpu backend\'s; a runner started from another\'s state continues bit for bit', async () => {
    const tuned = { ...recipe, momentum: 0.9, nesterov: true, weightDecay: 5e-4, labelSmoothing: 0.1, augment: 'crop,flip' as const };
    const batches = epochBatches(8, 4, 12, 0, tuned.augment);
    const run = async (name: 'webgpu' | 'cpu', webgpuRunner: string, from: { steps: number[]; state?: Float32Array; weights?: Float32Array[] }) => {
      const backend = await useBackend(name);
      const model = createModel({ seed: 12 });
      from.weights?.forEach((w, i) => (model.trainableWeights[i]!.read() as tf.Variable).assign(tf.tensor(w, model.trainableWeights[i]!.shape as number[])));
      const runner = await backend.runner({ model, recipe: tuned, settings: { webgpuRunner }, optimizerState: from.state ?? null });
      for (const s of from.steps) await runner.step(split, batches.batch(s % 2), 0.05 / (s + 1));
      await runner.numbers();
      await runner.sync();
      const weights = await Promise.all(model.trainableWeights.map(async (w) => (await w.read().data()) as Float32Array));
      const state = (await runner.optimizerState())!;
      await runner.dispose();
      model.dispose();
      return { weights, state };
    };
    const cpu = await run('cpu', 'compiled', { steps: [0, 1, 2] });
    const whole = await run('webgpu', 'compiled', { steps: [0, 1, 2] });
    for (const [webgpuRunner, gpu] of [['compiled', whole], ['ops', await run('webgpu', 'ops', { steps: [0, 1, 2] })]] as const) {
      assert.equal(gpu.state.length, 576_778);
      gpu.weights.forEach((w, i) => assert.ok(relErr(w, cpu.weights[i]!) <= 1e-4, `${webgpuRunner}: weight ${i}: ${relErr(w, cpu.weights[i]!)}`));
      assert.ok(relErr(gpu.state, cpu.state) <= 1e-4, `${webgpuRunner}: momentum ${relErr(gpu.state, cpu.state)}`);
    }
    const first = await run('webgpu', 'compiled', { steps: [0] });
    const rest = await run('webgpu', 'compiled', { steps: [1, 2], state: first.state, weights: first.weights });
    assert.deepEqual(rest, whole, 'stopped after a step and resumed from the checkpoint\'s weights and momentum: the same numbers');
  });

  test('evaluation equals the op-by-op runner\'s within 1e-5 (batches of 3: the last one shorter); bitwise the same run to run', async () => {
    const backend = await useBackend('webgpu');
    const run = async (webgpuRunner: string) => {
      const model = createModel({ seed: 12 });
      const runner = await backend.runner({ model, recipe, settings: { webgpuRunner } });
      await runner.step(split, inOrder(0, 4), 0.1);
      const numbers = await runner.numbers();
      const evaluated = await runner.evaluate(split, 3);
      await runner.sync();
      const weights = await Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
      await runner.dispose();
      model.dispose();
      return { numbers, evaluated, weights };
    };
    const [a, b, ops] = [await run('compiled'), await run('compiled'), await run('ops')];
    assert.deepEqual(b, a, 'the same inputs, the same outputs, bit for bit');
    assert.ok(Math.abs(a.evaluated.loss - ops.evaluated.loss) <= 1e-5, `loss ${a.evaluated.loss} vs ${ops.evaluated.loss}`);
    assert.ok(Math.abs(a.evaluated.acc - ops.evaluated.acc) <= 1e-6);
    assert.deepEqual([...a.evaluated.predictions], [...ops.evaluated.predictions]);
    assert.deepEqual([...a.evaluated.ranks], [...ops.evaluated.ranks], 'the compiled kernel\'s ranks are labelRank\'s');
    assert.ok(relErr(a.evaluated.logits, ops.evaluated.logits) <= 1e-5, `the compiled evaluation's logits: ${relErr(a.evaluated.logits, ops.evaluated.logits)}`);
  });

  test('a model with a layer the compiler does not know runs op by op, and says why', async () => {
    const backend = await useBackend('webgpu');
    const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [32, 32, 3] }), tfl.layers.dropout({ rate: 0.5 }), tfl.layers.dense({ units: 10 })] });
    assert.deepEqual(compilePlan(model), { reason: 'layer dropout_Dropout1 is a Dropout (the compiler knows Conv2D, MaxPooling2D, Flatten and Dense)' });
    const runner = await backend.runner({ model, recipe, settings: {} });
    assert.equal(runner.label, 'ops');
    assert.match(runner.note!, /^webgpu: op by op, not compiled: layer \w+ is a Dropout/);
    await runner.dispose();
    model.dispose();
  });
});

describe('alexnet train --backend webgpu', { skip }, () => {
  const EPOCH_LINE = /^Epoch (\d+)\. Train Loss: (\d+\.\d{6}), Train Acc: (\d\.\d{6}), Valid Loss: (\d+\.\d{6}), Valid Acc: (\d\.\d{6}), Time \d\d:\d\d:\d\d$/;
  let served: Awaited<ReturnType<typeof serveArchive>>;
  before(async () => {
    served = await serveArchive(gzipTar(cifarEntries({ trainPerBatch: 8, test: 24, seed: 4 })));
  });
  after(() => served.close());
  const data = () => served.flags;

  test('trains 2 epochs with the exact log lines, exits 0 promptly; the checkpoint evaluates the same on wasm', async () => {
    const out = tmpDir();
    const save = path.join(out, 'run');
    const t0 = performance.now();
    const r = await runCli(['train', '--backend', 'webgpu', '--epochs', '2', '--batch-size', '8', '--eval-batch-size', '8', '--limit-train', '24', '--limit-test', '16', '--seed', '3', '--save', save, ...data()], { timeoutMs: 300_000 });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^backend: webgpu \(.+, (Vulkan|Metal|D3D12)[,;].*webgpu 0\.6\.2\)$/m);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2, r.stdout);
    lines.forEach((l, i) => assert.equal(EPOCH_LINE.exec(l)?.[1], String(i), `not the reference format: ${l}`));
    // Prompt: the epochs' own time plus start-up, not a hang on a device that is never released.
    const epochTime = lines.reduce((s, l) => s + Number(/Time (\d\d):(\d\d):(\d\d)/.exec(l)!.slice(1).reduce((a, b) => a * 60 + Number(b), 0)), 0);
    assert.ok(seconds < epochTime + 60, `the process took ${seconds.toFixed(1)} s for ${epochTime} s of epochs`);

    const last = JSON.parse(fs.readFileSync(path.join(save, 'state.json'), 'utf8')).history[1];
    const e = await runCli(['eval', '--model', save, '--backend', 'wasm', '--threads', '1', '--batch-size', '8', '--limit-test', '16', '--json', ...data()]);
    assert.equal(e.code, 0, e.stderr);
    const report = JSON.parse(e.stdout) as { loss: number; accuracy: number };
    assert.ok(Math.abs(report.loss - last.validLoss) <= 1e-4, `eval on wasm ${report.loss} vs the webgpu run's ${last.validLoss}`);
    assert.ok(Math.abs(report.accuracy - last.validAcc) <= 1e-6);
  });

  test('a wasm checkpoint resumes on webgpu', async () => {
    const save = path.join(tmpDir(), 'run');
    const common = ['--batch-size', '8', '--eval-batch-size', '8', '--limit-train', '16', '--limit-test', '8', '--seed', '5', ...data()];
    const a = await runCli(['train', '--backend', 'wasm', '--threads', '1', '--epochs', '1', '--save', save, ...common]);
    assert.equal(a.code, 0, a.stderr);
    const b = await runCli(['train', '--backend', 'webgpu', '--resume', save, '--epochs', '2', ...data()], { timeoutMs: 300_000 });
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /^Epoch 1\. /m);
    assert.match(b.stderr, /^resuming from .* at epoch 1$/m);
  });
});
