// The op-by-op runner's batch (issue #12): gathered and normalised on the GPU from the split kept there, as a tfjs
// program (the WGSL and the layout of the split and the gather words: ../wgsl/gather.ts).

import { IMAGE_BYTES } from '../../../data/cifar.js';
import { flatDispatch } from '../wgsl/flat_dispatch.js';
import { gatheredFn } from '../wgsl/gather.js';

export class GatherNormaliseProgram {
  variableNames = ['pixels', 'idx', 'table'];
  outputShape: number[];
  shaderKey = 'alexnetGatherNormalise';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  /** `shape`: the batch, [n, 32, 32, 3]; `idx`: its gatherWords, as int32. */
  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = flatDispatch(shape.reduce((a, b) => a * b, 1), this.workgroupSize[0]);
  }

  getUserCode(): string {
    return `${gatheredFn('pixels')}
  fn main(index : i32) {
    if (index < uniforms.size) {
      setOutputAtIndex(index, gathered(bitcast<u32>(idx[index / ${IMAGE_BYTES}]), u32(index % ${IMAGE_BYTES})));
    }
  }
`;
  }
}
