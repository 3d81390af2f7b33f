// Transpose for the wasm backend: float32 tensors of rank 2 to 4 whose last axis moves go to our SIMD kernel
// (../simd.ts, 4x4 tiles transposed with shuffles), the rest to the stock kernel. conv2's filter gradient
// transposes its [64, 13, 13, 64] input every step: `node dist/scripts/micro.js` times that transpose, its
// values read back, at 4.8-5.0 ms with the stock kernel and 2.8-3.1 with ours (three interleaved runs, Intel
// Xeon, 2026-12-07); our kernel alone, on a memory of its own, takes 0.47. A transpose copies values, so the
// results are the stock kernel's to the bit.

import { Simd } from '../simd.js';
import { heapOffset, simdOn, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeTranspose(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { x } = args.inputs as { x: TensorInfo };
    const perm = attrs.perm as number[];
    const rank = x.shape.length;
    if (x.dtype !== 'float32' || rank < 2 || rank > 4) return stock(args);
    // As rank 4: leading axes of 1 that stay in place.
    const lead = 4 - rank;
    const shape = [...new Array<number>(lead).fill(1), ...x.shape];
    const perm4 = [...Array.from({ length: lead }, (_, i) => i), ...perm.map((p) => p + lead)];
    if (!Simd.transposeFits(shape, perm4)) return stock(args);
    const out = backend.makeOutput(perm.map((p) => x.shape[p]!), 'float32');
    simdOn(backend).transpose(heapOffset(backend, x), shape, perm4, heapOffset(backend, out));
    return out;
  };
}

export const transposeConfig: KernelReplacement = { kernelName: 'Transpose', make: (stock) => makeTranspose(stock!) };
