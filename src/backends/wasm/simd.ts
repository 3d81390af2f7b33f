// Two kernels of the training step as a WebAssembly module of our own (see ./wasm-code.ts) on the wasm backend's
// heap, each giving the same numbers to the bit as the JS loop it replaces (kernels/ keeps those loops for the
// shapes these do not take).
//
// maxPoolGrad: max-pooling's gradient, four channels a pass with SIMD, no branches. Each window position's value
// is compared with the window's maximum (the forward output); the first position that matches (row-major) takes
// the gradient, as in the cpu backend. A NaN maximum matches nothing, so its gradient goes nowhere (the cpu
// backend's -1 position).
//
// The JS loop it replaces (kernels/MaxPoolGrad.ts keeps it for channel counts not a multiple of 4) searches
// each channel's window and stops at the match: 14.8-16.3 ms of a one-thread step for max_pool1 at batch 64,
// against 4.1-4.9 ms here (`node dist/scripts/micro.js`, Intel Xeon, 2026-12-06); the match's position,
// different for every channel, defeats the branch predictor. Here every position of every window is visited,
// and a position that does not take the gradient adds +0, which leaves a sum as it was: each value of dx gets
// the same additions in the same order as in that loop, so the results are the same to the bit.

import { body, countDown, countUp, f32x4Add, f32x4DemoteZero, f32x4Eq, f64x2Add, f64x2PromoteLow, highToLow, moduleOf, op, v128And, v128AndNot, v128Load, v128Or, v128Store, v128Store64Lane, zero } from './wasm-code.js';

const [X, Y, DY, DX, N, H, W, C4, OH, OW, FH, FW, SH, SW] = Array.from({ length: 14 }, (_, i) => i) as number[];
const PARAMS = 14;

function maxPoolGradBody(): number[] {
  let next = PARAMS;
  const [b, i, j, ch, ki, kj, o, rowCorner, corner, q, qrow, rowStep] = Array.from({ length: 12 }, () => next++) as number[];
  const i32Locals = next - PARAMS;
  const [m, g, found, eq] = Array.from({ length: 4 }, () => next++) as number[];
  const v128Locals = next - PARAMS - i32Locals;
  const at = (base: number, off: number) => [...op.get(base), ...op.get(off), ...op.add];
  const code = [
    ...op.get(W), ...op.get(C4), ...op.mul, ...op.set(rowStep),
    ...op.i32(0), ...op.set(o),
    ...op.i32(0), ...op.set(b),
    ...op.loop, // images
    ...op.i32(0), ...op.set(i),
    ...op.loop, // output rows
    ...op.get(b), ...op.get(H), ...op.mul, ...op.get(i), ...op.get(SH), ...op.mul, ...op.add, ...op.get(rowStep), ...op.mul, ...op.set(rowCorner),
    ...op.i32(0), ...op.set(j),
    ...op.loop, // output columns
    ...op.get(rowCorner), ...op.get(j), ...op.get(SW), ...op.mul, ...op.get(C4), ...op.mul, ...op.add, ...op.set(corner),
    ...op.i32(0), ...op.set(ch),
    ...op.loop, // channels, four at a time
    ...at(Y, o), ...v128Load(0), ...op.set(m),
    ...at(DY, o), ...v128Load(0), ...op.set(g),
    ...zero, ...op.set(found),
    ...op.get(corner), ...op.get(ch), ...op.add, ...op.set(qrow),
    ...op.i32(0), ...op.set(ki),
    ...op.loop, // window rows
    ...op.get(qrow), ...op.set(q),
    ...op.i32(0), ...op.set(kj),
    ...op.loop, // window columns
    ...at(X, q), ...v128Load(0), ...op.get(m), ...f32x4Eq, ...op.set(eq),
    ...at(DX, q),
    ...at(DX, q), ...v128Load(0), ...op.get(g), ...op.get(eq), ...op.get(found), ...v128AndNot, ...v128And, ...f32x4Add,
    ...v128Store(0),
    ...op.get(found), ...op.get(eq), ...v128Or, ...op.set(found),
    ...op.get(q), ...op.get(C4), ...op.add, ...op.set(q),
    ...countUp(kj, FW),
    ...op.end,
    ...op.get(qrow), ...op.get(rowStep), ...op.add, ...op.set(qrow),
    ...countUp(ki, FH),
    ...op.end,
    ...op.get(o), ...op.i32(16), ...op.add, ...op.set(o),
    ...op.get(ch), ...op.i32(16), ...op.add, ...op.tee(ch), ...op.get(C4), ...op.ltU, ...op.brIf(0),
    ...op.end,
    ...countUp(j, OW),
    ...op.end,
    ...countUp(i, OH),
    ...op.end,
    ...countUp(b, N),
    ...op.end,
  ];
  return body(i32Locals, v128Locals, code);
}

// channelSum: the sum over every row of an [rows, c] matrix, a channel at a time (a conv layer's bias gradient),
// in float64 as kernels/Sum.ts's loop: sixteen channels a pass in eight f64x2 sums that stay in registers, the
// rows in order, so each channel gets the same additions in the same order as there.
const [SX, SROWS, SC, SOUT] = [0, 1, 2, 3];
const SUM_PARAMS = 4;

function channelSumBody(): number[] {
  let next = SUM_PARAMS;
  const [g, r, p, rowBytes] = Array.from({ length: 4 }, () => next++) as number[];
  const i32Locals = next - SUM_PARAMS;
  const v = next++;
  const acc = Array.from({ length: 8 }, () => next++);
  const v128Locals = next - SUM_PARAMS - i32Locals;
  const code = [
    ...op.get(SC), ...op.i32(4), ...op.mul, ...op.set(rowBytes),
    ...op.i32(0), ...op.set(g),
    ...op.loop, // groups of 16 channels
    ...acc.flatMap((l) => [...zero, ...op.set(l)]),
    ...op.get(SX), ...op.get(g), ...op.add, ...op.set(p),
    ...op.get(SROWS), ...op.set(r),
    ...op.loop, // rows, in order
    ...[0, 1, 2, 3].flatMap((q) => [
      ...op.get(p), ...v128Load(16 * q), ...op.set(v),
      ...op.get(acc[2 * q]!), ...op.get(v), ...f64x2PromoteLow, ...f64x2Add, ...op.set(acc[2 * q]!),
      ...op.get(acc[2 * q + 1]!), ...op.get(v), ...op.get(v), ...highToLow, ...f64x2PromoteLow, ...f64x2Add, ...op.set(acc[2 * q + 1]!),
    ]),
    ...op.get(p), ...op.get(rowBytes), ...op.add, ...op.set(p),
    ...countDown(r),
    ...op.end,
    ...acc.flatMap((l, q) => [...op.get(SOUT), ...op.get(g), ...op.add, ...op.get(l), ...f32x4DemoteZero, ...v128Store64Lane(8 * q, 0)]),
    ...op.get(g), ...op.i32(64), ...op.add, ...op.tee(g), ...op.get(rowBytes), ...op.ltU, ...op.brIf(0),
    ...op.end,
  ];
  return body(i32Locals, v128Locals, code);
}

let compiled: WebAssembly.Module | null = null;

type Fn = (...args: number[]) => void;

/** The kernels on one wasm heap (the wasm backend's). */
export class Simd {
  private readonly fns: { maxPoolGrad: Fn; channelSum: Fn };

  constructor(memory: WebAssembly.Memory) {
    compiled ??= new WebAssembly.Module(moduleOf({ maxPoolGrad: { params: PARAMS, body: maxPoolGradBody() }, channelSum: { params: SUM_PARAMS, body: channelSumBody() } }));
    this.fns = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as { maxPoolGrad: Fn; channelSum: Fn };
  }

  /**
   * dx (zeroed, NHWC like x) += each window's dy at the first position holding its maximum y. Byte offsets into
   * the heap; c a multiple of 4, every count at least 1.
   */
  maxPoolGrad(p: { x: number; y: number; dy: number; dx: number }, shape: { n: number; h: number; w: number; c: number; oh: number; ow: number; fh: number; fw: number; sh: number; sw: number }): void {
    const { n, h, w, c, oh, ow, fh, fw, sh, sw } = shape;
    if (!Simd.poolFits(c) || [n, oh, ow, fh, fw].some((v) => v < 1)) throw new Error(`maxPoolGrad: ${c} channels or an empty window is not a shape this kernel runs`);
    this.fns.maxPoolGrad(p.x, p.y, p.dy, p.dx, n, h, w, 4 * c, oh, ow, fh, fw, sh, sw);
  }

  /** out[c] = the float64 sum of x's rows (x: [rows, c] float32, rows at least 1, c a multiple of 16), as float32. */
  channelSum(x: number, rows: number, c: number, out: number): void {
    if (!Simd.sumFits(rows, c)) throw new Error(`channelSum: ${rows} rows of ${c} channels is not a shape this kernel runs`);
    this.fns.channelSum(x, rows, c, out);
  }

  static poolFits(c: number): boolean {
    return c >= 4 && c % 4 === 0;
  }

  static sumFits(rows: number, c: number): boolean {
    return rows >= 1 && c >= 16 && c % 16 === 0;
  }
}
