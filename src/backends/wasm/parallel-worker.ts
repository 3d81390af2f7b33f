// A data-parallel thread (see ./parallel.ts): its own wasm backend and copy of the network. A `step`
// request brings a shard of the batch; the thread reads the current weights from shared memory, writes the
// shard's mean gradient into its own shared buffer and answers with the mean loss and accuracy; `weights` then
// `eval` requests score shards of evaluation batches. It never updates weights on its own: the main thread owns
// the one true copy.

import { parentPort, workerData } from 'node:worker_threads';
import { batchTensors, lossAndGrads, objectiveOf } from '../../step.js';
import tf from '../../tf.cjs';
import tfl from '../../tfl.cjs';
import { start } from './index.js';
import { evalBatch, onHeap, type WorkerData, type WorkerReply, type WorkerRequest } from './parallel.js';

const port = parentPort!;
const send = (m: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

try {
  tf.env().set('PROD', true);
  const started = await start({ gpuOnly: false, auto: false });
  if (!started.ok) throw new Error(started.reason);
  // The main thread's network, rebuilt from its topology; its weights arrive with every request that needs them.
  const data = workerData as WorkerData;
  const { topology, shapes } = data;
  const weights = new Float32Array(data.weights);
  const out = new Float32Array(data.grads);
  const model = await tfl.models.modelFromJSON(JSON.parse(topology));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  if (shapes.length !== vars.length || shapes.some((s, i) => s.join() !== vars[i]!.shape.join())) {
    throw new Error(`the network's weights have shapes ${JSON.stringify(vars.map((v) => v.shape))}, not ${JSON.stringify(shapes)}`);
  }
  const setWeights = () => {
    let off = 0;
    for (const v of vars) {
      tf.tidy(() => v.assign(tf.tensor(weights.subarray(off, off + v.size), v.shape)));
      off += v.size;
    }
  };
  const tensors = (req: { x: Float32Array; y: Int32Array }) => batchTensors(req.x, req.y, req.y.length);
  const objective = objectiveOf(data.labelSmoothing);

  port.on('message', (req: WorkerRequest) => {
    try {
      if (req.type === 'weights') {
        setWeights();
        return;
      }
      if (req.type === 'eval') {
        const { x, y } = tensors(req);
        const r = evalBatch(model, x, y, data.labelSmoothing);
        tf.dispose([x, y]);
        send({ type: 'evaluated', ...r }, [r.predictions.buffer as ArrayBuffer, r.ranks.buffer as ArrayBuffer, r.logits.buffer as ArrayBuffer]);
        return;
      }
      setWeights();
      const { x, y } = tensors(req);
      const { loss, acc, grads } = lossAndGrads(model, x, y, objective);
      let off = 0;
      for (const v of vars) {
        out.set(onHeap(grads[v.name]!), off);
        off += v.size;
      }
      const reply: WorkerReply = { type: 'result', loss: loss.dataSync()[0]!, acc: acc.dataSync()[0]! };
      tf.dispose([x, y, loss, acc, ...Object.values(grads)]);
      send(reply);
    } catch (e) {
      send({ type: 'error', message: (e as Error).message });
    }
  });
  send({ type: 'ready' });
} catch (e) {
  send({ type: 'error', message: (e as Error).message });
}
