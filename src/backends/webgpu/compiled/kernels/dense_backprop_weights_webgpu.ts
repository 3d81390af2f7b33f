// A Dense layer's kernel and bias gradients in the compiled step (issue #18), in one product: dW[k, n] = sum over
// b of x[b, k] dy[b, n], with one more row of ones (k == IN) whose sums are the bias gradient, written into the
// flat gradient buffer. The sum runs over the batch (the header's n), in order.

import { denseKey, type DenseGeometry } from './dense_webgpu.js';
import { GemmProgram, gemmCode } from './gemm.js';

export class DenseBackpropWeightsProgram extends GemmProgram {
  private readonly weightRows: number;

  constructor(private readonly d: DenseGeometry) {
    const rows = d.inputs + (d.bias === null ? 0 : 1);
    super([{ name: 'x', type: 'f32', write: false }, { name: 'dy', type: 'f32', write: false }, { name: 'grads', type: 'f32', write: true }], `alexnetDenseBackpropWeights_${denseKey(d)}`, () => rows, d.units, 0);
    this.weightRows = rows;
  }

  getUserCode(): string {
    const { inputs, units, kernel, bias } = this.d;
    return gemmCode({
      ...this.tiles,
      m: `${this.weightRows}u`,
      n: units,
      k: 'step.n',
      loadA: `fn loadA(m : u32, k : u32) -> f32 {
  if (m < ${inputs}u) { return x[k * ${inputs}u + m]; }
  return 1.0;
}`,
      loadB: `fn loadB(k : u32, n : u32) -> f32 { return dy[k * ${units}u + n]; }`,
      store: `fn store(m : u32, n : u32, v : f32) {
  if (m < ${inputs}u) { grads[${kernel}u + m * ${units}u + n] = v; }${bias === null ? '' : ` else { grads[${bias}u + n] = v; }`}
}`,
    });
  }
}
