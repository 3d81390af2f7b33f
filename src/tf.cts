// TensorFlow.js without a flavour: the core (ops, optimizers, io) here and the layers API in ./tfl.cts, which is
// all the network, the training loop and the commands need. Backends register themselves in src/backends/, the
// only place that imports one. (The `@tensorflow/tfjs` umbrella would also pull the webgl backend, the
// converter and tfjs-data, ~150 MB of node_modules that a Node CLI never uses: issue #11.)
//
// CommonJS modules (.cts) that hand on tfjs's CommonJS bundles whole, imported as `import tf from './tf.cjs'`.
// Node imports a CommonJS package into an ES module by reading it twice more first, to tell its format and to
// list its exports (also through an `export *` of it), and these bundles are 2.7 MB: `alexnet summary` took
// 0.86 s of CPU (user + sys, median of 10) and takes 0.51 s this way, and each command that trains, evaluates
// or predicts, and each thread of `--threads`, starts that much sooner (Intel Xeon, 2 cores, 2026-12-07).
// The backends' packages load the same way (src/backends/*/package.cts).

import core = require('@tensorflow/tfjs-core');

export = core;
