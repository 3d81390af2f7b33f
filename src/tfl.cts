// TensorFlow.js's layers API (tf.layers, tf.sequential, tf.LayersModel, ...), handed on whole as ./tf.cts says
// why: `import tfl from './tfl.cjs'`.

import layers = require('@tensorflow/tfjs-layers');

export = layers;
