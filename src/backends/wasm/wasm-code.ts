// A few lines of WebAssembly's binary format, enough to write our kernels' modules from TypeScript (./gemm.ts,
// ./simd.ts) with no compiler or assembler to install: each kernel's body is a list of the instructions below.
// Each module imports one memory, the wasm backend's heap, as env.memory, and exports functions whose
// parameters are all i32 (byte offsets into that heap, and counts).

const I32 = 0x7f;
const V128 = 0x7b;

/** Unsigned and signed LEB128, as the binary format writes integers. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => vec([...Buffer.from(s)].map((b) => [b]));

/** The instructions our kernels use. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (l: number) => [0x20, ...uleb(l)],
  set: (l: number) => [0x21, ...uleb(l)],
  tee: (l: number) => [0x22, ...uleb(l)],
  i32: (v: number) => [0x41, ...sleb(v)],
  ltU: [0x49],
  geU: [0x4f],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  or: [0x72],
  shrU: [0x76],
  simd: (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm],
};

/** The end of a counted loop's body: local `l` += step, and round again while it is below local `limit`. */
export const countUp = (l: number, limit: number, step = 1) => [...op.get(l), ...op.i32(step), ...op.add, ...op.tee(l), ...op.get(limit), ...op.ltU, ...op.brIf(0)];
/** The end of a counted loop's body: local `l` -= 1, and round again while it is not 0. */
export const countDown = (l: number) => [...op.get(l), ...op.i32(1), ...op.sub, ...op.tee(l), ...op.brIf(0)];
export const v128Load = (offset: number) => op.simd(0x00, 4, ...uleb(offset)); // align 2^4
export const v128Store = (offset: number) => op.simd(0x0b, 4, ...uleb(offset));
export const load32Splat = op.simd(0x09, 2, 0);
export const i32Load = (offset: number) => [0x28, 2, ...uleb(offset)];
export const zero = op.simd(0x0c, ...new Array<number>(16).fill(0));
export const f32x4Add = op.simd(0xe4);
export const f32x4Mul = op.simd(0xe6);
export const relaxedMadd = op.simd(0x105); // a * b + c, fused where the CPU can
export const f32x4Eq = op.simd(0x41);
export const v128And = op.simd(0x4e);
export const v128AndNot = op.simd(0x4f); // a & ~b
export const v128Or = op.simd(0x50);
export const f64x2Add = op.simd(0xf0);
export const f64x2PromoteLow = op.simd(0x5f); // f32x4 lanes 0 and 1 -> f64x2
export const f32x4DemoteZero = op.simd(0x5e); // f64x2 -> f32x4 lanes 0 and 1 (rounded to nearest), 2 and 3 zero
/** i8x16.shuffle of two vectors, picking 32-bit lanes (0-3 from the first, 4-7 from the second). */
export const shuffle32 = (...lanes: number[]) => op.simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
export const v128Store64Lane = (offset: number, lane: number) => op.simd(0x5b, 3, ...uleb(offset), lane);

/**
 * A module of functions (name -> its number of i32 parameters and its body, as `body` makes it) that return
 * nothing, over an imported memory.
 */
export function moduleOf(functions: Record<string, { params: number; body: number[] }>): Uint8Array<ArrayBuffer> {
  const names = Object.keys(functions);
  const types = names.map((f) => [0x60, ...vec(new Array(functions[f]!.params).fill([I32])), ...vec([])]);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(0)]])),
    ...section(3, vec(names.map((_, i) => uleb(i)))),
    ...section(7, vec(names.map((f, i) => [...name(f), 0x00, ...uleb(i)]))),
    ...section(10, vec(names.map((f) => functions[f]!.body))),
  ]);
}

/** A function's body: its locals (so many i32, then so many v128), its code, and the closing `end`. */
export function body(i32Locals: number, v128Locals: number, code: number[]): number[] {
  const b = [...vec([[...uleb(i32Locals), I32], [...uleb(v128Locals), V128]]), ...code, ...op.end];
  return [...uleb(b.length), ...b];
}
