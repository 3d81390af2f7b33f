// MaxPoolGrad: the stock kernel takes 155 ms for max_pool1's gradient. A JS loop over the wasm heap that
//    looks for each window's maximum (the forward output, an input of this kernel) stops at the first match:
//    ~25 ms, against ~50 ms for our first loop, which recomputed every window's maximum for all channels at
//    once. Ties go to the first maximum in the window (row-major), as the cpu backend does.

import { heap, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

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
