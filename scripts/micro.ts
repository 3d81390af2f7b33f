// Micro-benchmarks of the wasm step's parts (docs/performance.md, issue #28): one kernel at the step's shapes,
// timed alone on the wasm backend. `node dist/scripts/micro.js` prints a median and a 10th percentile per case.
//
// - conv1's filter-gradient product, patches [75, K] . dy [K, 64] (K = 64 x 784), with the second operand fresh
//   each call (as in training: XNNPACK packs it) and with one reused tensor (packed once): the difference is
//   the packing.
// - max_pool1's gradient at batch 64 (our MaxPoolGrad).

import { backendEntry } from '../src/backends/table.js';
import * as tf from '../src/tf.js';

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
  // Fresh operands made ahead of time, a new one per call (a tensor XNNPACK has not packed yet).
  const fresh = Array.from({ length: SAMPLES + 4 }, (_, i) => tf.randomNormal([K, 64], 0, 1, 'float32', 10 + i));
  const relu = tf.relu(tf.randomNormal([64, 28, 28, 64], 0, 1, 'float32', 3)) as tf.Tensor4D;
  const poolGrad = tf.grad((x: tf.Tensor) => tf.sum(tf.maxPool(x as tf.Tensor4D, 3, 2, 'valid')));
  time({
    'conv1 filter product, fresh dy (packed each call)': (i) => tf.matMul(patches, fresh[i]!),
    'conv1 filter product, one dy (packed once)': () => tf.matMul(patches, reused),
    'max_pool1 gradient, batch 64 (with its sum)': () => poolGrad(relu),
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
