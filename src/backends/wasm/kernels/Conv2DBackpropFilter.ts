// Conv2DBackpropFilter for the wasm backend, which 4.22.0 lacks (tensorflow/tfjs#8474), so a conv net cannot
// train there as shipped. Written as work XNNPACK runs well, for stride 1, dilation 1, NHWC (what the network
// needs; other configurations get a clear error):
//   dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n,oh+kh,ow+kw,ci] * dy[n,oh,ow,co]
//     = conv2d(x^T [ci,H,W,n], dy^T [OH,OW,n,co] as the filter)  -> [ci,KH,KW,co] -> transpose to [KH,KW,ci,co]
//     or, for filters of few rows (conv1), im2col(x)^T . dy with the patches read in place (see filterGradIm2col)
// Profile of a batch-64 step before our kernels (tf.profile, this 2-core machine): 804 ms in kernels, 252 of
// them in our first version of this one.

import { Gemm, KC, rowMajorOut } from '../gemm.js';
import { gemmOn, heap, heapOffset, kernel, unsupportedConv, type Args, type KernelReplacement, type TensorInfo } from './util.js';

function conv2DBackpropFilter(args: Args): TensorInfo {
  const { backend, attrs } = args;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const why = unsupportedConv(attrs);
  if (why !== null) {
    throw new Error(`Conv2DBackpropFilter on wasm (alexnet's kernel) does not support ${why}; use --backend cpu or tensorflow for such a network`);
  }
  const [kh, kw, ci] = attrs.filterShape as [number, number, number, number];
  if (kh * kw * ci <= IM2COL_MAX_ROWS) return filterGradIm2col(x, dy, kh, kw, backend);
  const transpose = kernel('Transpose');
  const conv2d = kernel('Conv2D');
  const xT = transpose({ inputs: { x }, backend, attrs: { perm: [3, 1, 2, 0] } }); // [ci, H, W, n]
  const dyT = transpose({ inputs: { x: dy }, backend, attrs: { perm: [1, 2, 0, 3] } }); // [OH, OW, n, co]
  const g = conv2d({
    inputs: { x: xT, filter: dyT },
    backend,
    attrs: { strides: 1, pad: 'valid', dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined },
  }); // [ci, KH, KW, co]
  backend.disposeData(xT.dataId);
  backend.disposeData(dyT.dataId);
  const dw = transpose({ inputs: { x: g }, backend, attrs: { perm: [1, 2, 0, 3] } }); // [KH, KW, ci, co]
  backend.disposeData(g.dataId);
  return dw;
}

// conv1 (3 input channels) has few filter rows (75) and a huge dy (64x28x28x64): as a convolution, XNNPACK
// packs that dy as a 28x28 filter on every call. Instead, patches^T [KH*KW*ci, n*OH*OW] . dy [n*OH*OW, co].
// conv2 (1,600 rows) stays a convolution, which measured faster for it.
const IM2COL_MAX_ROWS = 256;

function filterGradIm2col(x: TensorInfo, dy: TensorInfo, kh: number, kw: number, backend: Args['backend']): TensorInfo {
  const [n, h, w, ci] = x.shape as [number, number, number, number];
  const [, oh, ow, co] = dy.shape as [number, number, number, number];
  const rows = kh * kw * ci;
  const cols = n * oh * ow;
  if (Gemm.fits(rows, cols, co)) {
    // Our product (../gemm.ts) reads the patches where they lie, in x transposed to [ci, n, H, W] (196,608 values
    // at batch 64): patch row (kh, kw, ci) is, for each image and output row, OW values in a row of that, in dy's
    // order of positions. The 3.8M-value matrix of patches that a JS loop wrote is never made, and the sums are
    // those of its product, in the same order (in blocks of KC; test/model.test.ts holds them equal to the bit).
    // This kernel alone at batch 64: 25.8-37.8 -> 16.8-23.9 ms (median of 20, four interleaved runs, Intel
    // Xeon, 2026-12-07).
    const xT = kernel('Transpose')({ inputs: { x }, backend, attrs: { perm: [3, 0, 1, 2] } });
    const patchRows = new Int32Array(rows);
    for (let r = 0, i = 0; r < kh; r++) for (let s = 0; s < kw; s++) for (let c = 0; c < ci; c++) patchRows[i++] = 4 * ((c * n * h + r) * w + s);
    const runs = new Int32Array(n * oh);
    for (let b = 0, i = 0; b < n; b++) for (let y = 0; y < oh; y++) runs[i++] = 4 * (b * h + y) * w;
    const g = backend.makeOutput([kh, kw, ci, co], 'float32');
    gemmOn(backend).product(heapOffset(backend, xT), { rows: patchRows, runs, runLength: ow }, heapOffset(backend, dy), co, heapOffset(backend, g), rowMajorOut(rows, co), false, KC);
    backend.disposeData(xT.dataId);
    return g;
  }
  const patches = backend.makeOutput([rows, cols], 'float32');
  const src = heap(backend, x);
  const p = heap(backend, patches);
  for (let r = 0; r < kh; r++) {
    for (let s = 0; s < kw; s++) {
      for (let c = 0; c < ci; c++) {
        let o = ((r * kw + s) * ci + c) * cols;
        for (let b = 0; b < n; b++) {
          for (let i = 0; i < oh; i++) {
            let at = ((b * h + i + r) * w + s) * ci + c;
            for (let j = 0; j < ow; j++, at += ci) p[o++] = src[at]!;
          }
        }
      }
    }
  }
  const g = kernel('BatchMatMul')({
    inputs: { a: patches, b: { dataId: dy.dataId, shape: [cols, co], dtype: 'float32' } },
    backend,
    attrs: { transposeA: false, transposeB: false },
  }); // [KH*KW*ci, co], which is [KH, KW, ci, co] in memory
  backend.disposeData(patches.dataId);
  g.shape = [kh, kw, ci, co];
  return g;
}


export const conv2DBackpropFilterConfig: KernelReplacement = { kernelName: 'Conv2DBackpropFilter', make: () => conv2DBackpropFilter };
