// Cast to the dtype a tensor already has copies it on wasm: the ReLU gradient (tfjs's `dy * cast(step(x),
//    'float32')`) spent 1.8 ms a step copying conv1's [64,28,28,64] (tf.profile, Intel Xeon, 2026-12-06). Shared,
//    as Identity is.

import { type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeCast(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string' || args.attrs.dtype !== x.dtype) return stock(args);
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

export const castConfig: KernelReplacement = { kernelName: 'Cast', make: (stock) => makeCast(stock!) };
