// The compiled step (issue #18): the network's SGD step built once from its plan (./plan.ts) and replayed, so that
// the GPU and not JavaScript sets the pace. tfjs-backend-webgpu spends ~8 ms of host time on one step of this
// network (63 dispatches, each ~100 us of tfjs bookkeeping; Dawn's null adapter, batch 64, issue #18), while an
// H200 does the step's work in ~1.8 ms. Here every buffer, pipeline and bind group is made once per batch size,
// and a step is one writeBuffer (the header and the batch's indices: the splits live on the GPU as bytes), one
// command encoder, one compute pass and one submit. No tensor is made per step.
//
// The pass, for this network (25 dispatches): the batch gathered and normalised; each layer forward (bias and ReLU
// in the epilogue, pooling recording its argmax); the loss, accuracy and logits gradient in one program, into a
// ring of per-step results; each layer backward (dense and convolution weight gradients into one flat gradient
// buffer, the convolutions' as split-K plus a reduction that yields the bias gradient too; input gradients only
// where a layer below has weights, each applying the ReLU gradient of the layer below it; max-pool backward as a
// gather); then one SGD update of the one flat weight buffer. Reductions run in a fixed order: the same inputs give
// the same outputs, bit for bit, run after run on one adapter.
//
// The model's variables are the checkpoint's truth: the flat weights are loaded from them when the runner starts
// and written back by sync() before every checkpoint and at the end.

import { BatchBuffers, NORMALISE, inOrder, type Batch } from '../../../batches.js';
import { IMAGE_BYTES, type Split } from '../../../data/cifar.js';
import tf from '../../../tf.cjs';
import { concatFloats, sgdOptions, type SgdOptions } from '../../../step.js';
import type { EvalResult, Runner, RunnerOptions, RunnerProbe } from '../../types.js';
import { throwIfGpuError } from '../errors.js';
import { gatherWords, residentWords } from '../wgsl/gather.js';
import { buildGraph, convGeometries, type Source } from './graph.js';
import type { Plan } from './plan.js';
import { HEADER_BYTES, INDICES_OFFSET, MAX_CONVS, shaderCode, writeHeader, type CompiledProgram, type StepHeader } from './program.js';

/** Steps whose loss and accuracy the device ring holds before they must be read (the loop reads every 25). */
const RING = 1024;

/**
 * Steps the host may run ahead of the GPU: two keep the next one queued while the GPU works (no idle gap), and no
 * more, so that the loop's batch count, the bar and a Ctrl-C's checkpoint follow the GPU (a 4-step epoch on
 * lavapipe was all submitted before a Ctrl-C typed at its first batch could land).
 */
const IN_FLIGHT = 2;

/** The usage of the plan's buffers; read when used: WebGPU's globals exist only once the backend has started. */
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A split on the GPU: its pixels as bytes four to a word (null where they do not fit a buffer) and its labels. */
interface Resident {
  pixels: GPUBuffer | null;
  labels: GPUBuffer;
}

/** What a call brings: the split on the GPU and, evaluating, where its results go. */
interface CallBuffers {
  resident: Resident;
  out?: { predictions: GPUBuffer; results: GPUBuffer; allLogits: GPUBuffer };
}

/** One dispatch of a graph: its program and pipeline, its bindings' sources, its bind groups by what they depend on. */
interface Item {
  program: CompiledProgram;
  pipeline: GPUComputePipeline;
  sources: Source[];
  bindGroups: WeakMap<object, GPUBindGroup>;
}

/** The dispatches of a training step or of an evaluation batch, for batches of up to `batch` images. */
interface Graph {
  batch: number;
  items: Item[];
  /** The input batch x, for the host path (a split that does not fit a buffer) and the probe's batch. */
  x: GPUBuffer;
  /** Per convolution: positions a chunk of its filter gradient sums (the full batch's split-K plan). */
  chunks: number[];
  buffers: GPUBuffer[]; // to destroy
}

export class CompiledRunner implements Runner {
  readonly settings = { webgpuRunner: 'compiled' };
  readonly label = 'compiled';
  readonly note = null;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly resident = new Map<Split, Resident>();
  private readonly train = new Map<number, Graph>();
  private readonly evals = new Map<number, Graph>();
  private readonly host = new BatchBuffers();
  private readonly header: ArrayBuffer;
  private written = 0; // steps submitted
  private taken = 0; // steps whose numbers were taken from the ring
  private held: Float32Array[] = []; // numbers read from the ring to make room, not yet taken
  private inFlight: Promise<void>[] = []; // each submitted step's completion, oldest first
  private destroyed: GPUBuffer[] = [];

  private constructor(
    private readonly device: GPUDevice,
    private readonly plan: Plan,
    private readonly maxBufferBytes: number,
    private readonly weights: GPUBuffer,
    private readonly grads: GPUBuffer,
    private readonly stepBuffer: GPUBuffer,
    private readonly table: GPUBuffer,
    private readonly ring: GPUBuffer,
    private readonly batchSizes: { train: number; eval: number },
    private readonly sgd: SgdOptions,
    /** The flat momentum buffer (plan offsets), where the recipe has momentum. */
    private readonly momentum: GPUBuffer | null,
    /** Each weight's offset in the checkpoint's optimiser state (model.trainableWeights order), in plan order. */
    private readonly stateOffsets: number[],
    private readonly labelSmoothing: number,
  ) {
    this.header = new ArrayBuffer(INDICES_OFFSET + 4 * Math.max(batchSizes.train, batchSizes.eval));
  }

  /**
   * The runner for the plan's model on `device`, with its weights loaded from the model's variables and, with
   * momentum, its momentum buffer from `opts.optimizerState` (zeros for a new run).
   */
  static async create(device: GPUDevice, plan: Plan, opts: RunnerOptions, maxBufferBytes: number): Promise<CompiledRunner> {
    if (plan.layers.filter((l) => l.op.kind === 'conv').length > MAX_CONVS) throw new Error(`the compiled step carries up to ${MAX_CONVS} convolutions`);
    const buffer = (bytes: number, usage = storage()) => device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    const batchSizes = { train: opts.recipe.batchSize, eval: opts.recipe.evalBatchSize };
    const sgd = sgdOptions(opts.recipe);
    // The checkpoint's optimiser state lists the weights end to end in model.trainableWeights order (the plan's
    // order); the flat buffer places them at the plan's offsets.
    const stateOffsets = plan.weights.map((_, j) => plan.weights.slice(0, j).reduce((n, w) => n + w.size, 0));
    const runner = new CompiledRunner(
      device,
      plan,
      maxBufferBytes,
      buffer(4 * plan.size),
      buffer(4 * plan.size),
      buffer(INDICES_OFFSET + 4 * Math.max(batchSizes.train, batchSizes.eval), GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST),
      buffer(4 * 256),
      buffer(4 * 2 * RING),
      batchSizes,
      sgd,
      sgd.momentum > 0 ? buffer(4 * plan.size) : null,
      stateOffsets,
      opts.recipe.labelSmoothing,
    );
    runner.destroyed.push(runner.weights, runner.grads, runner.stepBuffer, runner.table, runner.ring, ...(runner.momentum ? [runner.momentum] : []));
    device.queue.writeBuffer(runner.table, 0, NORMALISE);
    for (const w of plan.weights) device.queue.writeBuffer(runner.weights, 4 * w.offset, (await w.variable.read().data()) as Float32Array<ArrayBuffer>);
    if (runner.momentum) {
      // A new buffer holds zeros (WebGPU zero-fills): a new run's momentum. A resumed run's comes from its checkpoint.
      const state = opts.optimizerState;
      if (state) plan.weights.forEach((w, j) => device.queue.writeBuffer(runner.momentum!, 4 * w.offset, state.slice(stateOffsets[j]!, stateOffsets[j]! + w.size)));
    }
    return runner;
  }

  /** The last step's host time: from the call to its submit, without the waits for the GPU (for `bench`). */
  private lastStepHostMs = 0;

  /** What bench and the tests look into: dispatches a step, its host time, the batch, the last step's gradients. */
  get probe(): RunnerProbe {
    const graph = () => this.trainGraph(this.batchSizes.train);
    return {
      batch: (split, batch) => this.readBatch(split, batch),
      // Read when asked: counting builds the training graph where no step has yet.
      get dispatchesPerStep() {
        return graph().items.length;
      },
      lastStepHostMs: this.lastStepHostMs,
      gradients: () => this.gradients(),
    };
  }

  async step(split: Split, batch: Batch, lr: number): Promise<void> {
    throwIfGpuError();
    if (this.written - this.taken >= RING) this.held.push(await this.takeFromRing());
    const t0 = performance.now();
    const n = batch.indices.length;
    const graph = this.trainGraph(n);
    const resident = this.residentOf(split);
    const header: StepHeader = { n, lr, slot: this.written % RING, start: 0, slices: this.slices(graph, n) };
    if (!resident.pixels) this.device.queue.writeBuffer(graph.x, 0, this.host.fill(split, batch).x, 0, n * IMAGE_BYTES);
    this.writeStep(header, gatherWords(batch));
    this.submit(graph, header, { resident });
    this.lastStepHostMs = performance.now() - t0;
    this.written++;
    this.inFlight.push(this.device.queue.onSubmittedWorkDone());
    if (this.inFlight.length > IN_FLIGHT) await this.inFlight.shift();
  }

  numbers(): Promise<Float32Array> {
    const held = this.held;
    this.held = [];
    const fromRing = this.takeFromRing();
    return fromRing.then((v) => (held.length === 0 ? v : concatFloats([...held, v])));
  }

  /** Reads the ring's results of the steps not taken yet (the copy is queued now, after every submitted step). */
  private takeFromRing(): Promise<Float32Array> {
    const from = this.taken;
    const count = this.written - from;
    this.taken = this.written;
    if (count === 0) return Promise.resolve(new Float32Array(0));
    const staging = this.device.createBuffer({ size: 8 * count, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const enc = this.device.createCommandEncoder();
    const first = from % RING;
    const head = Math.min(count, RING - first);
    enc.copyBufferToBuffer(this.ring, 8 * first, staging, 0, 8 * head);
    if (head < count) enc.copyBufferToBuffer(this.ring, 0, staging, 8 * head, 8 * (count - head));
    this.device.queue.submit([enc.finish()]);
    return read(staging, 8 * count).then((bytes) => {
      throwIfGpuError();
      return new Float32Array(bytes);
    });
  }

  async evaluate(split: Split, batchSize: number, onBatch?: (done: number, batches: number) => void): Promise<EvalResult> {
    throwIfGpuError();
    const graph = this.evalGraph(batchSize);
    const resident = this.residentOf(split);
    const batches = Math.ceil(split.count / batchSize);
    const results = this.device.createBuffer({ size: Math.max(16, 8 * batches), usage: storage() });
    const predictions = this.device.createBuffer({ size: Math.max(16, 4 * split.count), usage: storage() });
    const logitBytes = Math.max(16, 4 * split.count * this.plan.classes);
    const allLogits = this.device.createBuffer({ size: logitBytes, usage: storage() });
    const call: CallBuffers = { resident, out: { predictions, results, allLogits } };
    try {
      for (let b = 0; b < batches; b++) {
        const start = b * batchSize;
        const n = Math.min(batchSize, split.count - start);
        const header: StepHeader = { n, lr: 0, slot: b, start, slices: [] };
        if (!resident.pixels) this.device.queue.writeBuffer(graph.x, 0, this.host.fill(split, inOrder(start, n)).x, 0, n * IMAGE_BYTES);
        this.writeStep(header, null);
        this.submit(graph, header, call);
        onBatch?.(b + 1, batches);
      }
      const [resultBytes, predictionBytes] = [Math.max(16, 8 * batches), Math.max(16, 4 * split.count)];
      const staging = this.device.createBuffer({ size: resultBytes + predictionBytes + logitBytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(results, 0, staging, 0, resultBytes);
      enc.copyBufferToBuffer(predictions, 0, staging, resultBytes, predictionBytes);
      enc.copyBufferToBuffer(allLogits, 0, staging, resultBytes + predictionBytes, logitBytes);
      this.device.queue.submit([enc.finish()]);
      const bytes = await read(staging, staging.size);
      throwIfGpuError();
      const r = new Float32Array(bytes, 0, 2 * batches);
      // Summed in float32 in batch order, as the op-by-op runner's device sums are, then averaged over batches.
      const sums = new Float32Array(2);
      for (let b = 0; b < batches; b++) {
        sums[0] += r[2 * b]!;
        sums[1] += r[2 * b + 1]!;
      }
      // Each word: the predicted class, and in its high 16 bits the label's rank (classes are at most 1,000).
      const words = new Uint32Array(bytes, Math.max(16, 8 * batches), split.count);
      const logits = new Float32Array(bytes.slice(resultBytes + predictionBytes, resultBytes + predictionBytes + 4 * split.count * this.plan.classes));
      return { loss: sums[0]! / batches, acc: sums[1]! / batches, predictions: Uint16Array.from(words, (w) => w & 0xffff), ranks: Uint16Array.from(words, (w) => w >>> 16), logits };
    } finally {
      results.destroy();
      predictions.destroy();
      allLogits.destroy();
    }
  }

  /** Writes the flat weights back into the model's variables (a checkpoint reads them there). */
  async sync(): Promise<void> {
    const flat = await this.readFlat(this.weights);
    for (const w of this.plan.weights) {
      const t = tf.tensor(flat.subarray(w.offset, w.offset + w.size), w.variable.shape as number[]);
      w.variable.write(t);
      t.dispose();
    }
  }

  /** The momentum buffer in model.trainableWeights order (the checkpoint's), or null without momentum. */
  async optimizerState(): Promise<Float32Array | null> {
    if (!this.momentum) return null;
    const flat = await this.readFlat(this.momentum);
    const state = new Float32Array(this.plan.size);
    this.plan.weights.forEach((w, j) => state.set(flat.subarray(w.offset, w.offset + w.size), this.stateOffsets[j]!));
    return state;
  }

  /** The last step's gradients, by trainable weight (the tests hold them to the cpu backend's). */
  private async gradients(): Promise<Float32Array[]> {
    const flat = await this.readFlat(this.grads);
    return this.plan.weights.map((w) => flat.slice(w.offset, w.offset + w.size));
  }

  /** A buffer of the plan's size (weights, gradients, momentum), read after the work queued before. */
  private async readFlat(buffer: GPUBuffer): Promise<Float32Array> {
    const staging = this.device.createBuffer({ size: 4 * this.plan.size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, 4 * this.plan.size);
    this.device.queue.submit([enc.finish()]);
    const flat = new Float32Array(await read(staging, 4 * this.plan.size));
    throwIfGpuError();
    return flat;
  }

  private async readBatch(split: Split, batch: Batch): Promise<{ x: Float32Array; y: Int32Array }> {
    const n = batch.indices.length;
    const graph = this.trainGraph(n);
    const resident = this.residentOf(split);
    if (!resident.pixels) this.device.queue.writeBuffer(graph.x, 0, this.host.fill(split, batch).x, 0, n * IMAGE_BYTES);
    const header: StepHeader = { n, lr: 0, slot: 0, start: 0, slices: this.slices(graph, n) };
    this.writeStep(header, gatherWords(batch));
    if (resident.pixels) this.submit(graph, header, { resident }, 1); // the gather only
    const staging = this.device.createBuffer({ size: 4 * n * IMAGE_BYTES + 4 * split.count + 16, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(graph.x, 0, staging, 0, 4 * n * IMAGE_BYTES);
    enc.copyBufferToBuffer(resident.labels, 0, staging, 4 * n * IMAGE_BYTES, Math.ceil((4 * split.count) / 4) * 4);
    this.device.queue.submit([enc.finish()]);
    const bytes = await read(staging, staging.size);
    const labels = new Uint32Array(bytes, 4 * n * IMAGE_BYTES, split.count);
    return { x: new Float32Array(bytes, 0, n * IMAGE_BYTES).slice(), y: Int32Array.from(batch.indices, (i) => labels[i]!) };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.inFlight);
    this.inFlight = [];
    for (const r of this.resident.values()) {
      r.pixels?.destroy();
      r.labels.destroy();
    }
    this.resident.clear();
    for (const g of [...this.train.values(), ...this.evals.values()]) g.buffers.forEach((b) => b.destroy());
    this.train.clear();
    this.evals.clear();
    this.destroyed.forEach((b) => b.destroy());
    this.destroyed = [];
  }

  /** Writes the header (and the batch's indices) in one writeBuffer: the queue orders it after earlier submits. */
  private writeStep(header: StepHeader, indices: Uint32Array | null): void {
    const view = new DataView(this.header);
    writeHeader(view, header);
    const bytes = indices ? INDICES_OFFSET + 4 * indices.length : HEADER_BYTES;
    if (indices) new Uint32Array(this.header, INDICES_OFFSET, indices.length).set(indices);
    this.device.queue.writeBuffer(this.stepBuffer, 0, this.header, 0, Math.ceil(bytes / 4) * 4);
  }

  /** Encodes the graph's dispatches (or its first `count`) in one compute pass and submits it. */
  private submit(graph: Graph, header: StepHeader, call: CallBuffers, count = graph.items.length): void {
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const item of graph.items.slice(0, count)) {
      const [x, y, z] = item.program.dispatch(header.n, header);
      if (x === 0 || y === 0 || z === 0) continue;
      pass.setPipeline(item.pipeline);
      pass.setBindGroup(0, this.bindGroup(item, call));
      pass.dispatchWorkgroups(x, y, z);
    }
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }

  /** The item's bind group for this call: made once, or once per split, or once per evaluation, as it depends. */
  private bindGroup(item: Item, call: CallBuffers): GPUBindGroup {
    const key = item.sources.includes('predictions') ? call.out! : item.sources.some((s) => s === 'pixels' || s === 'labels') ? call.resident : this;
    let bg = item.bindGroups.get(key);
    if (!bg) {
      const buffer = (s: Source): GPUBufferBinding => {
        if (s === 'indices') return { buffer: this.stepBuffer, offset: INDICES_OFFSET };
        if (s === 'pixels') return { buffer: call.resident.pixels! };
        if (s === 'labels') return { buffer: call.resident.labels };
        if (s === 'predictions' || s === 'results' || s === 'allLogits') return { buffer: call.out![s] };
        return { buffer: s };
      };
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.stepBuffer, offset: 0, size: HEADER_BYTES } }];
      item.sources.forEach((s, i) => entries.push({ binding: i + 1, resource: buffer(s) }));
      bg = this.device.createBindGroup({ layout: item.pipeline.getBindGroupLayout(0), entries });
      item.bindGroups.set(key, bg);
    }
    return bg;
  }

  private pipeline(program: CompiledProgram): GPUComputePipeline {
    let p = this.pipelines.get(program.shaderKey);
    if (!p) {
      const module = this.device.createShaderModule({ code: shaderCode(program) });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(program.shaderKey, p);
    }
    return p;
  }

  /** The split on the GPU, uploaded on first use: its pixels as bytes where they fit one buffer, its labels always. */
  private residentOf(split: Split): Resident {
    let r = this.resident.get(split);
    if (!r) {
      const words = residentWords(split, this.maxBufferBytes);
      const upload = (data: Int32Array) => {
        const b = this.device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: storage() });
        this.device.queue.writeBuffer(b, 0, data as Int32Array<ArrayBuffer>);
        return b;
      };
      const labels = upload(words.labels);
      const pixels = words.pixels && upload(words.pixels);
      r = { pixels, labels };
      this.resident.set(split, r);
    }
    return r;
  }

  /** The filter-gradient slices of each convolution at batch `n` (the header carries them). */
  private slices(graph: Graph, n: number): number[] {
    return convGeometries(this.plan).map((g, i) => Math.ceil((n * g.output[0] * g.output[1]) / graph.chunks[i]!));
  }

  /** The training graph for batches of up to `n` images: the plan's batch size, or `n` where it is larger. */
  private trainGraph(n: number): Graph {
    const size = Math.max(n, this.batchSizes.train);
    for (const [b, g] of this.train) if (b >= n) return g;
    const g = this.build(size, 'train');
    this.train.set(size, g);
    return g;
  }

  private evalGraph(n: number): Graph {
    let g = this.evals.get(n);
    if (!g) this.evals.set(n, (g = this.build(n, 'eval')));
    return g;
  }

  /** The buffers and dispatches of a step (`train`) or of an evaluation batch (`eval`) for `batch` images (./graph.ts). */
  private build(batch: number, mode: 'train' | 'eval'): Graph {
    const owned: GPUBuffer[] = [];
    const make = (floats: number) => {
      const b = this.device.createBuffer({ size: Math.max(16, Math.ceil((4 * floats) / 16) * 16), usage: storage() });
      owned.push(b);
      return b;
    };
    const dispatches = buildGraph(this.plan, batch, mode, { make, weights: this.weights, grads: this.grads, table: this.table, ring: this.ring, momentum: this.momentum, sgd: this.sgd, labelSmoothing: this.labelSmoothing });
    const items = dispatches.items.map(({ program, sources }) => ({ program, pipeline: this.pipeline(program), sources, bindGroups: new WeakMap<object, GPUBindGroup>() }));
    return { batch, items, x: dispatches.x, chunks: dispatches.chunks, buffers: owned };
  }
}

/** Maps `staging` (MAP_READ), copies `bytes` out, and destroys it. */
async function read(staging: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  try {
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange(0, bytes).slice(0);
  } finally {
    staging.destroy();
  }
}

