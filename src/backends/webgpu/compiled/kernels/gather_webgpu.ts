// The compiled step's first program: the batch gathered and normalised from the split on the GPU (the WGSL and the
// layout of the split and the gather words: ../../wgsl/gather.ts).

import { IMAGE_BYTES } from '../../../../data/cifar.js';
import { flatDispatch } from '../../wgsl/flat_dispatch.js';
import { gatheredFn } from '../../wgsl/gather.js';
import { FLAT, FLAT_MAIN, type CompiledProgram } from '../program.js';

/**
 * The compiled step's gather (issue #18): the batch's images normalised from the split on the GPU, training through
 * the step's indices, evaluation from the batch's first image (the header's start) on.
 */
export class GatherProgram implements CompiledProgram {
  bindings: CompiledProgram['bindings'];
  workgroupSize: [number, number, number] = [FLAT, 1, 1];
  shaderKey: string;

  constructor(private readonly mode: 'train' | 'eval') {
    this.shaderKey = `alexnetGather_${mode}`;
    this.bindings = [
      { name: 'pixels', type: 'u32', write: false },
      { name: 'table', type: 'f32', write: false },
      ...(mode === 'train' ? [{ name: 'indices', type: 'u32' as const, write: false }] : []),
      { name: 'x', type: 'f32', write: true },
    ];
  }

  dispatch(n: number): [number, number, number] {
    return flatDispatch(n * IMAGE_BYTES, FLAT);
  }

  getUserCode(): string {
    // Training reads each image's gather word (its index and draws); evaluation takes images in order, as they are.
    const word = this.mode === 'train' ? `indices[i / ${IMAGE_BYTES}u]` : `step.start + i / ${IMAGE_BYTES}u`;
    return `${gatheredFn('pixels')}
fn element(i : u32) {
  if (i >= step.n * ${IMAGE_BYTES}u) { return; }
  x[i] = gathered(${word}, i % ${IMAGE_BYTES}u);
}
${FLAT_MAIN}
`;
  }
}
