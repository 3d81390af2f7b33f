// The network of the reference PyTorch lesson (README "The network"; its PyTorch twin: scripts/peers/alexnet_torch.py),
// one layer a line.
// TensorFlow.js is NHWC, so the input is [32, 32, 3] where PyTorch's is [3, 32, 32]; shapes below are per
// image. Nothing is built at import time.

import tf from './tf.cjs';
import tfl from './tfl.cjs';
import { CHANNELS, IMAGE_SIZE, NUM_CLASSES } from './data/cifar.js';
import type { Init } from './recipe.js';


export interface ModelOptions {
  /**
   * 'pytorch': weights and biases uniform in +-1/sqrt(fan_in), PyTorch's default for Conv2d and Linear, so
   * the seed's recipe (SGD, lr 0.1) behaves as published. 'glorot': tfjs's default (Glorot uniform, zero bias).
   */
  init?: Init;
  seed?: number; // makes the initial weights reproducible; each layer derives its own from it
  /** The head's width: the data's classes (default CIFAR-10's 10). */
  classes?: number;
}

export const INPUT_SHAPE = [IMAGE_SIZE, IMAGE_SIZE, CHANNELS]; // [32, 32, 3]
export const PARAMETER_COUNT = 576_778; // the seed's network

export function createModel(opts: ModelOptions = {}): tfl.Sequential {
  const init = opts.init ?? 'pytorch';
  let layerIndex = 0;
  // Initializers for one layer with fan-in `fanIn`.
  const initFor = (fanIn: number) => {
    const i = layerIndex++;
    if (init === 'glorot') {
      return { kernelInitializer: tfl.initializers.glorotUniform({ seed: seedOf(opts.seed, i, 0) }), biasInitializer: tfl.initializers.zeros() };
    }
    const bound = 1 / Math.sqrt(fanIn);
    return {
      kernelInitializer: tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed: seedOf(opts.seed, i, 0) }),
      biasInitializer: tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed: seedOf(opts.seed, i, 1) }),
    };
  };
  const model = tfl.sequential({ name: 'alexnet' });
  model.add(tfl.layers.conv2d({ name: 'conv1', inputShape: INPUT_SHAPE, filters: 64, kernelSize: 5, activation: 'relu', ...initFor(3 * 5 * 5) })); // [28, 28, 64]
  model.add(tfl.layers.maxPooling2d({ name: 'max_pool1', poolSize: 3, strides: 2 })); // [13, 13, 64]
  model.add(tfl.layers.conv2d({ name: 'conv2', filters: 64, kernelSize: 5, activation: 'relu', ...initFor(64 * 5 * 5) })); // [9, 9, 64]
  model.add(tfl.layers.maxPooling2d({ name: 'max_pool2', poolSize: 3, strides: 2 })); // [4, 4, 64]
  model.add(tfl.layers.flatten({ name: 'flatten' })); // [1024]
  model.add(tfl.layers.dense({ name: 'fc1', units: 384, activation: 'relu', ...initFor(1024) })); // [384]
  model.add(tfl.layers.dense({ name: 'fc2', units: 192, activation: 'relu', ...initFor(384) })); // [192]
  model.add(tfl.layers.dense({ name: 'fc3', units: opts.classes ?? NUM_CLASSES, ...initFor(192) })); // [10] logits (CIFAR-10)
  return model;
}

/** A seed per (layer, kernel|bias); undefined stays undefined (random). */
function seedOf(seed: number | undefined, layer: number, which: number): number | undefined {
  return seed === undefined ? undefined : (seed * 1000 + layer * 2 + which) >>> 0;
}

export interface LayerSummary {
  name: string;
  type: string; // Conv2D, MaxPooling2D, ...
  outputShape: number[]; // without the batch dimension
  params: number;
}

export interface ModelSummary {
  layers: LayerSummary[];
  totalParams: number;
  inputShape: number[]; // [1, 32, 32, 3]
  outputShape: number[]; // of a zero input, [1, 10]
}

export function summarize(model: tfl.LayersModel): ModelSummary {
  const layers = model.layers.map((l) => ({
    name: l.name,
    type: l.getClassName(),
    outputShape: (l.outputShape as (number | null)[]).slice(1) as number[],
    params: l.countParams(),
  }));
  const outputShape = tf.tidy(() => (model.predict(tf.zeros([1, ...INPUT_SHAPE])) as tf.Tensor).shape);
  return { layers, totalParams: model.countParams(), inputShape: [1, ...INPUT_SHAPE], outputShape };
}
