// MaxPool's forward pass in the compiled step (issue #18): each output is its window's maximum, and where in the
// window it was (0..KH*KW-1, row-major) is recorded for the backward pass. Ties go to the first maximum, as
// tf.maxPool's gradient on the cpu backend sends them. Padding ('same') never wins: outside positions are skipped.

import { FLAT, FLAT_MAIN, type CompiledProgram } from '../program.js';
import { convConstants, convKey, type ConvGeometry } from '../conv_geometry.js';
import { flatDispatch } from '../../wgsl/flat_dispatch.js';

export class MaxPoolProgram implements CompiledProgram {
  bindings = [
    { name: 'x', type: 'f32', write: false },
    { name: 'y', type: 'f32', write: true },
    { name: 'argmax', type: 'u32', write: true },
  ] as CompiledProgram['bindings'];
  workgroupSize: [number, number, number] = [FLAT, 1, 1];
  shaderKey: string;

  constructor(private readonly g: ConvGeometry) {
    this.shaderKey = `alexnetMaxPool_${convKey(g)}`;
  }

  dispatch(n: number): [number, number, number] {
    return flatDispatch(n * this.g.output[0] * this.g.output[1] * this.g.output[2], FLAT);
  }

  getUserCode(): string {
    return `${convConstants(this.g)}
fn element(i : u32) {
  if (i >= step.n * OH * OW * CO) { return; }
  let c = i % CO;
  let p = i / CO;
  let b = p / (OH * OW);
  let oy = (p % (OH * OW)) / OW;
  let ox = p % OW;
  var best = 0.0;
  var at = KH * KW;
  for (var ky = 0u; ky < KH; ky = ky + 1u) {
    for (var kx = 0u; kx < KW; kx = kx + 1u) {
      let iy = i32(oy * SY + ky) - i32(PY);
      let ix = i32(ox * SX + kx) - i32(PX);
      if (iy >= 0 && ix >= 0 && iy < i32(IH) && ix < i32(IW)) {
        let v = x[((b * IH + u32(iy)) * IW + u32(ix)) * CI + c];
        if (at == KH * KW || v > best) {
          best = v;
          at = ky * KW + kx;
        }
      }
    }
  }
  y[i] = best;
  argmax[i] = at;
}
${FLAT_MAIN}
`;
  }
}
