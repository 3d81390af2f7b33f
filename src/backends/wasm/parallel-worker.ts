// A data-parallel thread (see ./parallel.ts): its own wasm backend and copy of the network. A `step`
// request brings the current weights and a shard of the batch and gets the shard's mean loss, accuracy and
// gradient; `weights` then `eval` requests score shards of evaluation batches. It never updates weights on
// its own: the main thread owns the one true copy.

import { parentPort, workerData } from 'node:worker_threads';
import { INPUT_SHAPE, createModel } from '../../model.js';
import { lossAndGrads } from '../../step.js';
import * as tf from '../../tf.js';
import { start } from './index.js';
import { evalBatch, type WorkerReply, type WorkerRequest } from './parallel.js';

const port = parentPort!;
const send = (m: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

try {
  tf.env().set('PROD', true);
  const started = await start({ gpuOnly: false, auto: false });
  if (!started.ok) throw new Error(started.reason);
  const model = createModel({ seed: 0 }); // its initial weights are replaced by every request that brings them
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const shapes = (workerData as { shapes: number[][] }).shapes;
  if (shapes.length !== vars.length || shapes.some((s, i) => s.join() !== vars[i]!.shape.join())) {
    throw new Error(`the network's weights have shapes ${JSON.stringify(vars.map((v) => v.shape))}, not ${JSON.stringify(shapes)}`);
  }
  const total = vars.reduce((s, v) => s + v.size, 0);

  const setWeights = (weights: Float32Array) => {
    let off = 0;
    for (const v of vars) {
      tf.tidy(() => v.assign(tf.tensor(weights.subarray(off, off + v.size), v.shape)));
      off += v.size;
    }
  };
  const tensors = (req: { x: Float32Array; y: Int32Array }) => {
    const n = req.y.length;
    return { x: tf.tensor4d(req.x, [n, ...INPUT_SHAPE] as [number, number, number, number]), y: tf.tensor1d(req.y, 'int32') };
  };

  port.on('message', (req: WorkerRequest) => {
    try {
      if (req.type === 'weights') {
        setWeights(req.weights);
        return;
      }
      if (req.type === 'eval') {
        const { x, y } = tensors(req);
        const r = evalBatch(model, x, y);
        tf.dispose([x, y]);
        send({ type: 'evaluated', ...r }, [r.predictions.buffer as ArrayBuffer]);
        return;
      }
      setWeights(req.weights);
      const { x, y } = tensors(req);
      const { loss, acc, grads } = lossAndGrads(model, x, y);
      const flat = new Float32Array(total);
      let off = 0;
      for (const v of vars) {
        flat.set(grads[v.name]!.dataSync() as Float32Array, off);
        off += v.size;
      }
      const reply: WorkerReply = { type: 'result', grads: flat, loss: loss.dataSync()[0]!, acc: acc.dataSync()[0]! };
      tf.dispose([x, y, loss, acc, ...Object.values(grads)]);
      send(reply, [flat.buffer]);
    } catch (e) {
      send({ type: 'error', message: (e as Error).message });
    }
  });
  send({ type: 'ready' });
} catch (e) {
  send({ type: 'error', message: (e as Error).message });
}
