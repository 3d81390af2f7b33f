// Conv2DBackpropInput for the wasm backend: the stock kernel is a scalar loop, 698 ms for this network's conv2 at
// batch 64 against 63 ms for the forward conv of the same size (this 2-core machine, tf.conv2dTranspose vs
// tf.conv2d on wasm). Here: dx = col2im(dy . W^T), a matrix product XNNPACK runs, then a scatter-add in JS.
// Configurations other than stride 1, dilation 1, NHWC, 'valid' go to the stock kernel.

import { Gemm, rowMajor } from '../gemm.js';
import { patchesOut } from './Conv2D.js';
import { gemmOn, heap, heapOffset, kernel, unsupportedConv, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeConv2DBackpropInput(stock: KernelFn | undefined): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    if (unsupportedConv(attrs) !== null) {
      if (stock) return stock(args);
      throw new Error(`Conv2DBackpropInput on wasm does not support ${unsupportedConv(attrs)}`);
    }
    // cols[n,oh,ow; kh,kw,ci] = dy[n,oh,ow; co] . W[kh,kw,ci; co]^T on XNNPACK, then col2im adds each row into
    // its KHxKW window of dx. The "full" convolution formulation did 2.1x the multiply-adds (most on zero
    // padding): 121 ms against ~65 ms this way for conv2 at batch 64 (tf.profile, this machine).
    const [n, oh, ow, co] = dy.shape as [number, number, number, number];
    const [kh, kw, ci] = filter.shape as [number, number, number, number];
    const [, h, w] = attrs.inputShape as [number, number, number, number];
    const rows = n * oh * ow;
    const width = kh * kw * ci;
    const out = backend.makeOutput([n, h, w, ci], 'float32');
    heap(backend, out).fill(0);
    if (Gemm.fits(rows, co, width) && (kw * ci) % 8 === 0) {
      // Our product (../gemm.ts) adds each patch's row of dy . W^T straight into its window of dx: col2im fused
      // in, so the [rows, width] matrix (33 MB for conv2 at batch 64) is never written. W^T is made explicit
      // (102,400 values for conv2).
      const wT = kernel('Transpose')({ inputs: { x: { dataId: filter.dataId, shape: [width, co], dtype: 'float32' } }, backend, attrs: { perm: [1, 0] } });
      gemmOn(backend).product(heapOffset(backend, dy), rowMajor(rows, co), heapOffset(backend, wT), width, heapOffset(backend, out), patchesOut([n, h, w, ci], kh, kw), true);
      backend.disposeData(wT.dataId);
      return out;
    }
    const cols = kernel('BatchMatMul')({
      inputs: {
        a: { dataId: dy.dataId, shape: [rows, co], dtype: 'float32' },
        b: { dataId: filter.dataId, shape: [width, co], dtype: 'float32' },
      },
      backend,
      attrs: { transposeA: false, transposeB: true },
    });
    const c = heap(backend, cols);
    const rowLen = kw * ci; // one kernel row of a window is contiguous in both cols and dx (NHWC)
    col2im(c, heap(backend, out), n, oh, ow, kh, h, w, ci, rowLen);
    backend.disposeData(cols.dataId);
    return out;
  };
}

/** Adds each row of `c` ([n*oh*ow, kh*rowLen]) into its window of `dx` (NHWC). Unrolled by 4 when rowLen allows:
 *  28 -> 12 ms for conv2 at batch 64 (8.3M adds) on this machine. */
function col2im(c: Float32Array, dx: Float32Array, n: number, oh: number, ow: number, kh: number, h: number, w: number, ci: number, rowLen: number): void {
  const quads = rowLen % 4 === 0;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let r = 0; r < kh; r++) {
          let d = ((b * h + i + r) * w + j) * ci;
          const end = d + rowLen;
          if (quads) {
            for (; d < end; d += 4, o += 4) {
              dx[d] += c[o]!;
              dx[d + 1] += c[o + 1]!;
              dx[d + 2] += c[o + 2]!;
              dx[d + 3] += c[o + 3]!;
            }
          } else {
            for (; d < end; d++) dx[d] += c[o++]!;
          }
        }
      }
    }
  }
}


export const conv2DBackpropInputConfig: KernelReplacement = { kernelName: 'Conv2DBackpropInput', make: makeConv2DBackpropInput };
