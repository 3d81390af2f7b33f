// MaxPool's gradient in the compiled step (issue #18), as a gather: each input position sums the gradients of the
// windows whose recorded maximum (./maxpool_webgpu.ts) it was, in window order. One thread per input, no atomics,
// so the sums are the same every run. When the pool's input is a ReLU's output (conv1's), that ReLU's gradient is
// applied here too, from its output t.

import { FLAT, FLAT_MAIN, type CompiledProgram } from '../program.js';
import { RELU_MASK, convConstants, convKey, type ConvGeometry } from '../conv_geometry.js';
import { flatDispatch } from '../../wgsl/flat_dispatch.js';
import { maskedBindings } from './gemm.js';

export class MaxPoolBackpropProgram implements CompiledProgram {
  bindings: CompiledProgram['bindings'];
  workgroupSize: [number, number, number] = [FLAT, 1, 1];
  shaderKey: string;

  constructor(
    private readonly g: ConvGeometry,
    private readonly mask: boolean,
  ) {
    this.shaderKey = `alexnetMaxPoolBackprop_${convKey(g)}_${mask}`;
    this.bindings = maskedBindings([{ name: 'dy', type: 'f32', write: false }, { name: 'argmax', type: 'u32', write: false }, { name: 'dx', type: 'f32', write: true }], mask);
  }

  dispatch(n: number): [number, number, number] {
    return flatDispatch(n * this.g.input[0] * this.g.input[1] * this.g.input[2], FLAT);
  }

  getUserCode(): string {
    return `${convConstants(this.g)}
${RELU_MASK}
fn element(i : u32) {
  if (i >= step.n * IH * IW * CI) { return; }
  let c = i % CI;
  let p = i / CI;
  let b = p / (IH * IW);
  let y = (p % (IH * IW)) / IW;
  let x = p % IW;
  var sum = 0.0;
  // The windows that cover (y, x): oy * SY + ky - PY == y for some ky in 0..KH-1.
  for (var ky = 0u; ky < KH; ky = ky + 1u) {
    let ny = i32(y + PY) - i32(ky);
    if (ny < 0 || ny % i32(SY) != 0 || u32(ny) / SY >= OH) { continue; }
    let oy = u32(ny) / SY;
    for (var kx = 0u; kx < KW; kx = kx + 1u) {
      let nx = i32(x + PX) - i32(kx);
      if (nx < 0 || nx % i32(SX) != 0 || u32(nx) / SX >= OW) { continue; }
      let o = ((b * OH + oy) * OW + u32(nx) / SX) * CO + c;
      if (argmax[o] == ky * KW + kx) { sum = sum + dy[o]; }
    }
  }
  dx[i] = ${this.mask ? 'reluMask(sum, t[i])' : 'sum'};
}
${FLAT_MAIN}
`;
  }
}
