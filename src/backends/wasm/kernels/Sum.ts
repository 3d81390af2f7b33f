// Sum over every axis but the last (the bias gradient of a conv layer): the stock kernel transposes the
//    3.2M-value conv1 gradient first (24 ms); a JS loop sums it in place.

import { Simd } from '../simd.js';
import { heap, heapOffset, simdOn, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeSum(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { x } = args.inputs as { x: TensorInfo };
    const rank = x.shape.length;
    const axes = (Array.isArray(attrs.axis) ? (attrs.axis as number[]) : [attrs.axis as number]).map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
    const allButLast = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!allButLast || x.dtype !== 'float32' || attrs.keepDims) return stock(args);
    const c = x.shape[rank - 1]!;
    const rows = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
    if (Simd.sumFits(rows, c)) {
      // Sixteen channels a pass in our WebAssembly (../simd.ts), the same float64 sums in the same order: conv1's
      // bias gradient at batch 64 took 8.6-12.5 ms of a one-thread step in the loop below (then unrolled four
      // channels a pass), 2.9-3.6 here (`node dist/scripts/micro.js`, two runs interleaved with the loop's build,
      // Intel Xeon, 2026-12-06).
      const out = backend.makeOutput([c], 'float32');
      simdOn(backend).channelSum(heapOffset(backend, x), rows, c, heapOffset(backend, out));
      return out;
    }
    const src = heap(backend, x);
    const acc = new Float64Array(c);
    for (let r = 0; r < rows; r++) {
      const base = r * c;
      for (let ch = 0; ch < c; ch++) acc[ch] += src[base + ch]!;
    }
    const out = backend.makeOutput([c], 'float32');
    heap(backend, out).set(acc);
    return out;
  };
}


export const sumConfig: KernelReplacement = { kernelName: 'Sum', make: (stock) => makeSum(stock!) };
