// A convolution's input gradient in the compiled step (issue #18), needed for every convolution but the first:
// dx[m, ci] = sum over k of dy(window of m)[k] * W[k, ci], m = (b, y, x) an input position and k = (ky, kx, co),
// as an implicit GEMM. dy is read where the forward window (ky, kx) of some output (oy, ox) covered (y, x): oy =
// (y + PY - ky) / SY when that divides. When the layer below ends in a ReLU, its gradient is applied here, from
// that layer's output t (so no separate pass): dx is 0 where t is not positive.

import { convConstants, convKey, RELU_MASK, type ConvGeometry } from '../conv_geometry.js';
import { GemmProgram, gemmCode, maskedBindings } from './gemm.js';

export class Conv2DBackpropInputProgram extends GemmProgram {
  /** `mask`: whether the input is a ReLU's output (then bound as `t`). */
  constructor(
    private readonly g: ConvGeometry,
    private readonly kernel: number,
    private readonly mask: boolean,
    batch: number,
  ) {
    super(
      maskedBindings([{ name: 'dy', type: 'f32', write: false }, { name: 'w', type: 'f32', write: false }, { name: 'dx', type: 'f32', write: true }], mask),
      `alexnetConv2DBackpropInput_${convKey(g)}_${kernel}_${mask}`,
      (n) => n * g.input[0] * g.input[1],
      g.input[2],
      batch,
    );
  }

  getUserCode(): string {
    return `${convConstants(this.g)}
${RELU_MASK}
${gemmCode({
  ...this.tiles,
  m: 'step.n * IH * IW',
  n: this.g.input[2],
  k: 'KH * KW * CO',
  // A row is an input position: its image's first output pixel, and its (y + PY, x + PX).
  rowA: {
    type: 'vec3<i32>',
    fn: `fn rowA(m : u32) -> vec3<i32> {
  let r = m % (IH * IW);
  return vec3<i32>(i32((m / (IH * IW)) * OH * OW), i32(r / IW + PY), i32(r % IW + PX));
}`,
  },
  loadA: `fn loadA(row : vec3<i32>, k : u32) -> f32 {
  let ny = row.y - i32(k / (KW * CO));
  let nx = row.z - i32((k % (KW * CO)) / CO);
  if (ny < 0 || nx < 0 || ny % i32(SY) != 0 || nx % i32(SX) != 0) { return 0.0; }
  let oy = u32(ny) / SY;
  let ox = u32(nx) / SX;
  if (oy >= OH || ox >= OW) { return 0.0; }
  return dy[(u32(row.x) + oy * OW + ox) * CO + k % CO];
}`,
  loadB: `fn loadB(k : u32, n : u32) -> f32 {
  let kyx = k / CO;
  return w[${this.kernel}u + (kyx * CI + n) * CO + k % CO];
}`,
  store: `fn store(m : u32, n : u32, v : f32) { dx[m * CI + n] = ${this.mask ? 'reluMask(v, t[m * CI + n])' : 'v'}; }`,
})}`;
  }
}
