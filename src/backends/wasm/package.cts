// tfjs-backend-wasm, loaded with require() (src/tf.cts says why); loading it registers the 'wasm' backend.
import '@tensorflow/tfjs-backend-wasm';
