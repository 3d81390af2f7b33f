// BatchMatMul:
// - A transposed operand leaves XNNPACK for a scalar loop: 96 ms for fc1's weight gradient ([64,1024]^T x
//   [64,384]) against a few ms for an explicit transpose then the product.
// - One product (no batch) of float32 whose columns are a multiple of 8 goes to our product (../gemm.ts), which
//   reads both operands where they lie: XNNPACK packs its second operand on every call, and the dense layers'
//   weights and gradients are new tensors every step. fc1's three products took 14.2 ms of a one-thread step
//   at batch 64 on XNNPACK (tf.profile, Intel Xeon, 2026-12-06). The rest (fc3's 10 columns) stays on XNNPACK.

import { Gemm } from '../gemm.js';
import { gemmOn, heapOffset, kernel, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeBatchMatMul(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const flip = (t: TensorInfo) => {
      const r = t.shape.length;
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      return kernel('Transpose')({ inputs: { x: t }, backend, attrs: { perm } });
    };
    const a2 = attrs.transposeA ? flip(a) : a;
    const b2 = attrs.transposeB ? flip(b) : b;
    const [m, k] = a2.shape.slice(-2) as [number, number];
    const n = b2.shape.at(-1)!;
    const single = (t: TensorInfo) => t.shape.slice(0, -2).every((d) => d === 1) && t.dtype === 'float32';
    let out: TensorInfo;
    if (single(a2) && single(b2) && a2.shape.length === b2.shape.length && b2.shape.at(-2) === k && Gemm.fits(m, k, n)) {
      out = backend.makeOutput([...a2.shape.slice(0, -2), m, n], 'float32');
      gemmOn(backend).matmul(heapOffset(backend, a2), heapOffset(backend, b2), heapOffset(backend, out), m, k, n);
    } else if (a2 === a && b2 === b) {
      return stock(args);
    } else {
      out = stock({ inputs: { a: a2, b: b2 }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    }
    if (a2 !== a) backend.disposeData(a2.dataId);
    if (b2 !== b) backend.disposeData(b2.dataId);
    return out;
  };
}


export const batchMatMulConfig: KernelReplacement = { kernelName: 'BatchMatMul', make: (stock) => makeBatchMatMul(stock!) };
