// The SGD update of one weight in one dispatch: w - lr * g. tfjs's SGDOptimizer takes two per weight (a
// multiply, then an add), 20 of the ~92 dispatches of this network's step on WebGPU (counted by wrapping
// runWebGPUProgram, 2026-11-28), and each dispatch costs ~50 us of a 7 ms step on an H200 (issue #12).

import { flatDispatch } from '../wgsl/flat_dispatch.js';
import { sgd } from '../wgsl/sgd.js';

export class SgdUpdateProgram {
  variableNames = ['w', 'g'];
  outputShape: number[];
  shaderKey = 'alexnetSgdUpdate';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  uniforms = 'lr : f32,';

  constructor(size: number) {
    this.outputShape = [size];
    this.dispatchLayout = { x: [0] };
    this.dispatch = flatDispatch(size, this.workgroupSize[0]);
  }

  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index < uniforms.size) {
      setOutputAtIndex(index, ${sgd('w[index]', 'g[index]', 'uniforms.lr')});
    }
  }
`;
  }
}
