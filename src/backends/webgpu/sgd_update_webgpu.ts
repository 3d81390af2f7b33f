// The SGD update of one weight in one dispatch: w - lr * g. tfjs's SGDOptimizer takes two per weight (a
// multiply, then an add), 20 of the ~92 dispatches of this network's step on WebGPU (counted by wrapping
// runWebGPUProgram, 2026-11-28), and each dispatch costs ~50 us of a 7 ms step on an H200 (issue #12).

import { isPlainSgd, type SgdOptions } from '../../step.js';
import { FLAT, FLAT_MAIN, type CompiledProgram } from './compiled/program.js';
import { flatDispatch } from './flat_dispatch.js';

/** WGSL: w + (-lr) * g, the product rounded before the sum, as tfjs's SGD computes it. */
const sgd = (w: string, g: string, lr: string) => `${w} + (-${lr} * ${g})`;

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

/** A WGSL f32 literal of exactly the float32 value of `x` (the shortest decimal that reads back as it). */
const f32 = (x: number) => `${Math.fround(x)}f`;

/**
 * The compiled step's update (issue #18): every weight of the flat buffer from the flat gradients, in one dispatch;
 * with momentum, weight decay or Nesterov, PyTorch's SGD (src/step.ts's Sgd) on a flat momentum buffer too.
 */
export class FlatSgdProgram implements CompiledProgram {
  bindings: CompiledProgram['bindings'];
  workgroupSize: [number, number, number] = [FLAT, 1, 1];
  shaderKey: string;

  constructor(
    private readonly size: number,
    private readonly opts: SgdOptions = { momentum: 0, nesterov: false, weightDecay: 0 },
  ) {
    this.shaderKey = `alexnetFlatSgd_${size}_${opts.momentum}_${opts.nesterov}_${opts.weightDecay}`;
    this.bindings = [
      { name: 'weights', type: 'f32', write: true },
      { name: 'grads', type: 'f32', write: false },
      ...(opts.momentum > 0 ? [{ name: 'momentum', type: 'f32' as const, write: true }] : []),
    ];
  }

  dispatch(): [number, number, number] {
    return flatDispatch(this.size, FLAT);
  }

  getUserCode(): string {
    const { momentum, nesterov, weightDecay } = this.opts;
    if (isPlainSgd(this.opts)) {
      return `
fn element(i : u32) {
  if (i < ${this.size}u) { weights[i] = ${sgd('weights[i]', 'grads[i]', 'step.lr')}; }
}
${FLAT_MAIN}
`;
    }
    return `
fn element(i : u32) {
  if (i >= ${this.size}u) { return; }
  var g = grads[i];
  ${weightDecay !== 0 ? `g = g + ${f32(weightDecay)} * weights[i];` : ''}
  ${momentum > 0 ? `let b = ${f32(momentum)} * momentum[i] + g;
  momentum[i] = b;
  ${nesterov ? `g = g + ${f32(momentum)} * b;` : 'g = b;'}` : ''}
  weights[i] = ${sgd('weights[i]', 'g', 'step.lr')};
}
${FLAT_MAIN}
`;
  }
}
