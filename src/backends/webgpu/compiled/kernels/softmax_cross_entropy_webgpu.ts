// The seed's loss in the compiled step (issue #18), in one program: for each image the softmax cross-entropy of
// its logits and its label, whether its first maximum is the label (tf.argMax's choice on ties), and for
// training the gradient (softmax - one_hot) / n; the batch's mean loss and accuracy go into the training ring's
// slot (or, evaluating, the batch's row of the results, with each image's predicted class and, in the high 16 bits
// of the same word, how many classes outrank its label: src/step.ts's labelRank, for top-5; and its logits, for
// test-time augmentation to average). One workgroup walks
// the batch and sums in a fixed order, so the means repeat bit for bit. Labels are read from the split on the GPU:
// training through the step's gather words (their images' labels), evaluation from the batch's first image on.

import { crossEntropyFns } from '../../wgsl/cross_entropy.js';
import { wordImage } from '../../wgsl/gather.js';
import type { CompiledProgram } from '../program.js';

const THREADS = 256;

export class SoftmaxCrossEntropyProgram implements CompiledProgram {
  bindings: CompiledProgram['bindings'];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  shaderKey: string;

  /** `mode`: `train` (gradient and ring slot) or `eval` (predictions and the batch's row). */
  /** `smoothing`: the recipe's label smoothing (PyTorch's; 0 in the seed). */
  constructor(
    private readonly classes: number,
    private readonly mode: 'train' | 'eval',
    private readonly smoothing = 0,
  ) {
    this.shaderKey = `alexnetSoftmaxCrossEntropy_${classes}_${mode}_${smoothing}`;
    this.bindings = mode === 'train'
      ? [
          { name: 'logits', type: 'f32', write: false },
          { name: 'labels', type: 'u32', write: false },
          { name: 'indices', type: 'u32', write: false },
          { name: 'dlogits', type: 'f32', write: true },
          { name: 'ring', type: 'f32', write: true },
        ]
      : [
          { name: 'logits', type: 'f32', write: false },
          { name: 'labels', type: 'u32', write: false },
          { name: 'predictions', type: 'u32', write: true },
          { name: 'results', type: 'f32', write: true },
          { name: 'allLogits', type: 'f32', write: true },
        ];
  }

  dispatch(): [number, number, number] {
    return [1, 1, 1];
  }

  getUserCode(): string {
    const C = this.classes;
    const train = this.mode === 'train';
    return `
${crossEntropyFns(C, this.smoothing)}
var<workgroup> lossSums : array<f32, ${THREADS}>;
var<workgroup> hitSums : array<f32, ${THREADS}>;

@compute @workgroup_size(${THREADS}, 1, 1)
fn main(@builtin(local_invocation_index) lid : u32) {
  let n = step.n;
  var loss = 0.0;
  var hits = 0.0;
  for (var row = lid; row < n; row = row + ${THREADS}u) {
    let label = labels[${train ? wordImage('indices[row]') : 'step.start + row'}];
    let lse = rowLogSumExp(i32(row), rowMax(i32(row)));
    loss = loss + rowLoss(i32(row), i32(label), lse);
    let best = u32(firstMax(i32(row)));
    hits = hits + select(0.0, 1.0, best == label);
    ${train
      ? `for (var c = 0u; c < ${C}u; c = c + 1u) {
      dlogits[row * ${C}u + c] = softmaxGrad(i32(row * ${C}u + c), lse, c == label, f32(n));
    }`
      : `let own = logits[row * ${C}u + label];
    var rank = 0u;
    for (var c = 0u; c < ${C}u; c = c + 1u) {
      let z = logits[row * ${C}u + c];
      rank = rank + select(0u, 1u, z > own || (z == own && c < label));
    }
    predictions[step.start + row] = best | (rank << 16u);
    for (var c = 0u; c < ${C}u; c = c + 1u) {
      allLogits[(step.start + row) * ${C}u + c] = logits[row * ${C}u + c];
    }`}
  }
  lossSums[lid] = loss;
  hitSums[lid] = hits;
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      lossSums[lid] = lossSums[lid] + lossSums[lid + stride];
      hitSums[lid] = hitSums[lid] + hitSums[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    ${train ? 'ring' : 'results'}[step.slot * 2u] = lossSums[0] / f32(n);
    ${train ? 'ring' : 'results'}[step.slot * 2u + 1u] = hitSums[0] / f32(n);
  }
}
`;
  }
}
