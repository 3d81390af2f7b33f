// What the wasm kernels share: their arguments, the stock kernels they call, the wasm heap, and which
// convolutions the convolution kernels cover.

import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import tf from '../../../tf.cjs';
import { Gemm, type Heap } from '../gemm.js';
import { Simd } from '../simd.js';

export type TensorInfo = tf.TensorInfo;
export interface Args {
  inputs: Record<string, TensorInfo>;
  backend: BackendWasm;
  attrs: Record<string, unknown>;
}
export type KernelFn = (args: Args) => TensorInfo;

/** One of our kernels: it replaces the stock kernel of `kernelName`, which `make` receives (it may call it). */
export interface KernelReplacement {
  kernelName: string;
  make(stock: KernelFn | undefined): KernelFn;
}

export function kernel(name: string): KernelFn {
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

/** A float32 tensor's data on the wasm heap, as a view (no copy). */
export const heap = (backend: BackendWasm, t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;

/** A tensor's byte offset on the wasm heap, for our own WebAssembly (./gemm.ts). */
export const heapOffset = (backend: BackendWasm, t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;

/** The wasm backend's heap, as our own WebAssembly modules take it: its memory and its allocator. */
function heapOf(backend: BackendWasm): Heap {
  const wasm = backend.wasm as unknown as { asm: { memory: WebAssembly.Memory }; _malloc(n: number): number; _free(p: number): void };
  return { memory: wasm.asm.memory, malloc: (n) => wasm._malloc(n), free: (p) => wasm._free(p) };
}

/** Our kernels' instances on one backend (each thread has its own backend, so its own). */
const ours = new WeakMap<BackendWasm, { gemm?: Gemm; simd?: Simd }>();
const oursOn = (backend: BackendWasm) => ours.get(backend) ?? ours.set(backend, {}).get(backend)!;

/** Our matrix product (../gemm.ts) on this backend's heap. */
export const gemmOn = (backend: BackendWasm): Gemm => (oursOn(backend).gemm ??= new Gemm(heapOf(backend)));

/** Our SIMD kernels (../simd.ts) on this backend's heap. */
export const simdOn = (backend: BackendWasm): Simd => (oursOn(backend).simd ??= new Simd(heapOf(backend).memory));
