// A matrix product of our own, C = A . B in f32, as a WebAssembly module that works on the wasm backend's own
// heap (it imports that WebAssembly.Memory, so no operand is copied or packed). It exists for one instruction
// XNNPACK's wasm build cannot use: f32x4.relaxed_madd, a fused multiply-add on every CPU Node runs on today
// (FMA3 on x86-64, fmla on arm64). tfjs 4.22 ships XNNPACK built for SIMD128, which multiplies and adds apart.
//
// Measured alone (C[5184,1600] . [1600,64], conv2's product at batch 64; Intel Xeon with AVX-512, 2026-12-06,
// median of 9): this kernel 40-43 ms (24-27 GFLOP/s) with the fused multiply-add, 54-62 ms without it, and
// XNNPACK's BatchMatMul 49-64 ms with its operand already packed.
//
// The register tile is MR rows x 8 columns (two v128 accumulators a row): 4 x 8 needs 8 vector registers for
// sums, 2 for B's row and 1 for A's splat, of x86-64's 16. 6 x 8 measured the same; 3 x 16, 2 x 16 and 8 x 4,
// and the sum unrolled by 2 or 4, the same or slower (docs/performance.md).

import v8 from 'node:v8';
import { body, countDown, countUp, f32x4Add, f32x4Mul, i32Load, load32Splat, moduleOf, op, relaxedMadd, v128Load, v128Store, zero } from './wasm-code.js';

// The parameters, in order, then the locals.
const [A, ROWS, RUNS, GROUPS, NGROUP, B, LDB, C, CROWS, CCOLS, M, N, ACC] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const PARAMS = 13;

/**
 * One function: C[M,N] (+)= A[M,K] . B[K,N] in f32, where A's rows may lie anywhere: row i starts `rows[i]`
 * bytes after A, and its K values are runs of contiguous values, run j starting `runs[2j]` bytes into the row
 * and `runs[2j + 1]` values long (at least 1). So a convolution's patches are read where they lie in the image
 * (implicit im2col), and a plain matrix is one run a row. B is row-major, its rows `ldb` bytes apart, in the
 * order of the runs' values. The sum goes in `ngroup` blocks of runs: block g is runs groups[2g] up to
 * groups[2g + 2], its B rows from `groups[2g + 1]` bytes after B; each block's sums start from zero and are
 * added to C's values (the first block's too with `acc` set), so a block of B can stay in cache while every row
 * tile passes over it. C's values may lie anywhere too, in blocks of 8: row i's block j at `crows[i] +
 * ccols[j]` bytes after C, so a convolution's input gradient adds each patch's product into the image where the
 * patch lies (col2im fused in). M is a multiple of `mr`, N of 8.
 */
function gemmBody(mr: number, fma: boolean): number[] {
  let next = PARAMS;
  const g = next++, m = next++, n = next++, k = next++, s = next++, send = next++, pb = next++, pc = next++, so = next++, col = next++;
  const row = Array.from({ length: mr }, () => next++);
  const crow = Array.from({ length: mr }, () => next++);
  const pa = Array.from({ length: mr }, () => next++);
  const i32Locals = next - PARAMS;
  const b0 = next++, b1 = next++, a = next++;
  const c = Array.from({ length: mr }, () => [next++, next++] as const);
  const v128Locals = next - PARAMS - i32Locals;
  const madd = (acc: number, b: number) => (fma
    ? [...op.get(a), ...op.get(b), ...op.get(acc), ...relaxedMadd, ...op.set(acc)]
    : [...op.get(a), ...op.get(b), ...f32x4Mul, ...op.get(acc), ...f32x4Add, ...op.set(acc)]);
  const group = (field: number) => [...op.get(GROUPS), ...op.get(g), ...op.i32(8), ...op.mul, ...op.add, ...i32Load(4 * field)];
  const code: number[] = [
    ...op.i32(0), ...op.set(g),
    ...op.loop, // blocks of the sum
    ...op.i32(0), ...op.set(m),
    ...op.block, ...op.loop, // rows, MR at a time
    ...op.get(m), ...op.get(M), ...op.geU, ...op.brIf(1),
    ...row.flatMap((l, r) => [...op.get(ROWS), ...op.get(m), ...op.i32(r), ...op.add, ...op.i32(4), ...op.mul, ...op.add, ...i32Load(0), ...op.get(A), ...op.add, ...op.set(l)]),
    ...crow.flatMap((l, r) => [...op.get(CROWS), ...op.get(m), ...op.i32(r), ...op.add, ...op.i32(4), ...op.mul, ...op.add, ...i32Load(0), ...op.get(C), ...op.add, ...op.set(l)]),
    ...op.i32(0), ...op.set(n),
    ...op.block, ...op.loop, // columns, 8 at a time
    ...op.get(n), ...op.get(N), ...op.geU, ...op.brIf(1),
    ...c.flatMap(([c0, c1]) => [...zero, ...op.set(c0), ...zero, ...op.set(c1)]),
    ...op.get(B), ...group(1), ...op.add, ...op.get(n), ...op.i32(4), ...op.mul, ...op.add, ...op.set(pb),
    ...group(0), ...op.set(s),
    ...group(2), ...op.set(send),
    ...op.loop, // the block's runs
    ...op.get(RUNS), ...op.get(s), ...op.i32(8), ...op.mul, ...op.add, ...op.tee(so), ...i32Load(4), ...op.set(k),
    ...op.get(so), ...i32Load(0), ...op.set(so),
    ...pa.flatMap((p, r) => [...op.get(row[r]!), ...op.get(so), ...op.add, ...op.set(p)]),
    ...op.loop, // the sum along a run: B's row of 8, then each row's A value splat and multiplied in
    ...op.get(pb), ...v128Load(0), ...op.set(b0),
    ...op.get(pb), ...v128Load(16), ...op.set(b1),
    ...pa.flatMap((p, r) => [
      ...op.get(p), ...load32Splat, ...op.set(a),
      ...madd(c[r]![0], b0), ...madd(c[r]![1], b1),
      ...op.get(p), ...op.i32(4), ...op.add, ...op.set(p),
    ]),
    ...op.get(pb), ...op.get(LDB), ...op.add, ...op.set(pb),
    ...countDown(k),
    ...op.end,
    ...countUp(s, send),
    ...op.end,
    ...op.get(CCOLS), ...op.get(n), ...op.i32(1), ...op.shrU, ...op.add, ...i32Load(0), ...op.set(col), // block n / 8: n / 2 bytes in
    ...c.flatMap(([c0, c1], r) => [
      ...op.get(crow[r]!), ...op.get(col), ...op.add, ...op.set(pc),
      ...op.get(ACC), ...op.get(g), ...op.or, ...op.if, // added to C: asked for, or a block after the first
      ...op.get(c0), ...op.get(pc), ...v128Load(0), ...f32x4Add, ...op.set(c0),
      ...op.get(c1), ...op.get(pc), ...v128Load(16), ...f32x4Add, ...op.set(c1),
      ...op.end,
      ...op.get(pc), ...op.get(c0), ...v128Store(0),
      ...op.get(pc), ...op.get(c1), ...v128Store(16),
    ]),
    ...op.get(n), ...op.i32(8), ...op.add, ...op.set(n),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.get(m), ...op.i32(mr), ...op.add, ...op.set(m),
    ...op.br(0),
    ...op.end, ...op.end,
    ...countUp(g, NGROUP),
    ...op.end,
  ];
  return body(i32Locals, v128Locals, code);
}

/** Rows a tile: the main function's, and the one for the rows left over. */
const MR = 4;
const TAIL = 1;

const bytes = new Map<boolean, Uint8Array<ArrayBuffer>>();
/** The module's bytes, written once per kind: relaxedSimd validates the very bytes gemmCode then compiles. */
function gemmModule(fma: boolean): Uint8Array<ArrayBuffer> {
  let b = bytes.get(fma);
  if (!b) {
    b = moduleOf({ gemm: { params: PARAMS, body: gemmBody(MR, fma) }, gemm1: { params: PARAMS, body: gemmBody(TAIL, fma) } });
    bytes.set(fma, b);
  }
  return b;
}

/**
 * Whether this Node's WebAssembly takes relaxed SIMD: by default from Node 22 (V8 11.4); Node 20 has it behind
 * a V8 flag, which is set here, before any module that uses it is compiled.
 */
function relaxedSimd(): boolean {
  const probe = gemmModule(true);
  if (WebAssembly.validate(probe)) return true;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(probe);
}

let relaxed: boolean | null = null;
const compiled = new Map<boolean, WebAssembly.Module>();

/** The compiled module (once per thread and kind): with the fused multiply-add, or multiplying and adding apart. */
function gemmCode(fma: boolean): WebAssembly.Module {
  let module = compiled.get(fma);
  if (!module) {
    if (fma && !fusedMultiplyAdd()) throw new Error('gemm: this Node has no WebAssembly relaxed SIMD');
    module = new WebAssembly.Module(gemmModule(fma));
    compiled.set(fma, module);
  }
  return module;
}

/** Whether the product has its fused multiply-add in this Node (relaxed SIMD; see relaxedSimd). */
export const fusedMultiplyAdd = (): boolean => (relaxed ??= relaxedSimd());

type GemmFn = (a: number, rows: number, runs: number, groups: number, ngroup: number, b: number, ldb: number, c: number, crows: number, ccols: number, m: number, n: number, acc: number) => void;

/** What the product needs of the wasm backend's module: its memory, and its allocator for the offset tables. */
export interface Heap {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
}

/**
 * Where A's values lie (see gemmBody): each row's byte offset from A, and its runs' offsets from the row's start,
 * every run `runLength` values long, the runs in the order of B's rows.
 */
export interface Layout {
  rows: Int32Array;
  runs: Int32Array;
  runLength: number;
}

/** Where C's values go (see gemmBody): each row's byte offset from C, and each block of 8 columns' from the row's. */
export interface Placement {
  rows: Int32Array;
  blocks: Int32Array;
}

/**
 * 0, step, 2 step, ... (count values), in a plain loop: Int32Array.from with a map function took 3.3 ms for
 * conv1's 50,176 output rows at batch 64, every step, where this takes 0.2 (median of 30, Intel Xeon, 2026-12-07).
 */
function steps(count: number, step: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = i * step;
  return out;
}

/** A row-major [m, k] matrix with rows `ld` values apart, as a Layout: one run a row. */
export const rowMajor = (m: number, k: number, ld = k): Layout => ({ rows: steps(m, 4 * ld), runs: Int32Array.of(0), runLength: k });

/** A row-major [m, n] matrix as a Placement. */
export const rowMajorOut = (m: number, n: number): Placement => ({ rows: steps(m, 4 * n), blocks: steps(n / 8, 32) });

/**
 * The kernel's run and block tables for `layout`: its runs as (offset, length) pairs, cut where a block of
 * `block` values of the sum ends, and each block's first run and its B rows' byte offset (B's rows `ldb` bytes
 * apart); one block where `block` is Infinity.
 */
export function sumBlocks(layout: Layout, ldb: number, block: number): { runs: Int32Array; groups: Int32Array } {
  const runs: number[] = [];
  const groups: number[] = [0, 0];
  let k = 0;
  for (const start of layout.runs) {
    for (let t = 0; t < layout.runLength;) {
      const take = Math.min(layout.runLength - t, block - (k % block));
      runs.push(start + 4 * t, take);
      t += take;
      k += take;
      if (k % block === 0 && k < layout.runs.length * layout.runLength) groups.push(runs.length / 2, k * ldb);
    }
  }
  groups.push(runs.length / 2, 0);
  return { runs: Int32Array.from(runs), groups: Int32Array.from(groups) };
}

/**
 * Sums of at most this many products at a time in a product whose B is large, so that a block of B (KC x N)
 * stays in the L2 cache while every row tile of A passes over it. conv1's filter-gradient product ([75, 50176]
 * . [50176, 64]) on a memory of its own, median of 12, interleaved, two runs: 18.0-28.7 ms in blocks of 256,
 * 69.3-71.3 ms in one sweep (Intel Xeon, 2026-12-06).
 */
export const KC = 256;

/** The product on one wasm heap (the wasm backend's). Pointers are byte offsets into its memory. */
export class Gemm {
  private readonly main: GemmFn;
  private readonly tail: GemmFn;

  /** `fma`: with the fused multiply-add, where this Node has it (the default), or without. */
  constructor(private readonly heap: Heap, fma = fusedMultiplyAdd()) {
    const exports = new WebAssembly.Instance(gemmCode(fma), { env: { memory: heap.memory } }).exports as { gemm: GemmFn; gemm1: GemmFn };
    this.main = exports.gemm;
    this.tail = exports.gemm1;
  }

  /** C[m,n] = A[m,k] . B[k,n], f32, all row-major; n a multiple of 8 (see `fits`); the sum in blocks of KC. */
  matmul(a: number, b: number, c: number, m: number, k: number, n: number): void {
    this.product(a, rowMajor(m, k), b, n, c, rowMajorOut(m, n), false, KC);
  }

  /**
   * C (+)= A . B: A's m rows of k = runs x runLength values where `layout` says (byte offsets from `a`), B
   * row-major [k, n] with rows `ldb` values apart, C's m x n values where `out` says (from `c`); n a multiple of 8.
   * With `acc`, the products are added to C's values. The sum goes in blocks of `block` values (see gemmBody).
   */
  product(a: number, layout: Layout, b: number, ldb: number, c: number, out: Placement, acc = false, block = Infinity): void {
    const m = layout.rows.length;
    const k = layout.runs.length * layout.runLength;
    const n = out.blocks.length * 8;
    if (!Gemm.fits(m, k, n) || out.rows.length !== m) throw new Error(`gemm: ${m}x${k} . ${k}x${n} into ${out.rows.length} rows is not a product this kernel runs`);
    const { runs, groups } = sumBlocks(layout, 4 * ldb, block);
    const tables = [layout.rows, runs, groups, out.rows, out.blocks];
    const length = tables.reduce((t, x) => t + x.length, 0);
    const base = this.heap.malloc(4 * length);
    try {
      const view = new Int32Array(this.heap.memory.buffer, base, length);
      const at: number[] = [];
      let off = 0;
      for (const t of tables) {
        view.set(t, off);
        at.push(base + 4 * off);
        off += t.length;
      }
      const [rows, runsAt, groupsAt, crows, ccols] = at as [number, number, number, number, number];
      const body = m - (m % MR);
      const args = [runsAt, groupsAt, groups.length / 2 - 1, b, 4 * ldb, c] as const;
      if (body > 0) this.main(a, rows, ...args, crows, ccols, body, n, acc ? 1 : 0);
      if (body < m) this.tail(a, rows + 4 * body, ...args, crows + 4 * body, ccols, m - body, n, acc ? 1 : 0);
    } finally {
      this.heap.free(base);
    }
  }

  static fits(m: number, k: number, n: number): boolean {
    return m >= 1 && k >= 1 && n >= 8 && n % 8 === 0;
  }
}
