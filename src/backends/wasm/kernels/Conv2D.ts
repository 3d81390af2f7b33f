// Conv2D for the wasm backend as our product (../gemm.ts) reading the patches where they lie in the image
// (implicit im2col): each output position is a row of A whose values are the window's kh rows, each kw x ci
// contiguous values in NHWC. The stock kernel is XNNPACK's convolution, without a fused multiply-add.
// Configurations other than stride 1, dilation 1, NHWC, 'valid' and a multiple of 8 output channels go to it.

import { Gemm, rowMajorOut, type Layout, type Placement } from '../gemm.js';
import { gemmOn, heapOffset, kernel, unsupportedConv, type Args, type KernelFn, type KernelReplacement, type TensorInfo } from './util.js';

/** Where each patch of a valid, stride-1 convolution lies in an NHWC image batch `x`, as the product's Layout. */
export function patches(x: readonly number[], kh: number, kw: number): Layout {
  const [n, h, w, ci] = x as [number, number, number, number];
  const oh = h - kh + 1;
  const ow = w - kw + 1;
  const rows = new Int32Array(n * oh * ow);
  let i = 0;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let z = 0; z < ow; z++) rows[i++] = 4 * ((b * h + y) * w + z) * ci;
    }
  }
  return { rows, runs: Int32Array.from({ length: kh }, (_, r) => 4 * r * w * ci), runLength: kw * ci };
}

/** Where each patch's values go in an NHWC batch shaped `x`, as a Placement of its [n*oh*ow, kh*kw*ci] matrix
 *  (kw*ci a multiple of 8): the input gradient adds its rows there. */
export function patchesOut(x: readonly number[], kh: number, kw: number): Placement {
  const { rows } = patches(x, kh, kw);
  const [, , w, ci] = x as [number, number, number, number];
  const run = kw * ci;
  const blocks = Int32Array.from({ length: (kh * run) / 8 }, (_, j) => 4 * (Math.floor((8 * j) / run) * w * ci + ((8 * j) % run)));
  return { rows, blocks };
}

/** Whether our product runs this convolution: stride 1, dilation 1, NHWC, 'valid', a multiple of 8 outputs. */
function covered(x: TensorInfo, filter: TensorInfo, attrs: Args['attrs']): boolean {
  const [n, h, w] = x.shape as [number, number, number, number];
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  return unsupportedConv(attrs) === null && h >= kh && w >= kw && Gemm.fits(n * (h - kh + 1) * (w - kw + 1), kh * kw * ci, co);
}

/** The convolution on our product, for a configuration `covered` says it runs. */
function conv(backend: Args['backend'], x: TensorInfo, filter: TensorInfo): TensorInfo {
  const [n, h, w] = x.shape as [number, number, number, number];
  const [kh, kw, , co] = filter.shape as [number, number, number, number];
  const [oh, ow] = [h - kh + 1, w - kw + 1];
  const out = backend.makeOutput([n, oh, ow, co], 'float32');
  gemmOn(backend).product(heapOffset(backend, x), patches(x.shape, kh, kw), heapOffset(backend, filter), co, heapOffset(backend, out), rowMajorOut(n * oh * ow, co));
  return out;
}

function makeConv2D(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    return covered(x, filter, args.attrs) ? conv(args.backend, x, filter) : stock(args);
  };
}

export const conv2DConfig: KernelReplacement = { kernelName: 'Conv2D', make: (stock) => makeConv2D(stock!) };

/**
 * FusedConv2D (evaluation and prediction: tfjs fuses the bias and activation only where no gradient is taken) as
 * what training's forward pass runs: our Conv2D, then the stock Add of the bias and Relu. So evaluation computes
 * the very values a training step does, and on our product: XNNPACK's fused kernel took 73 and 99 ms for conv1 and
 * conv2 at batch 128, these three 63 and 66 (median of 10, interleaved, Intel Xeon, 2026-12-07). Other
 * activations, and configurations our Conv2D leaves to XNNPACK, go to the stock kernel.
 */
function makeFusedConv2D(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { x, filter, bias, preluActivationWeights } = args.inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const activation = (attrs.activation as string | undefined) ?? 'linear';
    if (!covered(x, filter, attrs) || preluActivationWeights || (bias && bias.shape.length !== 1) || (activation !== 'linear' && activation !== 'relu')) return stock(args);
    let out = conv(backend, x, filter);
    const then = (name: string, inputs: Record<string, TensorInfo>) => {
      const next = kernel(name)({ inputs, backend, attrs: {} });
      backend.disposeData(out.dataId);
      out = next;
    };
    if (bias) then('Add', { a: out, b: bias });
    if (activation === 'relu') then('Relu', { x: out });
    return out;
  };
}

export const fusedConv2DConfig: KernelReplacement = { kernelName: 'FusedConv2D', make: (stock) => makeFusedConv2D(stock!) };
