// tfjs-backend-webgpu, loaded with require() (src/tf.cts says why); loading it registers the 'webgpu' backend,
// so it is imported only once the WebGPU globals are in place (./index.ts).
import '@tensorflow/tfjs-backend-webgpu';
