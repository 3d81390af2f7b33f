// The optimiser and the schedules against PyTorch (issue #21): step by step, on a small net, to 1e-6 relative. The
// reference is test/data/sgd_reference.json, which scripts/torch_reference.py made with PyTorch 1.13.1 (its header
// says how), so these tests need no PyTorch: each step replays PyTorch's gradients through src/step.ts's Sgd at
// src/schedule.ts's learning rate, and the weights after it must be PyTorch's.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { presetRecipe, type Recipe } from '../src/recipe.js';
import { lrAt } from '../src/schedule.js';
import { Sgd } from '../src/step.js';
import tf from '../src/tf.cjs';
import tfl from '../src/tfl.cjs';
import { ROOT, relErr, useBackend } from './helpers.js';

interface Reference {
  torch: string;
  epochs: number;
  batches: number;
  lr: number;
  shapes: number[][];
  recipes: (Pick<Recipe, 'momentum' | 'nesterov' | 'weightDecay' | 'schedule' | 'warmupEpochs'> & {
    name: string;
    initial: number[];
    steps: { lr: number; grads: number[]; params: number[] }[];
  })[];
}

const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'data', 'sgd_reference.json'), 'utf8')) as Reference;

before(() => useBackend('cpu'));

test('each schedule gives PyTorch\'s learning rate at every step, warm-up or not', () => {
  assert.equal(ref.recipes.length, 12);
  for (const r of ref.recipes) {
    const recipe = { lr: ref.lr, epochs: ref.epochs, schedule: r.schedule, warmupEpochs: r.warmupEpochs };
    r.steps.forEach((s, i) => {
      const ours = lrAt(recipe, ref.batches, i);
      assert.ok(Math.abs(ours - s.lr) <= 1e-6 * Math.abs(s.lr) + 1e-15, `${r.name}, step ${i}: ${ours} against PyTorch's ${s.lr}`);
    });
  }
});

/**
 * PyTorch's flat parameters (Linear weights [out, in]) as the tfjs model's weights (Dense kernels [in, out]), and
 * back: the optimiser is elementwise, so only where each value goes matters.
 */
function layout(flat: number[] | Float32Array): Float32Array[] {
  const out: Float32Array[] = [];
  let off = 0;
  for (const shape of ref.shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    const part = Float32Array.from(flat.slice(off, off + size));
    off += size;
    if (shape.length === 2) {
      const [rows, cols] = shape as [number, number];
      const t = new Float32Array(size);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = part[i * cols + j]!;
      out.push(t);
    } else out.push(part);
  }
  return out;
}

test('momentum, Nesterov and weight decay take PyTorch\'s SGD steps on a small net, to 1e-6 relative', () => {
  for (const r of ref.recipes) {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 5, activation: 'relu', inputShape: [6] }), tfl.layers.dense({ units: 3 })] });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    layout(r.initial).forEach((v, i) => vars[i]!.assign(tf.tensor(v, vars[i]!.shape)));
    const recipe: Recipe = { ...presetRecipe('seed', 0), ...r, lr: ref.lr, epochs: ref.epochs };
    const sgd = new Sgd(model, recipe);
    try {
      r.steps.forEach((s, i) => {
        const grads: tf.NamedTensorMap = {};
        layout(s.grads).forEach((g, j) => (grads[vars[j]!.name] = tf.tensor(g, vars[j]!.shape)));
        sgd.apply(grads, lrAt(recipe, ref.batches, i));
        tf.dispose(Object.values(grads));
        const want = layout(s.params);
        vars.forEach((v, j) => {
          const e = relErr(v.dataSync(), want[j]!);
          assert.ok(e <= 1e-6, `${r.name}, step ${i}, ${v.name}: ${e}`);
        });
      });
    } finally {
      sgd.dispose();
      model.dispose();
    }
  }
});

test('the optimiser state round-trips: buffers saved after a step continue as if never saved', async () => {
  const r = ref.recipes.find((x) => x.name === 'Nesterov')!;
  const recipe: Recipe = { ...presetRecipe('seed', 0), ...r };
  const make = () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 5, activation: 'relu', inputShape: [6] }), tfl.layers.dense({ units: 3 })] });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    layout(r.initial).forEach((v, i) => vars[i]!.assign(tf.tensor(v, vars[i]!.shape)));
    return { model, vars };
  };
  const step = (sgd: Sgd, vars: tf.Variable[], i: number) => {
    const grads: tf.NamedTensorMap = {};
    layout(r.steps[i]!.grads).forEach((g, j) => (grads[vars[j]!.name] = tf.tensor(g, vars[j]!.shape)));
    sgd.apply(grads, 0.1);
    tf.dispose(Object.values(grads));
  };
  const a = make();
  const whole = new Sgd(a.model, recipe);
  for (let i = 0; i < 4; i++) step(whole, a.vars, i);
  const b = make();
  const first = new Sgd(b.model, recipe);
  for (let i = 0; i < 2; i++) step(first, b.vars, i);
  const saved = await first.state();
  assert.ok(saved && saved.length === 53);
  const second = new Sgd(b.model, recipe, saved);
  for (let i = 2; i < 4; i++) step(second, b.vars, i);
  a.vars.forEach((v, j) => assert.deepEqual(b.vars[j]!.dataSync(), v.dataSync()));
  [whole, first, second].forEach((s) => s.dispose());
  a.model.dispose();
  b.model.dispose();
});
