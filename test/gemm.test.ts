// Our WebAssembly matrix product (src/backends/wasm/gemm.ts) on a memory of its own, against a float64 product
// in JS: plain matrices with rows left over from the 4-row tiles and sums longer than one block, a convolution's
// patches read where they lie, runs cut by the sum's blocks, rows added where a placement puts them
// (overlapping, as col2im does), with and without the fused multiply-add.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Gemm, fusedMultiplyAdd, rowMajor, rowMajorOut, sumBlocks, type Heap, type Layout, type Placement } from '../src/backends/wasm/gemm.js';

/** A heap of its own: 16 MiB, and an allocator that only bumps (each test makes a fresh one). */
function ownHeap(): Heap & { f32: () => Float32Array; alloc: (values: number) => number } {
  const memory = new WebAssembly.Memory({ initial: 256 });
  let top = 64;
  const malloc = (bytes: number) => {
    const at = top;
    top += Math.ceil(bytes / 16) * 16;
    return at;
  };
  return { memory, malloc, free: () => {}, f32: () => new Float32Array(memory.buffer), alloc: (values: number) => malloc(4 * values) };
}

/** Values from a fixed sequence in [-1, 1), so that every run sees the same numbers. */
const fill = (a: Float32Array, from: number, count: number, seed: number) => {
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    a[from + i] = x / 1073741824 - 1;
  }
};

/** C (+)= A . B in float64, A and C where their layout and placement say (offsets in bytes, as the kernel's). */
function reference(mem: Float32Array, a: number, layout: Layout, b: number, ldb: number, out: Placement, c: number, acc: boolean): Float64Array {
  const m = layout.rows.length;
  const n = out.blocks.length * 8;
  const result = new Float64Array(mem.length);
  if (acc) result.set(mem);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      layout.runs.forEach((run, r) => {
        for (let t = 0; t < layout.runLength; t++) sum += mem[(a + layout.rows[i]! + run) / 4 + t]! * mem[b / 4 + (r * layout.runLength + t) * ldb + j]!;
      });
      const at = (c + out.rows[i]! + out.blocks[j >> 3]!) / 4 + (j & 7);
      result[at] = (acc ? result[at]! : 0) + sum;
    }
  }
  return result;
}

const cases: { name: string; m: number; k: number; n: number; layout?: (h: ReturnType<typeof ownHeap>) => { a: number; layout: Layout }; out?: (m: number, n: number) => Placement; acc?: boolean; block?: number }[] = [
  { name: 'plain, 7 rows (3 left over), k = 600 (three blocks of the sum)', m: 7, k: 600, n: 24 },
  { name: 'plain, 1 row, k = 1', m: 1, k: 1, n: 8 },
  {
    name: 'a convolution\'s patches where they lie: a [2, 6, 5, 8] image, 3x2 windows',
    m: 2 * 4 * 4,
    k: 3 * 2 * 8,
    n: 16,
    layout: (h) => {
      const [N, H, W, C, KH, KW] = [2, 6, 5, 8, 3, 2];
      const a = h.alloc(N * H * W * C);
      fill(h.f32(), a / 4, N * H * W * C, 3);
      const rows: number[] = [];
      for (let b = 0; b < N; b++) for (let y = 0; y <= H - KH; y++) for (let x = 0; x <= W - KW; x++) rows.push(4 * ((b * H + y) * W + x) * C);
      return { a, layout: { rows: Int32Array.from(rows), runs: Int32Array.from({ length: KH }, (_, r) => 4 * r * W * C), runLength: KW * C } };
    },
  },
  {
    name: 'runs of 5 in a [6, 9] image, the sum in blocks of 8 values that cut them, 3 rows (all left over)',
    m: 3,
    k: 4 * 5,
    n: 8,
    block: 8,
    layout: (h) => {
      const a = h.alloc(6 * 9);
      fill(h.f32(), a / 4, 6 * 9, 5);
      return { a, layout: { rows: Int32Array.of(0, 4, 4 * 10), runs: Int32Array.from({ length: 4 }, (_, r) => 4 * r * 9), runLength: 5 } };
    },
  },
  {
    name: 'rows added where a placement puts them, overlapping (col2im)',
    m: 10,
    k: 5,
    n: 16,
    // Row i's two blocks at 32*i and 32*i + 32 bytes: each row's second block is the next row's first.
    out: (m) => ({ rows: Int32Array.from({ length: m }, (_, i) => 32 * i), blocks: Int32Array.of(0, 32) }),
    acc: true,
  },
];

for (const fma of [false, true]) {
  for (const c of cases) {
    test(`gemm ${fma ? 'with' : 'without'} the fused multiply-add: ${c.name}`, (t) => {
      if (fma && !fusedMultiplyAdd()) return t.skip(`this Node (${process.versions.node}) has no WebAssembly relaxed SIMD`);
      const h = ownHeap();
      const { a, layout } = c.layout?.(h) ?? (() => {
        const at = h.alloc(c.m * c.k);
        fill(h.f32(), at / 4, c.m * c.k, 1);
        return { a: at, layout: rowMajor(c.m, c.k) };
      })();
      const b = h.alloc(c.k * c.n);
      fill(h.f32(), b / 4, c.k * c.n, 2);
      const out = c.out?.(c.m, c.n) ?? rowMajorOut(c.m, c.n);
      const size = Math.max(...out.rows) / 4 + c.n + 8;
      const cAt = h.alloc(size);
      if (c.acc) fill(h.f32(), cAt / 4, size, 4);
      const want = reference(h.f32(), a, layout, b, c.n, out, cAt, c.acc ?? false);
      const gemm = new Gemm(h, fma);
      if (!c.layout && !c.out) gemm.matmul(a, b, cAt, c.m, c.k, c.n);
      else gemm.product(a, layout, b, c.n, cAt, out, c.acc, c.block);
      const got = h.f32();
      let worst = 0;
      for (let i = cAt / 4; i < cAt / 4 + size; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
      assert.ok(worst <= 1e-5, `largest relative difference ${worst}`);
    });
  }
}

test('sumBlocks: runs cut where a block of the sum ends; each block\'s first run and B offset', () => {
  const cases: { name: string; layout: Layout; ldb: number; block: number; runs: number[]; groups: number[] }[] = [
    { name: 'one block', layout: { rows: Int32Array.of(0), runs: Int32Array.of(0, 100), runLength: 3 }, ldb: 32, block: Infinity, runs: [0, 3, 100, 3], groups: [0, 0, 2, 0] },
    { name: 'blocks on run ends', layout: { rows: Int32Array.of(0), runs: Int32Array.of(0, 100), runLength: 3 }, ldb: 32, block: 3, runs: [0, 3, 100, 3], groups: [0, 0, 1, 96, 2, 0] },
    // k = 0..5 in runs of 3 at 0 and 100, blocks of 4: [0, 3) + [100, 101) | [104, 106).
    { name: 'a block ending inside a run', layout: { rows: Int32Array.of(0), runs: Int32Array.of(0, 100), runLength: 3 }, ldb: 32, block: 4, runs: [0, 3, 100, 1, 104, 2], groups: [0, 0, 2, 128, 3, 0] },
    // One run of 10 in blocks of 4: KC blocks of a plain row.
    { name: 'a plain row', layout: rowMajor(2, 10), ldb: 40, block: 4, runs: [0, 4, 16, 4, 32, 2], groups: [0, 0, 1, 160, 2, 320, 3, 0] },
  ];
  for (const c of cases) {
    const got = sumBlocks(c.layout, c.ldb, c.block);
    assert.deepEqual([...got.runs], c.runs, `${c.name}: runs`);
    assert.deepEqual([...got.groups], c.groups, `${c.name}: groups`);
  }
});

test('the fused multiply-add is fused where the product says it is', (t) => {
  // (-1)(1) + (1 + 2^-23)(1 - 2^-23): fused, the second product is added unrounded and leaves -2^-46; multiplied
  // and added apart, it rounds to 1 first and leaves 0.
  const run = (fma: boolean) => {
    const h = ownHeap();
    const [a, b, c] = [h.alloc(2), h.alloc(16), h.alloc(8)];
    const f = h.f32();
    f.set([-1, 1 + 2 ** -23], a / 4);
    f.fill(1, b / 4, b / 4 + 8);
    f.fill(1 - 2 ** -23, b / 4 + 8, b / 4 + 16);
    new Gemm(h, fma).matmul(a, b, c, 1, 2, 8);
    return Array.from(h.f32().subarray(c / 4, c / 4 + 8));
  };
  assert.deepEqual(run(false), new Array(8).fill(0));
  if (!fusedMultiplyAdd()) return t.skip(`this Node (${process.versions.node}) has no WebAssembly relaxed SIMD`);
  assert.deepEqual(run(true), new Array(8).fill(-(2 ** -46)));
});
