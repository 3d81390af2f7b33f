// The compiled step's last program (issue #18): every weight of the flat buffer updated from the flat gradients in
// one dispatch (the update's WGSL: ../../wgsl/sgd.ts).

import { isPlainSgd, type SgdOptions } from '../../../../step.js';
import { flatDispatch } from '../../wgsl/flat_dispatch.js';
import { f32, sgd } from '../../wgsl/sgd.js';
import { FLAT, FLAT_MAIN, type CompiledProgram } from '../program.js';

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
