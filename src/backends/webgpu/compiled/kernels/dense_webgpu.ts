// A Dense layer's forward pass in the compiled step (issue #18): y[b, n] = relu(sum over k of x[b, k] W[k, n] +
// bias[n]), W the layer's kernel [IN, OUT] inside the flat weight buffer.

import { RELU } from '../conv_geometry.js';
import { GemmProgram, gemmCode } from './gemm.js';

export interface DenseGeometry {
  inputs: number;
  units: number;
  kernel: number; // offset in the flat weights
  bias: number | null;
  relu: boolean;
}

export const denseKey = (d: DenseGeometry) => `${d.inputs}_${d.units}_${d.kernel}_${d.bias}_${d.relu}`;

export class DenseProgram extends GemmProgram {
  constructor(
    private readonly d: DenseGeometry,
    batch: number,
  ) {
    super([{ name: 'x', type: 'f32', write: false }, { name: 'w', type: 'f32', write: false }, { name: 'y', type: 'f32', write: true }], `alexnetDense_${denseKey(d)}`, (n) => n, d.units, batch);
  }

  getUserCode(): string {
    const { inputs, units, kernel, bias, relu } = this.d;
    return `${RELU}
${gemmCode({
  ...this.tiles,
  m: 'step.n',
  n: units,
  k: `${inputs}u`,
  loadA: `fn loadA(m : u32, k : u32) -> f32 { return x[m * ${inputs}u + k]; }`,
  loadB: `fn loadB(k : u32, n : u32) -> f32 { return w[${kernel}u + k * ${units}u + n]; }`,
  store: `fn store(m : u32, n : u32, v : f32) {
  let o = v${bias === null ? '' : ` + w[${bias}u + n]`};
  y[m * ${units}u + n] = ${relu ? 'relu(o)' : 'o'};
}`,
})}`;
  }
}
