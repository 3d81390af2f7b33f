// Our kernels for the wasm backend, registered over (or, for Conv2DBackpropFilter, beside the missing) stock ones,
// as tfjs-backend-wasm's register_all_kernels.ts lists its own. Why each exists is in its file.

import tf from '../../../tf.cjs';
import { batchMatMulConfig } from './BatchMatMul.js';
import { castConfig } from './Cast.js';
import { conv2DConfig, fusedConv2DConfig } from './Conv2D.js';
import { conv2DBackpropFilterConfig } from './Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig } from './Conv2DBackpropInput.js';
import { identityConfig } from './Identity.js';
import { maxPoolGradConfig } from './MaxPoolGrad.js';
import { sumConfig } from './Sum.js';
import { transposeConfig } from './Transpose.js';
import type { KernelFn, KernelReplacement } from './util.js';

const KERNELS: KernelReplacement[] = [conv2DConfig, fusedConv2DConfig, maxPoolGradConfig, sumConfig, batchMatMulConfig, conv2DBackpropInputConfig, conv2DBackpropFilterConfig, identityConfig, castConfig, transposeConfig];

let registered = false;

/** Registers our kernels for 'wasm' (once per process). Call after the wasm backend is imported. */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  for (const { kernelName, make } of KERNELS) {
    const stock = tf.getKernel(kernelName, 'wasm');
    if (stock) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      // The stock kernel's setup binds its wasm function; ours may call it, so keep it.
      setupFunc: stock?.setupFunc,
      kernelFunc: make(stock?.kernelFunc as unknown as KernelFn | undefined) as unknown as tf.KernelFunc,
    });
  }
}
