// Kernels for the wasm backend that make training this network possible and fast.
//
// Profile of one SGD step at batch 64 before them (tf.profile on this 2-core machine, 804 ms in kernels):
// MaxPoolGrad 155 ms, Conv2DBackpropFilter (ours, first version) 252 ms, Conv2DBackpropInput 99 ms (698 stock),
// BatchMatMul with transposeA 96 ms (it leaves XNNPACK for a scalar loop), Sum for conv1's bias grad 24 ms.
//
// 1. Convolution gradients, written as work XNNPACK runs well (a convolution or a matrix product).
// - Conv2DBackpropFilter is missing from tfjs-backend-wasm 4.22.0 (tensorflow/tfjs#8474), so a conv net
//   cannot train there as shipped.
// - Its Conv2DBackpropInput exists but is a scalar loop: 698 ms for this network's conv2 at batch 64,
//   against 63 ms for the forward conv of the same size (measured on this 2-core machine with a scratch
//   script timing tf.conv2dTranspose vs tf.conv2d on wasm).
//
// Both are rewritten for stride 1, dilation 1, NHWC (what the network needs):
//   dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n,oh+kh,ow+kw,ci] * dy[n,oh,ow,co]
//     = conv2d(x^T [ci,H,W,n], dy^T [OH,OW,n,co] as the filter)  -> [ci,KH,KW,co] -> transpose to [KH,KW,ci,co]
//     or, for filters of few rows (conv1), im2col(x)^T . dy  (see filterGradIm2col)
//   dx = col2im(dy . W^T)  (a matrix product XNNPACK runs, then a scatter-add in JS)
// Other configurations get a clear error (filter) or the stock kernel (input).

import * as tf from '../../tf.js';

type TensorInfo = tf.TensorInfo;
interface Args {
  inputs: Record<string, TensorInfo>;
  backend: tf.KernelBackend & { disposeData(dataId: unknown): boolean };
  attrs: Record<string, unknown>;
}
type KernelFn = (args: Args) => TensorInfo;

function kernel(name: string): KernelFn {
  const config = tf.getKernel(name, 'wasm');
  if (!config) throw new Error(`wasm kernel ${name} is not registered`);
  return config.kernelFunc as unknown as KernelFn;
}

/** Why a convolution's configuration is outside what these kernels cover, or null when it is covered. */
export function unsupportedConv(attrs: Record<string, unknown>): string | null {
  const strides = attrs.strides as number | [number, number];
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
  if (sh !== 1 || sw !== 1) return `stride ${sh}x${sw} (only 1x1 is supported)`;
  const dilations = attrs.dilations as number | [number, number] | undefined;
  if (dilations !== undefined) {
    const [dh, dw] = typeof dilations === 'number' ? [dilations, dilations] : dilations;
    if (dh !== 1 || dw !== 1) return `dilation ${dh}x${dw} (only 1x1 is supported)`;
  }
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return `data format ${String(attrs.dataFormat)} (only NHWC)`;
  if (attrs.pad !== 'valid') return `padding ${JSON.stringify(attrs.pad)} (only 'valid')`;
  return null;
}

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
// packs that dy as a 28x28 filter on every call. Instead: patches^T [KH*KW*ci, n*OH*OW] built in JS, times dy
// [n*OH*OW, co] on XNNPACK. conv2 (1,600 rows) stays a convolution, which measured faster for it.
const IM2COL_MAX_ROWS = 256;

function filterGradIm2col(x: TensorInfo, dy: TensorInfo, kh: number, kw: number, backend: Args['backend']): TensorInfo {
  const [n, h, w, ci] = x.shape as [number, number, number, number];
  const [, oh, ow, co] = dy.shape as [number, number, number, number];
  const rows = kh * kw * ci;
  const cols = n * oh * ow;
  const patches = (backend as unknown as WasmBackend).makeOutput([rows, cols], 'float32');
  const src = heap(backend, x);
  const p = heap(backend, patches);
  for (let r = 0; r < kh; r++) {
    for (let s = 0; s < kw; s++) {
      for (let c = 0; c < ci; c++) {
        let o = ((r * kw + s) * ci + c) * cols;
        for (let b = 0; b < n; b++) {
          for (let i = 0; i < oh; i++) {
            let at = ((b * h + i + r) * w + s) * ci + c;
            for (let j = 0; j < ow; j++) {
              p[o++] = src[at]!;
              at += ci;
            }
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
    const cols = kernel('BatchMatMul')({
      inputs: {
        a: { dataId: dy.dataId, shape: [n * oh * ow, co], dtype: 'float32' },
        b: { dataId: filter.dataId, shape: [kh * kw * ci, co], dtype: 'float32' },
      },
      backend,
      attrs: { transposeA: false, transposeB: true },
    });
    const out = (backend as unknown as WasmBackend).makeOutput([n, h, w, ci], 'float32');
    const dx = heap(backend, out);
    dx.fill(0);
    const c = heap(backend, cols);
    const rowLen = kw * ci; // one kernel row of a window is contiguous in both cols and dx (NHWC)
    col2im(c, dx, n, oh, ow, kh, h, w, ci, rowLen);
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

// 2. MaxPoolGrad: the stock kernel takes 155 ms for max_pool1's gradient. A JS loop over the wasm heap that
//    looks for each window's maximum (the forward output, an input of this kernel) stops at the first match:
//    ~25 ms, against ~50 ms for our first loop, which recomputed every window's maximum for all channels at
//    once. Ties go to the first maximum in the window (row-major), as the cpu backend does.
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}
const heap = (backend: unknown, t: TensorInfo) => (backend as WasmBackend).typedArrayFromHeap(t);

function makeMaxPoolGrad(stock: KernelFn | undefined): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const [fh, fw] = typeof attrs.filterSize === 'number' ? [attrs.filterSize, attrs.filterSize] : (attrs.filterSize as [number, number]);
    const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : (attrs.strides as [number, number]);
    if (attrs.pad !== 'valid' || input.dtype !== 'float32') {
      if (stock) return stock(args);
      throw new Error('MaxPoolGrad on wasm: only valid padding is supported');
    }
    const [n, h, w, c] = input.shape as [number, number, number, number];
    const [, oh, ow] = dy.shape as [number, number, number, number];
    const out = (backend as unknown as WasmBackend).makeOutput(input.shape, 'float32');
    const x = heap(backend, input);
    const y = heap(backend, args.inputs.output!); // the forward result: each window's maximum
    const g = heap(backend, dy);
    const dx = heap(backend, out);
    dx.fill(0);
    const rowStep = w * c;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const o = ((b * oh + i) * ow + j) * c;
          const corner = ((b * h + i * sh) * w + j * sw) * c;
          for (let ch = 0; ch < c; ch++) {
            // The first position (row-major) holding the maximum takes the gradient, as in the cpu backend;
            // a NaN maximum matches nothing, so its gradient goes nowhere (the cpu backend's -1 position).
            const m = y[o + ch]!;
            let row = corner + ch;
            search: for (let ki = 0; ki < fh; ki++, row += rowStep) {
              for (let kj = 0, q = row; kj < fw; kj++, q += c) {
                if (x[q] === m) {
                  dx[q] += g[o + ch]!;
                  break search;
                }
              }
            }
          }
        }
      }
    }
    return out;
  };
}

// 3. Sum over every axis but the last (the bias gradient of a conv layer): the stock kernel transposes the
//    3.2M-value conv1 gradient first (24 ms); a JS loop sums it in place.
function makeSum(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { backend, attrs } = args;
    const { x } = args.inputs as { x: TensorInfo };
    const rank = x.shape.length;
    const axes = (Array.isArray(attrs.axis) ? (attrs.axis as number[]) : [attrs.axis as number]).map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
    const allButLast = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!allButLast || x.dtype !== 'float32' || attrs.keepDims) return stock(args);
    const c = x.shape[rank - 1]!;
    const rows = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
    const src = heap(backend, x);
    const acc = new Float64Array(c);
    for (let r = 0; r < rows; r++) {
      const base = r * c;
      for (let ch = 0; ch < c; ch++) acc[ch] += src[base + ch]!;
    }
    const out = (backend as unknown as WasmBackend).makeOutput([c], 'float32');
    heap(backend, out).set(acc);
    return out;
  };
}

// 4. BatchMatMul with a transposed operand leaves XNNPACK for a scalar loop: 96 ms for fc1's weight gradient
//    ([64,1024]^T x [64,384]) against a few ms for an explicit transpose then the XNNPACK path.
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

// 5. Identity copies its input on wasm (4.6 ms per step for the [64,28,28,64] gradient that Add passes on);
//    tensors are immutable, so sharing the data with a reference count is what the cpu backend does.
function makeIdentity(stock: KernelFn): KernelFn {
  return (args: Args): TensorInfo => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return stock(args);
    (args.backend as unknown as { incRef(dataId: unknown): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

function replaceKernel(name: string, make: (stock: KernelFn | undefined) => KernelFn): void {
  const stock = tf.getKernel(name, 'wasm');
  if (stock) tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    // The stock kernel's setup binds its wasm function; ours may call it, so keep it.
    setupFunc: stock?.setupFunc,
    kernelFunc: make(stock?.kernelFunc as unknown as KernelFn | undefined) as unknown as tf.KernelFunc,
  });
}

let registered = false;

/** Registers our kernels for 'wasm' (once per process). Call after the wasm backend is imported. */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  replaceKernel('MaxPoolGrad', makeMaxPoolGrad);
  replaceKernel('Sum', (stock) => makeSum(stock!));
  replaceKernel('BatchMatMul', (stock) => makeBatchMatMul(stock!));
  replaceKernel('Conv2DBackpropInput', makeConv2DBackpropInput);
  replaceKernel('Conv2DBackpropFilter', () => conv2DBackpropFilter);
  replaceKernel('Identity', (stock) => makeIdentity(stock!));
}
