// A convolution's filter and bias gradients in the compiled step (issue #18), in two dispatches: the split-K
// partial sums of ./conv_backprop_filter_splitk_webgpu.ts (shared with the op-by-op runner's kernel) with one
// more row of ones, whose sums are the bias gradient; then a reduction over the chunks that writes both into the
// flat gradient buffer, in order (no atomics: the same result every run). The chunks of the last, shorter batch
// are fewer: the header carries this convolution's count of them.

import type { CompiledProgram } from './compiled/program.js';
import { FLAT, FLAT_MAIN } from './compiled/program.js';
import { SPLITK_WORKGROUP, TILE_M, planSplitK, splitKCode, splitKDispatch, type SplitKPlan } from './conv_backprop_filter_splitk_webgpu.js';
import { convConstants, convKey, type ConvGeometry } from './conv_geometry.js';
import { flatDispatch } from './flat_dispatch.js';

/** The split-K plan of a convolution's filter gradient at batch `n` (the chunk is the full batch's; fewer slices). */
export function filterGradPlan(g: ConvGeometry, batch: number): SplitKPlan {
  return planSplitK(batch * g.output[0] * g.output[1], g.kh * g.kw * g.input[2], g.output[2]);
}

/** Pass 1: partial[s, k, co] over chunk s of positions, k = 0..K with the bias row last; dy is already ReLU-masked. */
export class Conv2DFilterGradPartialProgram implements CompiledProgram {
  bindings = [
    { name: 'x', type: 'f32', write: false },
    { name: 'dy', type: 'f32', write: false },
    { name: 'partial', type: 'f32', write: true },
  ] as CompiledProgram['bindings'];
  workgroupSize = SPLITK_WORKGROUP;
  shaderKey: string;
  private readonly rows: number;

  /** `conv`: this convolution's number (its slices are in the header); `plan`: the full batch's split. */
  constructor(
    private readonly g: ConvGeometry,
    private readonly conv: number,
    private readonly plan: SplitKPlan,
    private readonly bias: boolean,
  ) {
    this.rows = g.kh * g.kw * g.input[2] + (bias ? 1 : 0);
    this.shaderKey = `alexnetConv2DFilterGradPartial_${convKey(g)}_${conv}_${plan.chunk}_${bias}`;
  }

  dispatch(_n: number, h: { slices: number[] }): [number, number, number] {
    return splitKDispatch(this.rows, this.g.output[2], h.slices[this.conv]!);
  }

  getUserCode(): string {
    return `${convConstants(this.g)}
const ROWS = ${this.rows}u;
${splitKCode({
  K: 'KH * KW * CI',
  N: 'CO',
  ci: 'CI',
  kw: 'KW',
  inH: 'IH',
  inW: 'IW',
  ow: 'OW',
  ohw: 'OH * OW',
  M: 'step.n * OH * OW',
  strideY: 'SY',
  strideX: 'SX',
  padY: 'PY',
  padX: 'PX',
  chunk: `${this.plan.chunk}u`,
  tilesPerChunk: `${this.plan.chunk / TILE_M}u`,
}, this.bias, `fn store(s : u32, k : u32, n : u32, v : f32) { partial[(s * ROWS + k) * CO + n] = v; }`)}
@compute @workgroup_size(${SPLITK_WORKGROUP.join(', ')})
fn main(@builtin(local_invocation_id) lid : vec3<u32>, @builtin(workgroup_id) wid : vec3<u32>) {
  splitK(lid, wid);
}
`;
  }
}

/** Pass 2: the sum over this convolution's slices, into the gradient buffer: the kernel's rows, then the bias. */
export class Conv2DFilterGradReduceProgram implements CompiledProgram {
  bindings = [
    { name: 'partial', type: 'f32', write: false },
    { name: 'grads', type: 'f32', write: true },
  ] as CompiledProgram['bindings'];
  workgroupSize: [number, number, number] = [FLAT, 1, 1];
  shaderKey: string;
  private readonly size: number;

  constructor(
    private readonly g: ConvGeometry,
    private readonly conv: number,
    private readonly at: { kernel: number; bias: number | null },
  ) {
    const k = g.kh * g.kw * g.input[2];
    this.size = (k + (at.bias === null ? 0 : 1)) * g.output[2];
    this.shaderKey = `alexnetConv2DFilterGradReduce_${convKey(g)}_${conv}_${at.kernel}_${at.bias}`;
  }

  dispatch(): [number, number, number] {
    return flatDispatch(this.size, FLAT);
  }

  getUserCode(): string {
    const kernelSize = this.g.kh * this.g.kw * this.g.input[2] * this.g.output[2];
    return `
fn element(i : u32) {
  if (i >= ${this.size}u) { return; }
  var sum = 0.0;
  for (var s = 0u; s < slicesOf(${this.conv}u); s = s + 1u) {
    sum = sum + partial[s * ${this.size}u + i];
  }
  if (i < ${kernelSize}u) {
    grads[${this.at.kernel}u + i] = sum;
  }${this.at.bias === null ? '' : ` else {
    grads[${this.at.bias}u + i - ${kernelSize}u] = sum;
  }`}
}
${FLAT_MAIN}
`;
  }
}
