// Conv2D's forward pass in the compiled step (issue #18): an implicit GEMM, out[m, co] = sum over k of
// patch(x)[m, k] * W[k, co] with m = (b, oy, ox) and k = (ky, kx, ci), the patches read in place from x (NHWC),
// the bias and ReLU in its epilogue. W is the layer's kernel [KH, KW, CI, CO] inside the flat weight buffer.

import { convConstants, convKey, RELU, type ConvGeometry } from '../conv_geometry.js';
import { GemmProgram, gemmCode } from './gemm.js';

export class Conv2DProgram extends GemmProgram {
  /** `batch`: the largest batch it runs (it sets the tiles); `kernel`, `bias`: offsets in the flat weights. */
  constructor(
    private readonly g: ConvGeometry,
    private readonly at: { kernel: number; bias: number | null; relu: boolean },
    batch: number,
  ) {
    super(
      [{ name: 'x', type: 'f32', write: false }, { name: 'w', type: 'f32', write: false }, { name: 'y', type: 'f32', write: true }],
      `alexnetConv2D_${convKey(g)}_${at.kernel}_${at.bias}_${at.relu}`,
      (n) => n * g.output[0] * g.output[1],
      g.output[2],
      batch,
    );
  }

  getUserCode(): string {
    const { kernel, bias, relu } = this.at;
    return `${convConstants(this.g)}
${RELU}
${gemmCode({
  ...this.tiles,
  m: 'step.n * OH * OW',
  n: this.g.output[2],
  k: 'KH * KW * CI',
  // A row is an output position: its image's first input pixel and its window's top-left corner.
  rowA: {
    type: 'vec3<i32>',
    fn: `fn rowA(m : u32) -> vec3<i32> {
  let r = m % (OH * OW);
  return vec3<i32>(i32((m / (OH * OW)) * IH * IW), i32((r / OW) * SY) - i32(PY), i32((r % OW) * SX) - i32(PX));
}`,
  },
  loadA: `fn loadA(row : vec3<i32>, k : u32) -> f32 {
  let iy = row.y + i32(k / (KW * CI));
  let ix = row.z + i32((k % (KW * CI)) / CI);
  if (iy < 0 || ix < 0 || iy >= i32(IH) || ix >= i32(IW)) { return 0.0; }
  return x[(u32(row.x + iy * i32(IW) + ix)) * CI + k % CI];
}`,
  loadB: `fn loadB(k : u32, n : u32) -> f32 { return w[${kernel}u + k * CO + n]; }`,
  store: `fn store(m : u32, n : u32, v : f32) {
  let o = v${bias === null ? '' : ` + w[${bias}u + n]`};
  y[m * CO + n] = ${relu ? 'relu(o)' : 'o'};
}`,
})}`;
  }
}
