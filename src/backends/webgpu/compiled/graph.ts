// The compiled step's graph (issue #18): the plan (./plan.ts) turned into the dispatches of a training step or of an
// evaluation batch, each a program of ./kernels/ and the buffers it binds. The executor (./runner.ts) makes their
// pipelines and bind groups once and replays them.
//
// The conventions, where they are used below: t[i] is layer i's input (t[0] the batch, t[layers] the logits; a
// flatten shares its input's buffer); g[i] is the gradient with respect to t[i], already through t[i]'s own ReLU
// ("through its ReLU": each backward program masks its output where the layer below it ends in a ReLU, reading
// t[i], so no separate ReLU-gradient dispatch runs); input gradients are made only where a layer below has
// weights; every weight gradient goes into one flat buffer at the plan's offsets, updated by one program.
//
// Adding a layer kind to the compiler touches ./plan.ts (reading it from the layers model), this file (its forward
// and backward dispatches), one kernel file under ./kernels/ and a test (test/webgpu.test.ts).

import type { SgdOptions } from '../../../step.js';
import { Conv2DFilterGradReduceProgram } from './kernels/conv2d_backprop_filter_reduce_webgpu.js';
import { Conv2DFilterGradPartialProgram, filterGradPlan } from './kernels/conv2d_backprop_filter_webgpu.js';
import { Conv2DBackpropInputProgram } from './kernels/conv2d_backprop_input_webgpu.js';
import { Conv2DProgram } from './kernels/conv2d_webgpu.js';
import { DenseBackpropInputProgram } from './kernels/dense_backprop_input_webgpu.js';
import { DenseBackpropWeightsProgram } from './kernels/dense_backprop_weights_webgpu.js';
import { DenseProgram } from './kernels/dense_webgpu.js';
import { FlatSgdProgram } from './kernels/flat_sgd_webgpu.js';
import { GatherProgram } from './kernels/gather_webgpu.js';
import { MaxPoolBackpropProgram } from './kernels/maxpool_backprop_webgpu.js';
import { MaxPoolProgram } from './kernels/maxpool_webgpu.js';
import { SoftmaxCrossEntropyProgram } from './kernels/softmax_cross_entropy_webgpu.js';
import type { ConvGeometry } from './conv_geometry.js';
import { elements, type Plan } from './plan.js';
import type { CompiledProgram } from './program.js';

/** What a binding is bound to: a buffer of the graph, or one that each call brings (./runner.ts). */
export type Source = GPUBuffer | 'pixels' | 'labels' | 'indices' | 'predictions' | 'results' | 'allLogits';

/** The runner's buffers a graph binds, and how it makes its own (`make(floats)`). */
export interface GraphBuffers {
  make: (floats: number) => GPUBuffer;
  weights: GPUBuffer;
  grads: GPUBuffer;
  table: GPUBuffer;
  ring: GPUBuffer;
  momentum: GPUBuffer | null;
  sgd: SgdOptions;
  /** The recipe's label smoothing, which the loss program takes (0: the seed's one-hot targets). */
  labelSmoothing: number;
}

export interface GraphDispatches {
  items: { program: CompiledProgram; sources: Source[] }[];
  /** The input batch x (the host path writes it where a split does not fit a buffer). */
  x: GPUBuffer;
  /** Per convolution: positions a chunk of its filter gradient sums (the full batch's split-K plan). */
  chunks: number[];
}

/** The plan's convolutions, in plan order. */
export function convGeometries(plan: Plan): ConvGeometry[] {
  return plan.layers.flatMap((l) => (l.op.kind === 'conv' ? [{ input: l.input, output: l.output, kh: l.op.kh, kw: l.op.kw, stride: l.op.stride, pad: l.op.pad }] : []));
}

/** The dispatches of a step (`train`) or of an evaluation batch (`eval`) for `batch` images. */
export function buildGraph(plan: Plan, batch: number, mode: 'train' | 'eval', on: GraphBuffers): GraphDispatches {
const { make } = on;
const { layers } = plan;
const convs = convGeometries(plan);
  const plans = convs.map((g) => filterGradPlan(g, batch));
  // t[i]: layer i's input (t[0] the batch), t[layers.length] the logits; a flatten shares its input's buffer.
  const t: GPUBuffer[] = [make(batch * elements(plan.input))];
  const argmax: (GPUBuffer | null)[] = [];
  for (const l of layers) {
    t.push(l.op.kind === 'flatten' ? t[t.length - 1]! : make(batch * elements(l.output)));
    argmax.push(l.op.kind === 'pool' ? make(batch * elements(l.output)) : null);
  }
  const items: { program: CompiledProgram; sources: Source[] }[] = [];
  const add = (program: CompiledProgram, sources: Source[]) => items.push({ program, sources });
  add(new GatherProgram(mode), mode === 'train' ? ['pixels', on.table, 'indices', t[0]!] : ['pixels', on.table, t[0]!]);
  // Forward.
  layers.forEach((l, i) => {
    const op = l.op;
    if (op.kind === 'conv') add(new Conv2DProgram({ input: l.input, output: l.output, kh: op.kh, kw: op.kw, stride: op.stride, pad: op.pad }, op, batch), [t[i]!, on.weights, t[i + 1]!]);
    if (op.kind === 'pool') add(new MaxPoolProgram({ input: l.input, output: l.output, kh: op.kh, kw: op.kw, stride: op.stride, pad: op.pad }), [t[i]!, t[i + 1]!, argmax[i]!]);
    if (op.kind === 'dense') add(new DenseProgram({ inputs: l.input[2], units: l.output[2], kernel: op.kernel, bias: op.bias, relu: op.relu }, batch), [t[i]!, on.weights, t[i + 1]!]);
  });
  const logits = t[layers.length]!;
  if (mode === 'eval') {
    add(new SoftmaxCrossEntropyProgram(plan.classes, 'eval', on.labelSmoothing), [logits, 'labels', 'predictions', 'results', 'allLogits']);
  } else {
    // g[i]: the gradient with respect to t[i], already through that tensor's own ReLU.
    const g: (GPUBuffer | null)[] = t.map(() => null);
    g[layers.length] = make(batch * plan.classes);
    add(new SoftmaxCrossEntropyProgram(plan.classes, 'train', on.labelSmoothing), [logits, 'labels', 'indices', g[layers.length]!, on.ring]);
    // Whether t[i] is a ReLU's output (through flattens): its gradient is masked where it is not positive.
    const relu = (i: number): boolean => {
      for (let j = i - 1; j >= 0; j--) {
        const op = layers[j]!.op;
        if (op.kind === 'flatten') continue;
        return (op.kind === 'conv' || op.kind === 'dense') && op.relu;
      }
      return false;
    };
    const weightsBelow = (i: number) => layers.slice(0, i).some((l) => l.op.kind === 'conv' || l.op.kind === 'dense');
    let conv = convs.length;
    for (let i = layers.length - 1; i >= 0; i--) {
      const l = layers[i]!;
      const op = l.op;
      const dy = g[i + 1]!;
      const needInput = weightsBelow(i);
      if (op.kind === 'flatten') {
        g[i] = dy;
        continue;
      }
      if (needInput) g[i] = make(batch * elements(l.input));
      const mask = relu(i);
      if (op.kind === 'dense') {
        const d = { inputs: l.input[2], units: l.output[2], kernel: op.kernel, bias: op.bias, relu: op.relu };
        add(new DenseBackpropWeightsProgram(d), [t[i]!, dy, on.grads]);
        if (needInput) add(new DenseBackpropInputProgram(d, mask, batch), [dy, on.weights, g[i]!, ...(mask ? [t[i]!] : [])]);
      } else if (op.kind === 'conv') {
        conv--;
        const geometry = convs[conv]!;
        const plan = plans[conv]!;
        const rows = geometry.kh * geometry.kw * geometry.input[2] + (op.bias === null ? 0 : 1);
        const partial = make(plan.slices * rows * geometry.output[2]);
        add(new Conv2DFilterGradPartialProgram(geometry, conv, plan, op.bias !== null), [t[i]!, dy, partial]);
        add(new Conv2DFilterGradReduceProgram(geometry, conv, op), [partial, on.grads]);
        if (needInput) add(new Conv2DBackpropInputProgram(geometry, op.kernel, mask, batch), [dy, on.weights, g[i]!, ...(mask ? [t[i]!] : [])]);
      } else if (needInput) {
        add(new MaxPoolBackpropProgram({ input: l.input, output: l.output, kh: op.kh, kw: op.kw, stride: op.stride, pad: op.pad }, mask), [dy, argmax[i]!, g[i]!, ...(mask ? [t[i]!] : [])]);
      }
    }
    add(new FlatSgdProgram(plan.size, on.sgd), [on.weights, on.grads, ...(on.momentum ? [on.momentum] : [])]);
  }
  return { items, x: t[0]!, chunks: plans.map((p) => p.chunk) };
}
