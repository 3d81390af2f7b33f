// BatchMatMul with a transposed operand leaves XNNPACK for a scalar loop: 96 ms for fc1's weight gradient
//    ([64,1024]^T x [64,384]) against a few ms for an explicit transpose then the XNNPACK path.

import { kernel, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeBatchMatMul(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (!attrs.transposeA && !attrs.transposeB) return stock(args);
    const flip = (t: TensorInfo) => {
      const r = t.shape.length;
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      return kernel('Transpose')({ inputs: { x: t }, backend, attrs: { perm } });
    };
    const a2 = attrs.transposeA ? flip(a) : a;
    const b2 = attrs.transposeB ? flip(b) : b;
    const out = stock({ inputs: { a: a2, b: b2 }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    if (a2 !== a) backend.disposeData(a2.dataId);
    if (b2 !== b) backend.disposeData(b2.dataId);
    return out;
  };
}


export const batchMatMulConfig: KernelReplacement = { kernelName: 'BatchMatMul', make: (stock) => makeBatchMatMul(stock!) };
