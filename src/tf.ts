// TensorFlow.js without a flavour: the core (ops, optimizers, io) and the layers API, which is all the
// network, the training loop and the commands need. Backends register themselves in src/backends/, the only
// place that imports one. (The `@tensorflow/tfjs` umbrella would also pull the webgl backend, the converter
// and tfjs-data, ~150 MB of node_modules that a Node CLI never uses: issue #11.)

export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
