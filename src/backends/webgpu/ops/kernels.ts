// Our WebGPU kernels, registered over tfjs-backend-webgpu's stock ones (issue #12). The stock kernel stays the
// fallback for layouts ours does not handle (NCHW).

import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import tf from '../../../tf.cjs';
import { planSplitK } from '../wgsl/splitk.js';
import { Conv2DDerFilterSplitKProgram, SumSlicesProgram } from './conv_backprop_filter_splitk_webgpu.js';

type TensorInfo = tf.TensorInfo;
interface Args {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: WebGPUBackend;
  attrs: { strides: number | [number, number]; pad: 'valid' | 'same' | number; dataFormat?: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
}
type KernelFn = (args: Args) => TensorInfo;

/** Conv2DBackpropFilter as a split-K matrix product (./conv_backprop_filter_splitk_webgpu.ts). */
export function conv2DBackpropFilterSplitK(args: Args): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const [kh, kw, ci, co] = attrs.filterShape;
  const m = info.batchSize * info.outHeight * info.outWidth;
  const k = kh * kw * ci;
  const plan = planSplitK(m, k, co);
  const partial = backend.runWebGPUProgram(new Conv2DDerFilterSplitKProgram(k, co, plan), [x, dy], 'float32', [
    { type: 'int32', data: [kw] },
    { type: 'int32', data: [info.strideHeight, info.strideWidth] },
    { type: 'int32', data: [info.padInfo.top, info.padInfo.left] },
    { type: 'int32', data: [plan.chunk] },
    { type: 'int32', data: [plan.chunk / 16] },
  ]);
  const dw = backend.runWebGPUProgram(new SumSlicesProgram(attrs.filterShape), [partial], 'float32', [{ type: 'int32', data: [plan.slices] }]);
  backend.disposeData(partial.dataId);
  return dw;
}

let registered = false;

/** Registers our kernels for 'webgpu' (once per process); call after tfjs-backend-webgpu is imported. */
export function registerWebGpuKernels(): void {
  if (registered) return;
  registered = true;
  const stock = tf.getKernel('Conv2DBackpropFilter', 'webgpu');
  // registerKernel alone only warns that the name is taken (issue #12): unregister the stock kernel first.
  if (stock) tf.unregisterKernel('Conv2DBackpropFilter', 'webgpu');
  const fallback = stock?.kernelFunc as unknown as KernelFn | undefined;
  const kernelFunc: KernelFn = (args) => (args.attrs.dataFormat === 'NCHW' && fallback ? fallback(args) : conv2DBackpropFilterSplitK(args));
  tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}
