// A batch gathered and normalised on the GPU from the split kept there (issue #12): the images stay in GPU
// memory as bytes (four to an int32, 154 MB for the 50,000 training images), and each step uploads only its
// indices instead of gathering and normalising 64 x 3,072 pixels on the host and uploading 786 KB of floats.
// Normalisation reads the host's own 256-entry table (src/step.ts), so the pixels are bitwise the same as the
// host path's (WGSL's f32 division may be 2.5 ULP off; a lookup is exact).

import { IMAGE_BYTES } from '../../data/cifar.js';
import { flatDispatch } from './flat_dispatch.js';

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
      let word = bitcast<u32>(pixels[offset / 4]);
      let byte = (word >> (u32(offset % 4) * 8u)) & 255u;
      setOutputAtIndex(index, table[byte]);
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
