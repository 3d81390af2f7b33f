// The filter gradient of a convolution as a split-K matrix product, in two WebGPU programs (issue #12).
//
//   dW[k, n] = sum over m of Xcol[m, k] * dY[m, n]
//   m = (b, oy, ox) over the batch and the output positions, k = (ky, kx, ci) the filter row, n = co
//
// tfjs-backend-webgpu 4.22's Conv2DDerFilterProgram runs one thread per filter element: for conv1 at batch 64
// (x [64,32,32,3], dy [64,28,28,64]) that is 4,800 threads, each looping serially over 64x28x28 = 50,176
// products, 11.7 of a 14.6 ms step on an H200. Here each workgroup computes a 64x64 tile of dW over one chunk
// of m (im2col done on the fly while loading the tile into workgroup memory, each thread a 4x4 block), writing
// partial sums; a second program adds the chunks up. A prototype of this method on the same H200 took conv1's
// filter gradient from 12.4 to 0.36 ms at batch 64 and from 151 to 1.2 ms at batch 512, the whole step from
// 14.6 to 7.0 ms, with results closer to a float64 reference than the stock kernel's (issue #12).
//
// The same code serves twice: as the op-by-op runner's Conv2DBackpropFilter (the tfjs-shaped programs of
// ../ops/conv_backprop_filter_splitk_webgpu.ts, registered by ../ops/kernels.ts, dims from tfjs's uniforms), and in
// the compiled step (../compiled/kernels/conv2d_backprop_filter_webgpu.ts, dims as constants, with one more row of ones so that the bias gradient, the sum of dY over m, comes out of the same
// pass). `workgroupBarrier()` needs uniform control flow, so every loop around one takes its trip count from
// uniforms or constants.


/** Tile sizes, baked into the shader text (and so into shaderKey). */
export const TILE_K = 64; // filter rows per workgroup
export const TILE_N = 64; // output channels per workgroup
export const TILE_M = 16; // positions per step through the chunk
const THREADS = 16; // per side: 16 x 16 threads, each a 4 x 4 block of the 64 x 64 tile
const BLOCK = TILE_K / THREADS; // 4

/** About this many workgroups keep a large GPU busy (the prototype's ~1,024). */
const TARGET_WORKGROUPS = 1024;

export interface SplitKPlan {
  slices: number; // chunks of m, one partial sum each
  chunk: number; // positions per chunk, a multiple of TILE_M
}

/** How to cut the m = batch x OH x OW positions into chunks, for a K x N filter gradient. */
export function planSplitK(m: number, k: number, n: number): SplitKPlan {
  const tiles = Math.ceil(k / TILE_K) * Math.ceil(n / TILE_N);
  const mTiles = Math.max(1, Math.ceil(m / TILE_M));
  const wanted = Math.min(mTiles, Math.max(1, Math.ceil(TARGET_WORKGROUPS / tiles)));
  const chunk = Math.ceil(mTiles / wanted) * TILE_M;
  return { slices: Math.ceil(m / chunk), chunk };
}

/** WGSL u32 expressions for the dims of one filter gradient (constants, or tfjs's uniforms). */
export interface SplitKDims {
  K: string; // filter rows kh * kw * ci (without the bias row)
  N: string; // output channels
  ci: string;
  kw: string;
  inH: string;
  inW: string;
  ow: string;
  ohw: string; // oh * ow
  M: string; // positions of the batch: batch * oh * ow
  strideY: string;
  strideX: string;
  padY: string;
  padX: string;
  chunk: string;
  tilesPerChunk: string; // chunk / TILE_M
}

/**
 * Pass 1's WGSL: partial sums of the chunk `workgroupId.z` of positions for a TILE_K x TILE_N tile of dW, into
 * `store(s, k, n, v)`. Reads `x` (NHWC) and `dy` (NHWC). With `biasRow`, row k == K is a row of ones: its sums
 * are the bias gradient's.
 */
export function splitKCode(d: SplitKDims, biasRow: boolean, store: string): string {
  const rows = biasRow ? `(${d.K} + 1u)` : d.K;
  return `
  var<workgroup> xs : array<array<f32, ${TILE_K}>, ${TILE_M}>;
  var<workgroup> ds : array<array<f32, ${TILE_N}>, ${TILE_M}>;
  ${store}

  fn splitK(localId : vec3<u32>, workgroupId : vec3<u32>) {
    let tx = i32(localId.x);
    let ty = i32(localId.y);
    let lin = ty * ${THREADS} + tx;
    let k0 = i32(workgroupId.x) * ${TILE_K};
    let n0 = i32(workgroupId.y) * ${TILE_N};
    let s = i32(workgroupId.z);
    let K = i32(${d.K});
    let rows = i32(${rows});
    let N = i32(${d.N});
    let ci = i32(${d.ci});
    let ow = i32(${d.ow});
    let ohw = i32(${d.ohw});
    let M = i32(${d.M});
    let chunk = i32(${d.chunk});
    let mBegin = s * chunk;
    let mEnd = min(mBegin + chunk, M);
    var acc : array<array<f32, ${BLOCK}>, ${BLOCK}>;
    for (var t = 0; t < i32(${d.tilesPerChunk}); t = t + 1) {
      let mt = mBegin + t * ${TILE_M};
      // Load a TILE_M x TILE_K tile of im2col(x) and a TILE_M x TILE_N tile of dy, zero outside.
      for (var e = lin; e < ${TILE_M * TILE_K}; e = e + ${THREADS * THREADS}) {
        let mm = e / ${TILE_K};
        let c = e % ${TILE_K};
        let m = mt + mm;
        var xv = 0.0;
        let k = k0 + c;
        if (m < mEnd && k < K) {
          let b = m / ohw;
          let r = m % ohw;
          let oy = r / ow;
          let ox = r % ow;
          let kyx = k / ci;
          let ky = kyx / i32(${d.kw});
          let kx = kyx % i32(${d.kw});
          let iy = oy * i32(${d.strideY}) + ky - i32(${d.padY});
          let ix = ox * i32(${d.strideX}) + kx - i32(${d.padX});
          if (iy >= 0 && iy < i32(${d.inH}) && ix >= 0 && ix < i32(${d.inW})) {
            xv = x[((b * i32(${d.inH}) + iy) * i32(${d.inW}) + ix) * ci + k % ci];
          }
        } else if (m < mEnd && k == K && rows > K) {
          xv = 1.0;
        }
        xs[mm][c] = xv;
        var dv = 0.0;
        let n = n0 + c;
        if (m < mEnd && n < N) {
          dv = dy[m * N + n];
        }
        ds[mm][c] = dv;
      }
      workgroupBarrier();
      for (var mm = 0; mm < ${TILE_M}; mm = mm + 1) {
        var a : array<f32, ${BLOCK}>;
        var d : array<f32, ${BLOCK}>;
        for (var i = 0; i < ${BLOCK}; i = i + 1) {
          a[i] = xs[mm][tx * ${BLOCK} + i];
          d[i] = ds[mm][ty * ${BLOCK} + i];
        }
        for (var i = 0; i < ${BLOCK}; i = i + 1) {
          for (var j = 0; j < ${BLOCK}; j = j + 1) {
            acc[i][j] = acc[i][j] + a[i] * d[j];
          }
        }
      }
      workgroupBarrier();
    }
    for (var i = 0; i < ${BLOCK}; i = i + 1) {
      for (var j = 0; j < ${BLOCK}; j = j + 1) {
        let k = k0 + tx * ${BLOCK} + i;
        let n = n0 + ty * ${BLOCK} + j;
        if (k < rows && n < N) {
          store(u32(s), u32(k), u32(n), acc[i][j]);
        }
      }
    }
  }
`;
}

/** Pass 1's workgroups: tiles of the (K [+1]) x N gradient, and the chunks. */
export const splitKDispatch = (rows: number, n: number, slices: number): [number, number, number] => [Math.ceil(rows / TILE_K), Math.ceil(n / TILE_N), slices];
export const SPLITK_WORKGROUP: [number, number, number] = [THREADS, THREADS, 1];
