// Identity copies its input on wasm (4.6 ms per step for the [64,28,28,64] gradient that Add passes on);
//    tensors are immutable, so sharing the data with a reference count is what the cpu backend does.

import { type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

function makeIdentity(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return stock(args);
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}


export const identityConfig: KernelReplacement = { kernelName: 'Identity', make: (stock) => makeIdentity(stock!) };
