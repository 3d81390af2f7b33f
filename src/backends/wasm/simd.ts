// Kernels of the training step as a WebAssembly module of our own (see ./wasm-code.ts) on the wasm backend's heap,
// each giving the same numbers to the bit as the JS loop it replaces (kernels/ keeps those loops for the shapes
// these do not take), or, for transpose, as the stock kernel.
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

import { body, countDown, countUp, f32x4Add, f32x4DemoteZero, f32x4Eq, f64x2Add, f64x2PromoteLow, moduleOf, op, shuffle32, v128And, v128AndNot, v128Load, v128Or, v128Store, v128Store64Lane, zero } from './wasm-code.js';

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
    ...countUp(ch, C4, 16),
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
      ...op.get(acc[2 * q + 1]!), ...op.get(v), ...op.get(v), ...shuffle32(2, 3, 2, 3), ...f64x2PromoteLow, ...f64x2Add, ...op.set(acc[2 * q + 1]!),
    ]),
    ...op.get(p), ...op.get(rowBytes), ...op.add, ...op.set(p),
    ...countDown(r),
    ...op.end,
    ...acc.flatMap((l, q) => [...op.get(SOUT), ...op.get(g), ...op.add, ...op.get(l), ...f32x4DemoteZero, ...v128Store64Lane(8 * q, 0)]),
    ...countUp(g, rowBytes, 64),
    ...op.end,
  ];
  return body(i32Locals, v128Locals, code);
}

// transpose: a 4D float32 transpose that moves the input's last axis (c): the axis that becomes the output's last
// (r) and c are walked in 4x4 tiles (four rows of four values loaded, transposed with shuffles, stored as four
// columns), the two other axes in outer loops, each value going where its output strides say. Copies, so exact.
// On a memory of its own, conv2's filter-gradient input ([64, 13, 13, 64], the batch to the last place) takes 0.47
// ms; a JS loop over 64x64 blocks took 3.3 (median of 30, Intel Xeon, 2026-12-07). kernels/Transpose.ts has it
// against the stock kernel.
const [TX, TOUT, TN0, TN1, TIS0, TIS1, TOS0, TOS1, TR, TC, TIR, TOC] = Array.from({ length: 12 }, (_, i) => i) as number[];
const T_PARAMS = 12;

function transposeBody(): number[] {
  let next = T_PARAMS;
  const [i0, i1, r, c, base, outBase, pin, pout] = Array.from({ length: 8 }, () => next++) as number[];
  const i32Locals = next - T_PARAMS;
  const [a, b, cc, d, t0, t1, t2, t3] = Array.from({ length: 8 }, () => next++) as number[];
  const v128Locals = next - T_PARAMS - i32Locals;
  const load = (into: number, rows: number) => [...op.get(pin), ...op.get(TIR), ...op.i32(rows), ...op.mul, ...op.add, ...v128Load(0), ...op.set(into)];
  const store = (from: number, cols: number) => [...op.get(pout), ...op.get(TOC), ...op.i32(cols), ...op.mul, ...op.add, ...op.get(from), ...v128Store(0)];
  const code = [
    ...op.i32(0), ...op.set(i0),
    ...op.loop, // the first outer axis
    ...op.i32(0), ...op.set(i1),
    ...op.loop, // the second
    ...op.get(TX), ...op.get(i0), ...op.get(TIS0), ...op.mul, ...op.add, ...op.get(i1), ...op.get(TIS1), ...op.mul, ...op.add, ...op.set(base),
    ...op.get(TOUT), ...op.get(i0), ...op.get(TOS0), ...op.mul, ...op.add, ...op.get(i1), ...op.get(TOS1), ...op.mul, ...op.add, ...op.set(outBase),
    ...op.i32(0), ...op.set(r),
    ...op.loop, // rows r, four at a time
    ...op.i32(0), ...op.set(c),
    ...op.loop, // columns c, four at a time
    ...op.get(base), ...op.get(r), ...op.get(TIR), ...op.mul, ...op.add, ...op.get(c), ...op.i32(4), ...op.mul, ...op.add, ...op.set(pin),
    ...load(a, 0), ...load(b, 1), ...load(cc, 2), ...load(d, 3),
    ...op.get(a), ...op.get(b), ...shuffle32(0, 4, 1, 5), ...op.set(t0), // a0 b0 a1 b1
    ...op.get(a), ...op.get(b), ...shuffle32(2, 6, 3, 7), ...op.set(t1), // a2 b2 a3 b3
    ...op.get(cc), ...op.get(d), ...shuffle32(0, 4, 1, 5), ...op.set(t2), // c0 d0 c1 d1
    ...op.get(cc), ...op.get(d), ...shuffle32(2, 6, 3, 7), ...op.set(t3), // c2 d2 c3 d3
    ...op.get(outBase), ...op.get(c), ...op.get(TOC), ...op.mul, ...op.add, ...op.get(r), ...op.i32(4), ...op.mul, ...op.add, ...op.set(pout),
    ...op.get(t0), ...op.get(t2), ...shuffle32(0, 1, 4, 5), ...op.set(a), // a0 b0 c0 d0
    ...op.get(t0), ...op.get(t2), ...shuffle32(2, 3, 6, 7), ...op.set(b), // a1 b1 c1 d1
    ...op.get(t1), ...op.get(t3), ...shuffle32(0, 1, 4, 5), ...op.set(cc), // a2 b2 c2 d2
    ...op.get(t1), ...op.get(t3), ...shuffle32(2, 3, 6, 7), ...op.set(d), // a3 b3 c3 d3
    ...store(a, 0), ...store(b, 1), ...store(cc, 2), ...store(d, 3),
    ...countUp(c, TC, 4),
    ...op.end,
    ...countUp(r, TR, 4),
    ...op.end,
    ...countUp(i1, TN1),
    ...op.end,
    ...countUp(i0, TN0),
    ...op.end,
  ];
  return body(i32Locals, v128Locals, code);
}

let compiled: WebAssembly.Module | null = null;

type Fn = (...args: number[]) => void;

/** The kernels on one wasm heap (the wasm backend's). */
export class Simd {
  private readonly fns: { maxPoolGrad: Fn; channelSum: Fn; transpose: Fn };

  constructor(memory: WebAssembly.Memory) {
    compiled ??= new WebAssembly.Module(moduleOf({ maxPoolGrad: { params: PARAMS, body: maxPoolGradBody() }, channelSum: { params: SUM_PARAMS, body: channelSumBody() }, transpose: { params: T_PARAMS, body: transposeBody() } }));
    this.fns = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as { maxPoolGrad: Fn; channelSum: Fn; transpose: Fn };
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

  /**
   * out = x ([shape], float32) transposed by `perm`, both byte offsets into the heap, where perm moves the last
   * axis (`transposeFits`): see transposeBody.
   */
  transpose(x: number, shape: readonly number[], perm: readonly number[], out: number): void {
    if (!Simd.transposeFits(shape, perm)) throw new Error(`transpose: ${JSON.stringify(shape)} by ${JSON.stringify(perm)} is not a transpose this kernel runs`);
    const outShape = perm.map((p) => shape[p]!);
    const stride = (dims: readonly number[], axis: number) => 4 * dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const inner = perm[3]!; // the input axis that is last in the output
    const [a0, a1] = [0, 1, 2].filter((a) => a !== inner) as [number, number];
    const outStride = (axis: number) => stride(outShape, perm.indexOf(axis));
    this.fns.transpose(x, out, shape[a0]!, shape[a1]!, stride(shape, a0), stride(shape, a1), outStride(a0), outStride(a1), shape[inner]!, shape[3]!, stride(shape, inner), outStride(3));
  }

  /** Whether `transpose` runs this: rank 4, the last axis moved, it and the axis taking its place multiples of 4. */
  static transposeFits(shape: readonly number[], perm: readonly number[]): boolean {
    if (shape.length !== 4 || perm.length !== 4 || perm[3] === 3 || shape.some((d) => d < 1)) return false;
    return shape[perm[3]!]! % 4 === 0 && shape[3]! % 4 === 0;
  }

  static poolFits(c: number): boolean {
    return c >= 4 && c % 4 === 0;
  }

  static sumFits(rows: number, c: number): boolean {
    return rows >= 1 && c >= 16 && c % 16 === 0;
  }
}
