// A convolution's filter and bias gradients in the compiled step (issue #18), in two dispatches: the split-K
// partial sums of ../../wgsl/splitk.ts (shared with the op-by-op runner's kernel) with one
// more row of ones, whose sums are the bias gradient; then a reduction over the chunks
// (./conv2d_backprop_filter_reduce_webgpu.ts) that writes both into the flat gradient buffer. The chunks of the last, shorter batch
// are fewer: the header carries this convolution's count of them.

import type { CompiledProgram } from '../program.js';
import { SPLITK_WORKGROUP, TILE_M, planSplitK, splitKCode, splitKDispatch, type SplitKPlan } from '../../wgsl/splitk.js';
import { convConstants, convKey, type ConvGeometry } from '../conv_geometry.js';

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
