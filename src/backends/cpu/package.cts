// tfjs-backend-cpu, loaded with require() (src/tf.cts says why); loading it registers the 'cpu' backend.
export { version_cpu } from '@tensorflow/tfjs-backend-cpu';
