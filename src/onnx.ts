// The trained network as an ONNX model (issue #27), for ONNX Runtime and the tools that read ONNX.
//
// The layers model is read into a plain list of layers (readLayers), which onnxModel turns into one graph. The
// protobuf is ONNX's own schema, encoded by onnx-proto (protobufjs): nothing here writes protobuf bytes by hand.
// The conventions where TensorFlow.js and ONNX differ:
// - images are NCHW in ONNX (PyTorch's layout) where TensorFlow.js is NHWC: a kernel [kh, kw, in, out] becomes
//   [out, in, kh, kw];
// - TensorFlow.js flattens [h, w, c] in that order, so Flatten is preceded by a Transpose back to NHWC, and the
//   dense weights keep their order;
// - `same` padding is TensorFlow's (the extra row and column at the end): ONNX's SAME_UPPER.
// By default the normalisation stays outside the graph: its input is what the network sees, (pixel/255 - 0.5)/0.5
// per RGB channel (the seed's), as PyTorch users feed a torchvision model; the model's metadata says so. With
// `--input raw` the graph takes the pixels as a decoder gives them, uint8 [N, 32, 32, 3] (NHWC, RGB), and
// normalises inside (a Gather from the 256 values training uses, so to the bit), as a Keras model carries its
// Rescaling layer: every consumer had to repeat the formula and the transpose by hand (issue #35).

import onnxProto from 'onnx-proto';
import { NORMALISE, NORMALISE_WORDS } from './batches.js';
import { AlexnetError } from './errors.js';
import tfl from './tfl.cjs';

const { onnx } = onnxProto;

/** opset 13 (ONNX 1.8, 2020): every op used here has had its present form since; IR version 7 goes with it. */
export const OPSET = 13;
const IR_VERSION = 7;
const OUTPUT_NAME = 'logits';
/** What an export takes: what the network sees (`normalized`), or a decoder's pixels (`raw`). */
export const INPUT_KINDS = ['normalized', 'raw'] as const;
export type InputKind = (typeof INPUT_KINDS)[number];
/** Each input's name in the graph and what it holds, in words: the model's metadata (`input`) and the README say it. */
export const ONNX_INPUTS: Record<InputKind, { name: string; words: string }> = {
  normalized: { name: 'images', words: `float32 [N, 3, 32, 32] (NCHW, RGB), each value ${NORMALISE_WORDS}` },
  raw: { name: 'pixels', words: 'uint8 [N, 32, 32, 3] (NHWC, RGB), pixels 0-255 as a decoder gives them; normalised inside' },
};

type Activation = 'linear' | 'relu' | 'tanh' | 'sigmoid';
/** The ONNX op of each activation TensorFlow.js names; the linear one has none. */
const ACTIVATION_OPS: Record<Activation, string | null> = { linear: null, relu: 'Relu', tanh: 'Tanh', sigmoid: 'Sigmoid' };

export type NetLayer =
  | { kind: 'conv'; name: string; kernel: Float32Array; shape: [number, number, number, number]; bias: Float32Array | null; strides: [number, number]; dilations: [number, number]; padding: 'valid' | 'same'; activation: Activation }
  | { kind: 'maxpool'; name: string; pool: [number, number]; strides: [number, number]; padding: 'valid' | 'same' }
  | { kind: 'flatten'; name: string }
  | { kind: 'dense'; name: string; kernel: Float32Array; shape: [number, number]; bias: Float32Array | null; activation: Activation };

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);

/**
 * `model`'s layers as NetLayers, their weights copied out (read asynchronously: WebGPU, which `export` may run on,
 * cannot read a tensor synchronously in Node); a layer with no ONNX form here is refused by name.
 */
export async function readLayers(model: tfl.LayersModel, dir: string): Promise<NetLayer[]> {
  const refuse = (layer: tfl.layers.Layer, why: string) =>
    new AlexnetError('CHECKPOINT', `cannot export the model in ${dir}: layer ${layer.name} (${layer.getClassName()}) ${why}`, 'export a model trained by `alexnet train` (conv, max-pool, flatten and dense layers), or convert it with tf2onnx');
  const values = await Promise.all(model.layers.map((layer) => Promise.all(layer.getWeights().map(async (w) => ({ shape: w.shape, data: (await w.data()) as Float32Array })))));
  return model.layers.map((layer, i): NetLayer => {
    const config = layer.getConfig() as Record<string, unknown>;
    const type = layer.getClassName();
    if ('dataFormat' in config && config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') throw refuse(layer, 'is channels-first');
    const activation = (): Activation => {
      const a = String(config.activation ?? 'linear');
      if (!(a in ACTIVATION_OPS)) throw refuse(layer, `has the activation ${a}`);
      return a as Activation;
    };
    const weights = () => {
      const [kernel, bias] = values[i]!;
      return { kernel: kernel!.data, kernelShape: kernel!.shape, bias: bias ? bias.data : null };
    };
    switch (type) {
      case 'Conv2D': {
        const w = weights();
        return { kind: 'conv', name: layer.name, kernel: w.kernel, shape: w.kernelShape as [number, number, number, number], bias: w.bias, strides: pair(config.strides), dilations: pair(config.dilationRate ?? 1), padding: config.padding === 'same' ? 'same' : 'valid', activation: activation() };
      }
      case 'MaxPooling2D':
        return { kind: 'maxpool', name: layer.name, pool: pair(config.poolSize), strides: pair(config.strides ?? config.poolSize), padding: config.padding === 'same' ? 'same' : 'valid' };
      case 'Flatten':
        return { kind: 'flatten', name: layer.name };
      case 'Dense': {
        const w = weights();
        return { kind: 'dense', name: layer.name, kernel: w.kernel, shape: w.kernelShape as [number, number], bias: w.bias, activation: activation() };
      }
      default:
        throw refuse(layer, 'has no ONNX form in this tool');
    }
  });
}

/** A conv kernel [kh, kw, in, out] (TensorFlow.js) as [out, in, kh, kw] (ONNX). */
export function kernelToOihw(k: Float32Array, [kh, kw, cin, cout]: [number, number, number, number]): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * cout + o]!;
      }
    }
  }
  return out;
}

export interface OnnxMeta {
  classNames: string[];
  /** What the graph takes (ONNX_INPUTS). */
  input: InputKind;
  /** [h, w, c] of one image, as the layers model takes it. */
  inputShape: number[];
  producerVersion: string;
}

/** The layers as an ONNX model's bytes: input ONNX_INPUTS[meta.input], output OUTPUT_NAME (logits), the class names in its metadata. */
export function onnxModel(layers: NetLayer[], meta: OnnxMeta): Uint8Array {
  const input = ONNX_INPUTS[meta.input];
  const nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  const initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  const tensor = (name: string, dims: number[], values: Float32Array) => {
    initializers.push(onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: littleEndian(values) }));
    return name;
  };
  const ints = (name: string, values: number[]) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });
  const int = (name: string, i: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
  const text = (name: string, s: string) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(s) });
  let current = input.name;
  const node = (opType: string, name: string, inputs: string[], attribute: InstanceType<typeof onnx.AttributeProto>[] = []) => {
    nodes.push(onnx.NodeProto.create({ opType, name, input: inputs, output: [name], attribute }));
    current = name;
  };
  const activate = (layer: string, a: Activation) => {
    const op = ACTIVATION_OPS[a];
    if (op) node(op, `${layer}/${a}`, [current]);
  };
  const padding = (p: 'valid' | 'same') => (p === 'same' ? [text('auto_pad', 'SAME_UPPER')] : [ints('pads', [0, 0, 0, 0])]);
  if (meta.input === 'raw') {
    // Each pixel indexes the 256 values training normalises to (NORMALISE), then NHWC becomes NCHW.
    node('Cast', 'pixels/index', [current], [int('to', onnx.TensorProto.DataType.INT32)]);
    node('Gather', 'pixels/normalised', [tensor('pixels/table', [256], NORMALISE), current], [int('axis', 0)]);
    node('Transpose', 'pixels/to_nchw', [current], [ints('perm', [0, 3, 1, 2])]);
  }
  let rank = 4; // NCHW until a flatten
  for (const l of layers) {
    switch (l.kind) {
      case 'conv': {
        const [kh, kw, cin, cout] = l.shape;
        const inputs = [current, tensor(`${l.name}/kernel`, [cout, cin, kh, kw], kernelToOihw(l.kernel, l.shape))];
        if (l.bias) inputs.push(tensor(`${l.name}/bias`, [cout], l.bias));
        node('Conv', l.name, inputs, [ints('kernel_shape', [kh, kw]), ints('strides', l.strides), ints('dilations', l.dilations), ...padding(l.padding)]);
        activate(l.name, l.activation);
        break;
      }
      case 'maxpool':
        node('MaxPool', l.name, [current], [ints('kernel_shape', l.pool), ints('strides', l.strides), ...padding(l.padding)]);
        break;
      case 'flatten':
        // TensorFlow.js flattens [h, w, c]: back to NHWC first, so the dense weights read the values they were trained on.
        if (rank === 4) node('Transpose', `${l.name}/to_nhwc`, [current], [ints('perm', [0, 2, 3, 1])]);
        node('Flatten', l.name, [current], [int('axis', 1)]);
        rank = 2;
        break;
      case 'dense': {
        const [fin, fout] = l.shape;
        const inputs = [current, tensor(`${l.name}/kernel`, [fin, fout], l.kernel)];
        if (l.bias) inputs.push(tensor(`${l.name}/bias`, [fout], l.bias));
        node('Gemm', l.name, inputs);
        activate(l.name, l.activation);
        break;
      }
    }
  }
  // The last node's output is the graph's: renamed, so that every model says OUTPUT_NAME.
  nodes.at(-1)!.output = [OUTPUT_NAME];
  const [h, w, c] = meta.inputShape;
  const classes = meta.classNames.length;
  const valueInfo = (name: string, dims: (number | string)[]) => onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: name === ONNX_INPUTS.raw.name ? onnx.TensorProto.DataType.UINT8 : onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'alexnet',
    producerVersion: meta.producerVersion,
    docString: `AlexNet-style CIFAR network trained by alexnet. Input: ${input.words}. Output: ${classes} logits (softmax for probabilities); classes in metadata "classNames".`,
    graph: {
      name: 'alexnet',
      node: nodes,
      initializer: initializers,
      input: [valueInfo(input.name, meta.input === 'raw' ? ['N', h!, w!, c!] : ['N', c!, h!, w!])],
      output: [valueInfo(OUTPUT_NAME, ['N', classes])],
    },
    metadataProps: [
      { key: 'classNames', value: JSON.stringify(meta.classNames) },
      { key: 'input', value: input.words },
    ],
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The float32 values as little-endian bytes, ONNX's raw_data, whatever the host's byte order. */
function littleEndian(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}

/** An ONNX model's bytes decoded (the tests read an export with it). */
export const decodeOnnx = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes);
