// Conv2DBackpropFilter for the cpu backend: the stock kernel's own loops, in its own order with the same float64
// accumulator, so its results are the stock kernel's bit for bit (test/model.test.ts holds it to them), but with
// each value read straight from the typed arrays instead of through TensorBuffer.get(...indices): 5.4 of the 5.9 s
// of a batch-2 SGD step of this network went to the stock kernel (tf.profile on this 2-core machine, 2026-11-29).
// The cpu backend is the reference the other backends' kernels are tested against, so this is what keeps those
// tests to seconds; `--backend cpu` users get the same speed-up. NCHW goes to the stock kernel.

import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import tf from '../../../tf.cjs';

interface Args {
  inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
  backend: MathBackendCPU;
  attrs: { strides: number | [number, number]; pad: 'valid' | 'same' | number; dataFormat?: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
}
type KernelFn = (args: Args) => tf.TensorInfo;

function makeConv2DBackpropFilter(stock: KernelFn): KernelFn {
  return (args) => {
    const { inputs: { x, dy }, backend, attrs } = args;
    if (attrs.dataFormat === 'NCHW') return stock(args);
    const c = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
    const xv = backend.data.get(x.dataId).values as Float32Array;
    const dyv = backend.data.get(dy.dataId).values as Float32Array;
    const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, inHeight: h, inWidth: w, inChannels: ci, outChannels: co, outHeight: oh, outWidth: ow } = c;
    const top = c.padInfo.top;
    const left = c.padInfo.left;
    const dw = new Float32Array(fh * fw * ci * co);
    for (let wR = 0; wR < fh; ++wR) {
      const yRMin = Math.max(0, Math.ceil((top - wR) / sh));
      const yRMax = Math.min(oh, (h + top - wR) / sh);
      for (let wC = 0; wC < fw; ++wC) {
        const yCMin = Math.max(0, Math.ceil((left - wC) / sw));
        const yCMax = Math.min(ow, (w + left - wC) / sw);
        for (let d1 = 0; d1 < ci; ++d1) {
          for (let d2 = 0; d2 < co; ++d2) {
            let dotProd = 0;
            for (let b = 0; b < c.batchSize; ++b) {
              for (let yR = yRMin; yR < yRMax; ++yR) {
                const xR = wR + yR * sh - top;
                let xi = ((b * h + xR) * w + wC + yCMin * sw - left) * ci + d1;
                let yi = ((b * oh + yR) * ow + yCMin) * co + d2;
                for (let yC = yCMin; yC < yCMax; ++yC, xi += sw * ci, yi += co) dotProd += xv[xi]! * dyv[yi]!;
              }
            }
            dw[((wR * fw + wC) * ci + d1) * co + d2] = dotProd;
          }
        }
      }
    }
    return backend.makeTensorInfo(attrs.filterShape, 'float32', dw);
  };
}

/** The stock kernel ours replaced (the tests hold ours to it), once registered. */
export let stockConv2DBackpropFilter: tf.KernelFunc | null = null;

/** Registers our kernel over the stock one for 'cpu' (once per process). */
export function registerCpuKernels(): void {
  if (stockConv2DBackpropFilter) return;
  const stock = tf.getKernel('Conv2DBackpropFilter', 'cpu')!;
  stockConv2DBackpropFilter = stock.kernelFunc;
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({ ...stock, kernelFunc: makeConv2DBackpropFilter(stock.kernelFunc as unknown as KernelFn) as unknown as tf.KernelFunc });
}
