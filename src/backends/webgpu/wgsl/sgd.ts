// The SGD update of one weight as WGSL, as tfjs's SGDOptimizer rounds it, shared by the op-by-op runner's
// ../ops/sgd_update_webgpu.ts and the compiled step's ../compiled/kernels/flat_sgd_webgpu.ts.

/** WGSL: w + (-lr) * g, the product rounded before the sum, as tfjs's SGD computes it. */
export const sgd = (w: string, g: string, lr: string) => `${w} + (-${lr} * ${g})`;

/** A WGSL f32 literal of exactly the float32 value of `x` (the shortest decimal that reads back as it). */
export const f32 = (x: number) => `${Math.fround(x)}f`;
