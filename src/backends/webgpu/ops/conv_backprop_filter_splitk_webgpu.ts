// The op-by-op runner's Conv2DBackpropFilter as two tfjs programs (issue #12): the split-K product of
// ../wgsl/splitk.ts over chunks of positions, dims from tfjs's uniforms, then the sum over the chunks. Registered
// by ./kernels.ts.

import { flatDispatch } from '../wgsl/flat_dispatch.js';
import { SPLITK_WORKGROUP, TILE_K, TILE_M, TILE_N, splitKCode, splitKDispatch, type SplitKDims, type SplitKPlan } from '../wgsl/splitk.js';

/** Pass 1 as a tfjs program: partial[s, k, n] over the chunk s of positions. Inputs x [B, H, W, Ci] and dy [B, OH, OW, Co]. */
export class Conv2DDerFilterSplitKProgram {
  variableNames = ['x', 'dy'];
  outputShape: number[];
  shaderKey = `alexnetConv2DDerFilterSplitK_${TILE_K}_${TILE_N}_${TILE_M}`;
  dispatchLayout = { x: [1], y: [2], z: [0] };
  dispatch: [number, number, number];
  workgroupSize = SPLITK_WORKGROUP;
  uniforms = 'kw : i32, stride : vec2<i32>, pad : vec2<i32>, chunk : i32, tilesPerChunk : i32,';

  constructor(k: number, n: number, plan: SplitKPlan) {
    this.outputShape = [plan.slices, k, n];
    this.dispatch = splitKDispatch(k, n, plan.slices);
  }

  getUserCode(): string {
    const u = (e: string) => `u32(${e})`;
    const dims: SplitKDims = {
      K: u('uniforms.outShape.y'),
      N: u('uniforms.outShape.z'),
      ci: u('uniforms.xShape.w'),
      kw: u('uniforms.kw'),
      inH: u('uniforms.xShape.y'),
      inW: u('uniforms.xShape.z'),
      ow: u('uniforms.dyShape.z'),
      ohw: u('uniforms.dyShape.y * uniforms.dyShape.z'),
      M: u('uniforms.dyShape.x * uniforms.dyShape.y * uniforms.dyShape.z'),
      strideY: u('uniforms.stride.x'),
      strideX: u('uniforms.stride.y'),
      padY: u('uniforms.pad.x'),
      padX: u('uniforms.pad.y'),
      chunk: u('uniforms.chunk'),
      tilesPerChunk: u('uniforms.tilesPerChunk'),
    };
    return `${splitKCode(dims, false, `fn store(s : u32, k : u32, n : u32, v : f32) {
    result[(i32(s) * uniforms.outShape.y + i32(k)) * uniforms.outShape.z + i32(n)] = v;
  }`)}
  fn main() {
    splitK(localId, workgroupId);
  }
`;
  }
}

/** Pass 2 as a tfjs program: the sum over chunks, out[i] = sum over s of partial[s, i], in the filter's shape. */
export class SumSlicesProgram {
  variableNames = ['partial'];
  outputShape: number[];
  shaderKey = 'alexnetSumSlices';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  uniforms = 'slices : i32,';

  constructor(filterShape: number[]) {
    this.outputShape = filterShape;
    this.dispatchLayout = { x: filterShape.map((_, i) => i) };
    this.dispatch = flatDispatch(filterShape.reduce((a, b) => a * b, 1), this.workgroupSize[0]);
  }

  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index < uniforms.size) {
      var sum = 0.0;
      for (var s = 0; s < uniforms.slices; s = s + 1) {
        sum = sum + partial[s * uniforms.size + index];
      }
      setOutputAtIndex(index, sum);
    }
  }
`;
  }
}
