// The seed's loss, accuracy and loss gradient as WGSL functions over a `logits` binding of [n, classes] float32, shared
// by the op-by-op runner's programs (../ops/cross_entropy_webgpu.ts) and the compiled step's one program
// (../compiled/kernels/softmax_cross_entropy_webgpu.ts), so that both compute each row the same way.

/**
 * `rowMax(row)`, `rowLogSumExp(row, max)` (stable: shifted by the row's maximum), `firstMax(row)` (the first maximum,
 * as tf.argMax picks it on ties) and `softmaxGrad(index, lse, hit, count)`: (softmax - one_hot) / count for one
 * logit.
 */
export const crossEntropyFns = (classes: number) => `
  fn rowMax(row : i32) -> f32 {
    var m = logits[row * ${classes}];
    for (var c = 1; c < ${classes}; c = c + 1) {
      m = max(m, logits[row * ${classes} + c]);
    }
    return m;
  }
  fn rowLogSumExp(row : i32, m : f32) -> f32 {
    var s = 0.0;
    for (var c = 0; c < ${classes}; c = c + 1) {
      s = s + exp(logits[row * ${classes} + c] - m);
    }
    return m + log(s);
  }
  fn firstMax(row : i32) -> i32 {
    var best = 0;
    for (var c = 1; c < ${classes}; c = c + 1) {
      if (logits[row * ${classes} + c] > logits[row * ${classes} + best]) { best = c; }
    }
    return best;
  }
  fn softmaxGrad(index : i32, lse : f32, hit : bool, count : f32) -> f32 {
    return (exp(logits[index] - lse) - select(0.0, 1.0, hit)) / count;
  }
`;
