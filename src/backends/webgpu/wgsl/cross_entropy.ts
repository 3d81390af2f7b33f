// The seed's loss, accuracy and loss gradient as WGSL functions over a `logits` binding of [n, classes] float32, shared
// by the op-by-op runner's programs (../ops/cross_entropy_webgpu.ts) and the compiled step's one program
// (../compiled/kernels/softmax_cross_entropy_webgpu.ts), so that both compute each row the same way.

/** A number as a WGSL float literal (`1` would be an integer one). */
const f32Literal = (v: number) => (Number.isInteger(v) ? `${v}.0` : String(v));

/**
 * `rowMax(row)`, `rowLogSumExp(row, max)` (stable: shifted by the row's maximum), `firstMax(row)` (the first maximum,
 * as tf.argMax picks it on ties), `rowLoss(row, label, lse)`: the row's cross-entropy, and `softmaxGrad(index, lse,
 * hit, count)`: (softmax - target) / count for one logit. The target is the one-hot label, or with label smoothing
 * `smoothing` = e PyTorch's (1 - e) * one_hot + e / classes, whose loss is lse - (1 - e) * z_label - e * mean(z).
 */
export const crossEntropyFns = (classes: number, smoothing = 0) => `
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
${smoothing === 0
  ? `  fn rowLoss(row : i32, label : i32, lse : f32) -> f32 {
    return lse - logits[row * ${classes} + label];
  }
  fn softmaxGrad(index : i32, lse : f32, hit : bool, count : f32) -> f32 {
    return (exp(logits[index] - lse) - select(0.0, 1.0, hit)) / count;
  }`
  : `  fn rowLoss(row : i32, label : i32, lse : f32) -> f32 {
    var s = 0.0;
    for (var c = 0; c < ${classes}; c = c + 1) {
      s = s + logits[row * ${classes} + c];
    }
    return lse - ${f32Literal(1 - smoothing)} * logits[row * ${classes} + label] - ${f32Literal(smoothing / classes)} * s;
  }
  fn softmaxGrad(index : i32, lse : f32, hit : bool, count : f32) -> f32 {
    return (exp(logits[index] - lse) - select(${f32Literal(smoothing / classes)}, ${f32Literal(1 - smoothing + smoothing / classes)}, hit)) / count;
  }`}
`;
