// The seed's loss and accuracy in three dispatches instead of ~25 (issue #12): tfjs's softmax cross-entropy
// forward and backward, the one-hot labels and the accuracy (argMax, equal, cast, mean) were ~25 of the 84
// dispatches of a WebGPU step (counted by wrapping runWebGPUProgram, 2026-11-28), each ~50 us on an H200.
//
// - MeanRowsProgram: one workgroup walks the batch and writes the mean over rows of either the cross-entropy
//   (log-sum-exp of the logits minus the label's logit) or the hit (the label is the first maximum, as
//   tf.argMax picks it);
// - CrossEntropyGradProgram: d loss / d logits = (softmax - one_hot) / n * dy, one thread per element.
//
// Logits are [n, classes] float32, labels [n] int32.

import { crossEntropyFns } from '../wgsl/cross_entropy.js';
import { flatDispatch } from '../wgsl/flat_dispatch.js';

const THREADS = 256;

/** The mean over rows of the cross-entropy (`what` = 'loss') or of the hits (`what` = 'accuracy'): [1]. */
export class MeanRowsProgram {
  variableNames = ['logits', 'labels'];
  outputShape: number[] = [1];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];

  constructor(
    private readonly classes: number,
    private readonly what: 'loss' | 'accuracy',
    private readonly smoothing = 0,
  ) {
    this.shaderKey = `alexnetMeanRows_${what}_${classes}_${smoothing}`;
  }

  getUserCode(): string {
    const perRow = this.what === 'loss'
      ? `let m = rowMax(row);
          value = rowLoss(row, labels[row], rowLogSumExp(row, m));`
      : `value = select(0.0, 1.0, firstMax(row) == labels[row]);`;
    return `
  ${crossEntropyFns(this.classes, this.smoothing)}
  var<workgroup> partial : array<f32, ${THREADS}>;

  fn main(index : i32) {
    let lid = i32(localId.x);
    let n = uniforms.logitsShape.x;
    var sum = 0.0;
    for (var row = lid; row < n; row = row + ${THREADS}) {
      var value = 0.0;
      ${perRow}
      sum = sum + value;
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var stride = ${THREADS / 2}; stride > 0; stride = stride / 2) {
      if (lid < stride) {
        partial[lid] = partial[lid] + partial[lid + stride];
      }
      workgroupBarrier();
    }
    if (lid == 0) {
      result[0] = partial[0] / f32(n);
    }
  }
`;
  }
}

/** d (mean cross-entropy) / d logits, times the upstream gradient dy (a scalar). */
export class CrossEntropyGradProgram {
  variableNames = ['logits', 'labels', 'dy'];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  constructor(
    n: number,
    private readonly classes: number,
    private readonly smoothing = 0,
  ) {
    this.outputShape = [n, classes];
    this.shaderKey = `alexnetCrossEntropyGrad_${classes}_${smoothing}`;
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = flatDispatch(n * classes, this.workgroupSize[0]);
  }

  getUserCode(): string {
    return `
  ${crossEntropyFns(this.classes, this.smoothing)}

  fn main(index : i32) {
    if (index < uniforms.size) {
      let row = index / ${this.classes};
      let c = index % ${this.classes};
      let n = uniforms.logitsShape.x;
      let lse = rowLogSumExp(row, rowMax(row));
      setOutputAtIndex(index, softmaxGrad(index, lse, labels[row] == c, f32(n)) * dy[0]);
    }
  }
`;
  }
}
