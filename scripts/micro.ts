// Micro-benchmarks of the wasm step's parts (docs/performance.md, issue #28): one kernel at the step's shapes,
// timed alone on the wasm backend. `node dist/scripts/micro.js` prints a median and a 10th percentile per case.
//
// - conv1's filter-gradient product, patches [75, K] . dy [K, 64] (K = 64 x 784), with the second operand fresh
//   each call (as in training) and with one reused tensor. On XNNPACK the difference was the packing of the
//   fresh operand; tf.matMul of these shapes now runs our product (src/backends/wasm/gemm.ts), which packs
//   nothing, so the two should match.
// - max_pool1's gradient at batch 64 (our MaxPoolGrad).
// - conv2's filter-gradient input transposed, [64, 13, 13, 64] by [3, 1, 2, 0] (our Transpose), read back.
// - the kernels of a one-thread training step at batch 64 (tf.profile over 8 steps, after 5): each kernel's
//   milliseconds a step, the largest first.

import { backendEntry } from '../src/backends/table.js';
import type { ActiveBackend } from '../src/backends/types.js';
import { inOrder } from '../src/batches.js';
import type { Split } from '../src/data/cifar.js';
import { createModel } from '../src/model.js';
import { lessonRecipe } from '../src/recipe.js';
import tf from '../src/tf.cjs';

const SAMPLES = 20;

function time(cases: Record<string, (i: number) => tf.Tensor>): void {
  const ts: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  // Interleaved, so that a neighbour's load on this shared machine falls on every case alike.
  for (let i = 0; i < SAMPLES + 4; i++) {
    for (const [name, f] of Object.entries(cases)) {
      const t0 = performance.now();
      const r = f(i);
      r.dataSync();
      const dt = performance.now() - t0;
      r.dispose();
      if (i >= 4) ts[name]!.push(dt);
    }
  }
  for (const [name, v] of Object.entries(ts)) {
    v.sort((a, b) => a - b);
    process.stdout.write(`${name.padEnd(48)} median ${v[v.length >> 1]!.toFixed(1).padStart(6)} ms   p10 ${v[Math.floor(v.length / 10)]!.toFixed(1).padStart(6)} ms\n`);
  }
}

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  const r = await (await backendEntry('wasm').load()).start({ gpuOnly: false, auto: false, why: 'micro-benchmarks' });
  if (!r.ok) throw new Error(r.reason);
  const K = 64 * 28 * 28;
  const patches = tf.randomNormal([75, K], 0, 1, 'float32', 1);
  const reused = tf.randomNormal([K, 64], 0, 1, 'float32', 2);
  // Fresh operands made ahead of time, a new one per call (a tensor no kernel has seen yet).
  const fresh = Array.from({ length: SAMPLES + 4 }, (_, i) => tf.randomNormal([K, 64], 0, 1, 'float32', 10 + i));
  const relu = tf.relu(tf.randomNormal([64, 28, 28, 64], 0, 1, 'float32', 3)) as tf.Tensor4D;
  const poolGrad = tf.grad((x: tf.Tensor) => tf.sum(tf.maxPool(x as tf.Tensor4D, 3, 2, 'valid')));
  const pooled = tf.randomNormal([64, 13, 13, 64], 0, 1, 'float32', 4);
  time({
    'conv1 filter product, a fresh dy each call': (i) => tf.matMul(patches, fresh[i]!),
    'conv1 filter product, one dy reused': () => tf.matMul(patches, reused),
    'max_pool1 gradient, batch 64 (with its sum)': () => poolGrad(relu),
    'conv2 filter-gradient input transposed': () => tf.transpose(pooled, [3, 1, 2, 0]),
  });
  tf.dispose([patches, reused, ...fresh, relu, pooled]);
  await stepKernels(r.backend);
}

/** Each kernel's share of a one-thread step at batch 64, by name and input shapes. */
async function stepKernels(backend: ActiveBackend): Promise<void> {
  const model = createModel({ seed: 1 });
  const runner = await backend.runner({ model, recipe: { ...lessonRecipe(1), batchSize: 64 }, settings: { threads: 1 } });
  const n = 640;
  const split: Split = { images: Uint8Array.from({ length: n * 3072 }, (_, i) => (i * 97) & 0xff), labels: Uint16Array.from({ length: n }, (_, i) => i % 10), count: n };
  const step = (i: number) => runner.step(split, inOrder((i % 10) * 64, 64), 0.1);
  for (let i = 0; i < 5; i++) await step(i);
  const steps = 8;
  const ms = new Map<string, number>();
  for (let i = 0; i < steps; i++) {
    const info = await tf.profile(async () => {
      await step(i);
      await runner.numbers();
    });
    for (const k of info.kernels) {
      const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
      ms.set(key, (ms.get(key) ?? 0) + (await k.kernelTimeMs as number));
    }
  }
  const rows = [...ms].sort((a, b) => b[1] - a[1]);
  process.stdout.write(`\nkernels of a one-thread step (batch 64, ms a step, mean of ${steps}): ${(rows.reduce((t, [, v]) => t + v, 0) / steps).toFixed(1)} in all\n`);
  for (const [key, v] of rows.slice(0, 14)) process.stdout.write(`${(v / steps).toFixed(1).padStart(7)}  ${key}\n`);
  await runner.dispose();
  model.dispose();
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
