// A convolution's filter and bias gradients in the compiled step, second dispatch (issue #18): the partial sums of
// ./conv2d_backprop_filter_webgpu.ts added up over the chunks and written into the flat gradient buffer, the
// kernel's rows then the bias, in order (no atomics: the same result every run). The chunks of the last, shorter
// batch are fewer: the header carries this convolution's count of them.

import { flatDispatch } from '../../wgsl/flat_dispatch.js';
import { convKey, type ConvGeometry } from '../conv_geometry.js';
import { FLAT, FLAT_MAIN, type CompiledProgram } from '../program.js';

/** Pass 2: the sum over this convolution's slices, into the gradient buffer: the kernel's rows, then the bias. */
export class Conv2DFilterGradReduceProgram implements CompiledProgram {
  bindings = [
    { name: 'partial', type: 'f32', write: false },
    { name: 'grads', type: 'f32', write: true },
  ] as CompiledProgram['bindings'];
  workgroupSize: [number, number, number] = [FLAT, 1, 1];
  shaderKey: string;
  private readonly size: number;

  constructor(
    private readonly g: ConvGeometry,
    private readonly conv: number,
    private readonly at: { kernel: number; bias: number | null },
  ) {
    const k = g.kh * g.kw * g.input[2];
    this.size = (k + (at.bias === null ? 0 : 1)) * g.output[2];
    this.shaderKey = `alexnetConv2DFilterGradReduce_${convKey(g)}_${conv}_${at.kernel}_${at.bias}`;
  }

  dispatch(): [number, number, number] {
    return flatDispatch(this.size, FLAT);
  }

  getUserCode(): string {
    const kernelSize = this.g.kh * this.g.kw * this.g.input[2] * this.g.output[2];
    return `
fn element(i : u32) {
  if (i >= ${this.size}u) { return; }
  var sum = 0.0;
  for (var s = 0u; s < slicesOf(${this.conv}u); s = s + 1u) {
    sum = sum + partial[s * ${this.size}u + i];
  }
  if (i < ${kernelSize}u) {
    grads[${this.at.kernel}u + i] = sum;
  }${this.at.bias === null ? '' : ` else {
    grads[${this.at.bias}u + i - ${kernelSize}u] = sum;
  }`}
}
${FLAT_MAIN}
`;
  }
}
