// The compiled step's plan (issue #18): the TensorFlow.js layers model read into a fixed list of operations
// with their shapes and where each weight lives in one flat buffer. The network stays defined by its tfjs layers
// (src/model.ts): this reads them, it does not restate them. A layer it does not know (or a configuration of a
// known one it does not cover) is not compiled: compilePlan says why, and the op-by-op runner runs the model.

import tfl from '../../../tfl.cjs';

/** A tensor per image, NHWC: [h, w, c]; dense activations are [1, 1, c]. */
export type Shape = [number, number, number];

interface Weights {
  kernel: number; // offset of the kernel in the flat weight (and gradient) buffer, in floats
  bias: number | null; // offset of the bias, or null without one
}

export type Op =
  | ({ kind: 'conv'; kh: number; kw: number; stride: [number, number]; pad: [number, number]; relu: boolean } & Weights)
  | { kind: 'pool'; kh: number; kw: number; stride: [number, number]; pad: [number, number] }
  | { kind: 'flatten' }
  | ({ kind: 'dense'; relu: boolean } & Weights);

export interface PlanLayer {
  name: string;
  op: Op;
  input: Shape;
  output: Shape;
}

export interface Plan {
  input: Shape; // [32, 32, 3]
  layers: PlanLayer[];
  classes: number; // the last layer's width: the logits
  /** Every trainable weight in model.trainableWeights order: its variable, and where it lives in the flat buffer. */
  weights: { variable: tfl.LayerVariable; offset: number; size: number }[];
  size: number; // floats in the flat weight buffer
}

const size = (s: Shape) => s[0] * s[1] * s[2];

/** tfjs's output size and padding for a window of `k` at stride `s` over `n` (valid or same), as computeConv2DInfo. */
function windowed(n: number, k: number, s: number, padding: string): { out: number; pad: number } {
  if (padding === 'valid') return { out: Math.ceil((n - k + 1) / s), pad: 0 };
  const out = Math.ceil(n / s);
  return { out, pad: Math.floor(Math.max(0, (out - 1) * s + k - n) / 2) };
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);

/** The plan of `model`, or why it has none. */
export function compilePlan(model: tfl.LayersModel): Plan | { reason: string } {
  const inShape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || !inShape || inShape.length !== 4) return { reason: 'the model does not take one NHWC image input' };
  const input = inShape.slice(1) as Shape;
  const offsets = new Map<tfl.LayerVariable, number>();
  let flat = 0;
  for (const v of model.trainableWeights) {
    offsets.set(v, flat);
    flat += v.shape.reduce((a, b) => a! * b!, 1)!;
  }
  const weightsOf = (layer: tfl.layers.Layer, useBias: boolean): Weights => {
    const [kernel, bias] = layer.trainableWeights;
    return { kernel: offsets.get(kernel!)!, bias: useBias && bias ? offsets.get(bias)! : null };
  };
  const layers: PlanLayer[] = [];
  let shape = input;
  for (const layer of model.layers) {
    const c = layer.getConfig();
    const kind = layer.getClassName();
    const activation = String((c.activation as string | undefined) ?? 'linear');
    if ((kind === 'Conv2D' || kind === 'Dense') && activation !== 'relu' && activation !== 'linear') return { reason: `layer ${layer.name} has a ${activation} activation (the compiler knows relu and linear)` };
    if (c.dataFormat !== undefined && c.dataFormat !== 'channelsLast') return { reason: `layer ${layer.name} is channels-first` };
    let op: Op;
    let out: Shape;
    if (kind === 'Conv2D') {
      const [kh, kw] = pair(c.kernelSize);
      const stride = pair(c.strides ?? 1);
      if (pair(c.dilationRate ?? 1).some((d) => d !== 1)) return { reason: `layer ${layer.name} is dilated` };
      const y = windowed(shape[0], kh, stride[0], String(c.padding));
      const x = windowed(shape[1], kw, stride[1], String(c.padding));
      op = { kind: 'conv', kh, kw, stride, pad: [y.pad, x.pad], relu: activation === 'relu', ...weightsOf(layer, c.useBias !== false) };
      out = [y.out, x.out, Number(c.filters)];
    } else if (kind === 'MaxPooling2D') {
      const [kh, kw] = pair(c.poolSize);
      const stride = pair(c.strides ?? c.poolSize);
      const y = windowed(shape[0], kh, stride[0], String(c.padding));
      const x = windowed(shape[1], kw, stride[1], String(c.padding));
      op = { kind: 'pool', kh, kw, stride, pad: [y.pad, x.pad] };
      out = [y.out, x.out, shape[2]];
    } else if (kind === 'Flatten') {
      op = { kind: 'flatten' };
      out = [1, 1, size(shape)];
    } else if (kind === 'Dense') {
      if (shape[0] !== 1 || shape[1] !== 1) return { reason: `layer ${layer.name} is a Dense layer on a ${shape.join('x')} input (flatten it first)` };
      op = { kind: 'dense', relu: activation === 'relu', ...weightsOf(layer, c.useBias !== false) };
      out = [1, 1, Number(c.units)];
    } else {
      return { reason: `layer ${layer.name} is a ${kind} (the compiler knows Conv2D, MaxPooling2D, Flatten and Dense)` };
    }
    if (out.some((d) => !(d > 0))) return { reason: `layer ${layer.name} has an empty output` };
    layers.push({ name: layer.name, op, input: shape, output: out });
    shape = out;
  }
  if (layers.length === 0 || shape[0] !== 1 || shape[1] !== 1) return { reason: 'the model does not end in a vector of logits' };
  return {
    input,
    layers,
    classes: shape[2],
    weights: model.trainableWeights.map((v) => ({ variable: v, offset: offsets.get(v)!, size: v.shape.reduce((a, b) => a! * b!, 1)! })),
    size: flat,
  };
}

export const elements = size;
