// MaxPoolGrad: the stock kernel takes 155 ms for max_pool1's gradient. A JS loop over the wasm heap that
//    looks for each window's maximum (the forward output, an input of this kernel) stops at the first match:
//    ~25 ms, against ~50 ms for our first loop, which recomputed every window's maximum for all channels at
//    once. Ties go to the first maximum in the window (row-major), as the cpu backend does. For channels a
//    multiple of 4, our WebAssembly (../simd.ts) does the same four channels at a time.

import { Simd } from '../simd.js';
import { heap, heapOffset, simdOn, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeMaxPoolGrad(stock: KernelFn | undefined): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const [fh, fw] = typeof attrs.filterSize === 'number' ? [attrs.filterSize, attrs.filterSize] : (attrs.filterSize as [number, number]);
    const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : (attrs.strides as [number, number]);
    if (attrs.pad !== 'valid' || input.dtype !== 'float32') {
      if (stock) return stock(args);
      throw new Error('MaxPoolGrad on wasm: only valid padding is supported');
    }
    const [n, h, w, c] = input.shape as [number, number, number, number];
    const [, oh, ow] = dy.shape as [number, number, number, number];
    const out = backend.makeOutput(input.shape, 'float32');
    if (Simd.poolFits(c)) {
      // Four channels a pass in our WebAssembly (../simd.ts), the same sums: max_pool1's gradient took 14.8-16.3 ms
      // of a one-thread step at batch 64 in the loop below, 4.1-4.9 here (`node dist/scripts/micro.js`, three
      // runs interleaved with the loop's build, Intel Xeon, 2026-12-06). The loop stays for other channel counts.
      heap(backend, out).fill(0);
      const at = (t: TensorInfo) => heapOffset(backend, t);
      simdOn(backend).maxPoolGrad({ x: at(input), y: at(args.inputs.output!), dy: at(dy), dx: at(out) }, { n, h, w, c, oh, ow, fh, fw, sh, sw });
      return out;
    }
    const x = heap(backend, input);
    const y = heap(backend, args.inputs.output!); // the forward result: each window's maximum
    const g = heap(backend, dy);
    const dx = heap(backend, out);
    dx.fill(0);
    const rowStep = w * c;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const o = ((b * oh + i) * ow + j) * c;
          const corner = ((b * h + i * sh) * w + j * sw) * c;
          for (let ch = 0; ch < c; ch++) {
            // The first position (row-major) holding the maximum takes the gradient, as in the cpu backend;
            // a NaN maximum matches nothing, so its gradient goes nowhere (the cpu backend's -1 position).
            const m = y[o + ch]!;
            let row = corner + ch;
            search: for (let ki = 0; ki < fh; ki++, row += rowStep) {
              for (let kj = 0, q = row; kj < fw; kj++, q += c) {
                if (x[q] === m) {
                  dx[q] += g[o + ch]!;
                  break search;
                }
              }
            }
          }
        }
      }
    }
    return out;
  };
}


export const maxPoolGradConfig: KernelReplacement = { kernelName: 'MaxPoolGrad', make: makeMaxPoolGrad };
