// A Dense layer's input gradient in the compiled step (issue #18): dx[b, k] = sum over n of dy[b, n] W[k, n], W
// read transposed in place. When the layer below ends in a ReLU (or is a flattened ReLU output), its gradient is
// applied here, from that output t.

import { RELU_MASK } from '../conv_geometry.js';
import { denseKey, type DenseGeometry } from './dense_webgpu.js';
import { GemmProgram, gemmCode, maskedBindings } from './gemm.js';

export class DenseBackpropInputProgram extends GemmProgram {
  constructor(
    private readonly d: DenseGeometry,
    private readonly mask: boolean,
    batch: number,
  ) {
    super(
      maskedBindings([{ name: 'dy', type: 'f32', write: false }, { name: 'w', type: 'f32', write: false }, { name: 'dx', type: 'f32', write: true }], mask),
      `alexnetDenseBackpropInput_${denseKey(d)}_${mask}`,
      (n) => n,
      d.inputs,
      batch,
    );
  }

  getUserCode(): string {
    const { inputs, units, kernel } = this.d;
    return `${RELU_MASK}
${gemmCode({
  ...this.tiles,
  m: 'step.n',
  n: inputs,
  k: `${units}u`,
  loadA: `fn loadA(m : u32, k : u32) -> f32 { return dy[m * ${units}u + k]; }`,
  loadB: `fn loadB(k : u32, n : u32) -> f32 { return w[${kernel}u + n * ${units}u + k]; }`,
  store: `fn store(m : u32, n : u32, v : f32) { dx[m * ${inputs}u + n] = ${this.mask ? `reluMask(v, t[m * ${inputs}u + n])` : 'v'}; }`,
})}`;
  }
}
