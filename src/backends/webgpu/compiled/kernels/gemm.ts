// A tiled matrix product in WGSL, C[M, N] = A[M, K] . B[K, N], that the compiled step's convolutions and dense
// layers are written as (issue #18): a convolution is an implicit GEMM (A's rows are the image patches, read in
// place), a dense layer a plain one, their gradients the same with A and B read transposed. Each program gives
// how to read A and B and what to do with each result (bias, ReLU, the ReLU mask of a gradient, where it goes).
//
// 16 x 16 threads compute a TM x TN tile, each an (TM/16) x (TN/16) block, stepping through K by TK with both
// operands' tiles in workgroup memory. Every output is summed in the same order, k from 0 up, so results are
// bitwise repeatable. M and K may depend on the batch (the header's n), which is uniform: the loop around the
// barriers stays in uniform control flow.

import type { Binding, CompiledProgram } from '../program.js';

export interface GemmSpec {
  tm: number; // rows of C a workgroup computes: a multiple of 16
  tn: number; // columns: a multiple of 16
  tk: number; // depth of a step through K
  m: string; // WGSL u32 expression for M
  n: number; // N
  k: string; // WGSL u32 expression for K
  /**
   * What of a row of A does not depend on k, computed once per row before the loop over K: `fn rowA(m : u32) ->
   * ROW` with ROW's WGSL type. Without it a row is its index m (type u32).
   */
  rowA?: { type: string; fn: string };
  /** `fn loadA(row : ROW, k : u32) -> f32`, called only for m < M and k < K. */
  loadA: string;
  /** `fn loadB(k : u32, n : u32) -> f32`, called only for k < K and n < N. */
  loadB: string;
  /** `fn store(m : u32, n : u32, v : f32)`, called once per element of C. */
  store: string;
}

/** Tile sizes for an M x N product: large tiles where there are enough of them to fill a GPU, smaller otherwise. */
export function gemmTiles(m: number, n: number): { tm: number; tn: number; tk: number } {
  const tm = m >= 64 ? 64 : m >= 32 ? 32 : 16;
  const tn = n >= 64 ? 64 : n >= 32 ? 32 : 16;
  return { tm, tn, tk: 16 };
}

export const gemmDispatch = (spec: { tm: number; tn: number }, m: number, n: number): [number, number, number] => [Math.ceil(n / spec.tn), Math.ceil(m / spec.tm), 1];

/**
 * What the compiled step's matrix-product programs share: 16 x 16 threads, tiles chosen for the largest M they
 * run (the plan's batch), and a workgroup per tile of C. `rows(n)` is M for a batch of n; `cols` is N.
 */
export abstract class GemmProgram implements CompiledProgram {
  workgroupSize: [number, number, number] = [16, 16, 1];
  shaderKey: string;
  protected readonly tiles: { tm: number; tn: number; tk: number };

  constructor(
    readonly bindings: Binding[],
    name: string,
    private readonly rows: (n: number) => number,
    private readonly cols: number,
    batch: number,
  ) {
    this.tiles = gemmTiles(rows(batch), cols);
    this.shaderKey = `${name}_${this.tiles.tm}_${this.tiles.tn}`;
  }

  dispatch(n: number): [number, number, number] {
    return gemmDispatch(this.tiles, this.rows(n), this.cols);
  }

  abstract getUserCode(): string;
}

/** A gradient program's bindings: with `mask`, the layer below's ReLU output `t` too (its gradient applied there). */
export const maskedBindings = (bindings: Binding[], mask: boolean): Binding[] => [...bindings, ...(mask ? [{ name: 't', type: 'f32' as const, write: false }] : [])];

export function gemmCode(s: GemmSpec): string {
  const rm = s.tm / 16;
  const rn = s.tn / 16;
  const range = (k: number) => Array.from({ length: k }, (_, i) => i);
  // The register block unrolled, so that the accumulators stay in registers (an array indexed by loop variables
  // can end up in memory): a_i, b_j and acc_i_j.
  const acc = range(rm).flatMap((i) => range(rn).map((j) => `acc_${i}_${j}`));
  const loads = (tiles: number, body: (r: number) => string) => range(tiles).map(body).join('\n');
  const rowsA = (s.tm * s.tk) / 256; // rows of A each thread loads: the same ones at every step through K
  const row = s.rowA ?? { type: 'u32', fn: 'fn rowA(m : u32) -> u32 { return m; }' };
  return `
const TM = ${s.tm}u;
const TN = ${s.tn}u;
const TK = ${s.tk}u;
var<workgroup> As : array<f32, ${s.tk * s.tm}>;
var<workgroup> Bs : array<f32, ${s.tk * s.tn}>;
${row.fn}
${s.loadA}
${s.loadB}
${s.store}
@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid : vec3<u32>, @builtin(workgroup_id) wid : vec3<u32>) {
  let M = ${s.m};
  let K = ${s.k};
  let N = ${s.n}u;
  let m0 = wid.y * TM;
  let n0 = wid.x * TN;
  let tid = lid.y * 16u + lid.x;
  ${acc.map((a) => `var ${a} = 0.0;`).join(' ')}
  let kkA = tid % TK;
  ${range(rowsA).map((r) => `let mmA_${r} = tid / TK + ${(r * 256) / s.tk}u;
  let inA_${r} = m0 + mmA_${r} < M;
  var rowA_${r} : ${row.type};
  if (inA_${r}) { rowA_${r} = rowA(m0 + mmA_${r}); }`).join('\n  ')}
  for (var k0 = 0u; k0 < K; k0 = k0 + TK) {
    ${loads(rowsA, (r) => `{
      var v = 0.0;
      if (inA_${r} && k0 + kkA < K) { v = loadA(rowA_${r}, k0 + kkA); }
      As[kkA * TM + mmA_${r}] = v;
    }`)}
    ${loads((s.tn * s.tk) / 256, (r) => `{
      let e = tid + ${r * 256}u;
      let kk = e / TN;
      let nn = e % TN;
      var v = 0.0;
      if (k0 + kk < K && n0 + nn < N) { v = loadB(k0 + kk, n0 + nn); }
      Bs[kk * TN + nn] = v;
    }`)}
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk = kk + 1u) {
      ${range(rm).map((i) => `let a_${i} = As[kk * TM + lid.y + ${i * 16}u];`).join(' ')}
      ${range(rn).map((j) => `let b_${j} = Bs[kk * TN + lid.x + ${j * 16}u];`).join(' ')}
      ${range(rm).flatMap((i) => range(rn).map((j) => `acc_${i}_${j} = acc_${i}_${j} + a_${i} * b_${j};`)).join('\n      ')}
    }
    workgroupBarrier();
  }
  ${range(rm).flatMap((i) => range(rn).map((j) => `{
    let m = m0 + lid.y + ${i * 16}u;
    let n = n0 + lid.x + ${j * 16}u;
    if (m < M && n < N) { store(m, n, acc_${i}_${j}); }
  }`)).join('\n  ')}
}
`;
}
