// The shapes of one convolution of the compiled step, as WGSL constants shared by its forward pass and its
// gradients: input [IH, IW, CI], output [OH, OW, CO], a KH x KW filter at stride (SY, SX) with padding (PY, PX).

import type { Shape } from './plan.js';

export interface ConvGeometry {
  input: Shape;
  output: Shape;
  kh: number;
  kw: number;
  stride: [number, number];
  pad: [number, number];
}

export const convConstants = (g: ConvGeometry) => `
const IH = ${g.input[0]}u;
const IW = ${g.input[1]}u;
const CI = ${g.input[2]}u;
const OH = ${g.output[0]}u;
const OW = ${g.output[1]}u;
const CO = ${g.output[2]}u;
const KH = ${g.kh}u;
const KW = ${g.kw}u;
const SY = ${g.stride[0]}u;
const SX = ${g.stride[1]}u;
const PY = ${g.pad[0]}u;
const PX = ${g.pad[1]}u;
`;

/** A key for the geometry, for shaderKey. */
export const convKey = (g: ConvGeometry) => [...g.input, ...g.output, g.kh, g.kw, ...g.stride, ...g.pad].join('_');

/**
 * A value and its ReLU: negative values become 0, a NaN stays NaN (so a diverged run is still seen), as tfjs's
 * relu on webgpu: `select(a, 0, a < 0)`.
 */
export const RELU = 'fn relu(v : f32) -> f32 { return select(v, 0.0, v < 0.0); }';

/** The gradient through a ReLU, given the ReLU's output t: dy where t > 0, else 0 (tfjs: dy * step(x)). */
export const RELU_MASK = 'fn reluMask(g : f32, t : f32) -> f32 { return select(0.0, g, t > 0.0); }';
