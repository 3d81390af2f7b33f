// A batch gathered and normalised on the GPU from the split kept there (issue #12): the images stay in GPU
// memory as bytes (four to an int32, 154 MB for the 50,000 training images), and each step uploads only its
// indices instead of gathering and normalising 64 x 3,072 pixels on the host and uploading 786 KB of floats.
// Normalisation reads the host's own 256-entry table (src/step.ts), so the pixels are bitwise the same as the
// host path's (WGSL's f32 division may be 2.5 ULP off; a lookup is exact).

import { IMAGE_BYTES } from '../../data/cifar.js';
import { FLAT, FLAT_MAIN, type CompiledProgram } from './compiled/program.js';
import { flatDispatch } from './flat_dispatch.js';

/** WGSL: the pixel byte at `offset` of a split kept as int32 or u32 words, four bytes each, little-endian. */
const pixelByte = (pixels: string, offset: string) => `((bitcast<u32>(${pixels}[(${offset}) / 4]) >> (u32((${offset}) % 4) * 8u)) & 255u)`;

export class GatherNormaliseProgram {
  variableNames = ['pixels', 'idx', 'table'];
  outputShape: number[];
  shaderKey = 'alexnetGatherNormalise';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  /** `shape`: the batch, [n, 32, 32, 3]. */
  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = flatDispatch(shape.reduce((a, b) => a * b, 1), this.workgroupSize[0]);
  }

  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let offset = idx[index / ${IMAGE_BYTES}] * ${IMAGE_BYTES} + index % ${IMAGE_BYTES};
      setOutputAtIndex(index, table[${pixelByte('pixels', 'offset')}]);
    }
  }
`;
  }
}

/** The split's bytes as int32 words, four pixels each, little-endian: what the program reads. */
export function packPixels(images: Uint8Array): Int32Array {
  if (images.byteOffset % 4 === 0 && images.byteLength % 4 === 0) return new Int32Array(images.buffer, images.byteOffset, images.byteLength / 4);
  const copy = new Uint8Array(Math.ceil(images.byteLength / 4) * 4);
  copy.set(images);
  return new Int32Array(copy.buffer);
}

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
    const image = this.mode === 'train' ? `indices[i / ${IMAGE_BYTES}u]` : `step.start + i / ${IMAGE_BYTES}u`;
    return `
fn element(i : u32) {
  if (i >= step.n * ${IMAGE_BYTES}u) { return; }
  let offset = (${image}) * ${IMAGE_BYTES}u + i % ${IMAGE_BYTES}u;
  x[i] = table[${pixelByte('pixels', 'offset')}];
}
${FLAT_MAIN}
`;
  }
}
