// Batched matrix multiply: C = epilogue(alpha * op(A) op(B) (+ bias[n]) (+ C when accumulating)), float32
// accumulation; the epilogue (EPILOGUE) is nothing, the exact-erf GELU, a residual added, or the GELU's
// derivative multiplied (its backward).
// op(A) is [M, K] (a holds A, or A^T = [K, M] with TRANS_A); op(B) is [K, N] (b holds B, or B^T = [N, K]
// with TRANS_B). workgroup_id.z is the batch item; a stride of 0 broadcasts that operand.
//
// Kernels with the same numbers (this file needs no WGSL extension; matmul_texture.wgsl adds the third):
//  matmul_register: no workgroup memory, for CPU rasterisers (lavapipe) without subgroups. There every
//    buffer load inside a loop is a loop over the SIMD lanes, so loads, not FMAs, set the speed. All lanes
//    of a workgroup share RT_M rows; each lane owns 4 adjacent columns of B, read as one vec4 when VEC_B
//    allows, and loads the (same) A values itself.
//  matmul_texture (matmul_texture.wgsl): the same idea with both operands in textures, whose loads are
//    vector code on lavapipe, and A shared by subgroup shuffles; about twice as fast there.
//  matmul_shared: classic workgroup-memory tiles for real GPUs (64 x 64 outputs, k in steps of 8).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  strideA: u32,  // elements between batch items
  strideB: u32,
  strideC: u32,
  offsetA: u32,  // elements before batch item 0
  offsetB: u32,
  offsetC: u32,
  hasBias: u32,  // a uniform, not an override: one pipeline fewer, and the branch is cheap
  ldA: u32,      // row pitch of a, b and c as stored (K or M for a, N or K for b, N for c unless given)
  ldB: u32,
  ldC: u32,
  heads: u32,    // batch item z is (z / heads, z % heads): strides above for the first, below for the second
  headStrideA: u32,
  headStrideB: u32,
  headStrideC: u32,
  alpha: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
// the epilogue's operands, laid out like c (same offsets, strides and pitch; others stand in when unused)
@group(0) @binding(5) var<storage, read> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> preact: array<f32>;  // the value before the GELU (its input)
// the register kernels only: the same buffer as b, read 4 floats at a time
@group(0) @binding(7) var<storage, read> b4: array<vec4f>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// C += result; an override because the branch alone doubles lavapipe's compile time of the register kernels
override ACCUMULATE: bool = false;
// register kernels: B's contiguous dimension (N, or K with TRANS_B), strideB and offsetB are multiples of 4
override VEC_B: bool = false;
// register kernels: invocations per workgroup, side by side along N
override WG_N: u32 = 8;
// what the store does to each result v (after alpha, bias and accumulation); an override, so that the
// paths not taken cost nothing
const EPILOGUE_NONE = 0u;
const EPILOGUE_GELU = 1u;            // c = gelu(v)
const EPILOGUE_GELU_PREACT = 2u;     // c = gelu(v), preact = v
const EPILOGUE_RESIDUAL = 3u;        // c = v + residual
const EPILOGUE_GELU_GRAD = 4u;       // c = v * gelu'(preact): the GELU's backward, v its output's gradient
override EPILOGUE: u32 = EPILOGUE_NONE;

#include "gelu.wgsl"

fn aIndex(base: u32, m: u32, k: u32) -> u32 {
  if (TRANS_A) { return base + k * params.ldA + m; }
  return base + m * params.ldA + k;
}

fn bIndex(base: u32, k: u32, n: u32) -> u32 {
  if (TRANS_B) { return base + n * params.ldB + k; }
  return base + k * params.ldB + n;
}

// first element of batch item z of an operand (z / heads steps by stride, z % heads by headStride)
fn itemBase(z: u32, offset: u32, stride: u32, headStride: u32) -> u32 {
  return offset + (z / params.heads) * stride + (z % params.heads) * headStride;
}

// Epilogue helpers shared by both kernels. On lavapipe every buffer access compiles to a loop over the
// SIMD lanes, so the epilogues load the bias once per column, not once per output.

// bias[n] for 4 columns (0 without bias)
fn biasAt(n: vec4u) -> vec4f {
  if (params.hasBias == 0u) { return vec4f(0.0); }
  let last = params.N - 1u;
  return vec4f(bias[min(n.x, last)], bias[min(n.y, last)], bias[min(n.z, last)], bias[min(n.w, last)]);
}

// c[m, n] = epilogue(v), or epilogue(c[m, n] + v) when accumulating (matmul.ts applies the epilogue
// to the last of the accumulated slices only)
fn storeC(base: u32, m: u32, n: u32, v: f32) {
  let i = base + m * params.ldC + n;
  var r = v;
  if (ACCUMULATE) { r = c[i] + v; }
  if (EPILOGUE == EPILOGUE_GELU_PREACT) { preact[i] = r; }
  if (EPILOGUE == EPILOGUE_GELU || EPILOGUE == EPILOGUE_GELU_PREACT) { r = gelu(r); }
  if (EPILOGUE == EPILOGUE_RESIDUAL) { r = r + residual[i]; }
  if (EPILOGUE == EPILOGUE_GELU_GRAD) { r = r * gelu_grad(preact[i]); }
  c[i] = r;
}

// ---- register kernel ------------------------------------------------------------------------------

const RT_M = 8u;  // rows per workgroup: 8 vec4 accumulators per lane fill the 32 vector registers

// Rows k..k+3 of op(B) restricted to columns n..n+3, as m[r] = B[k + r, n..n+3]; rows at or past K are zero.
fn loadBBlock(base: u32, k: u32, n: u32) -> mat4x4f {
  let K = params.K;
  let N = params.N;
  var blk: mat4x4f;
  if (VEC_B && TRANS_B) {
    // each column of the block is 4 consecutive k of one row of B^T; K % 4 == 0 keeps the vec4 whole
    for (var j = 0u; j < 4u; j++) {
      blk[j] = b4[(base + min(n + j, N - 1u) * params.ldB + min(k, K - 4u)) / 4u];
    }
    blk = transpose(blk);
  } else if (VEC_B) {
    for (var r = 0u; r < 4u; r++) {
      blk[r] = b4[(base + min(k + r, K - 1u) * params.ldB + min(n, N - 4u)) / 4u];
    }
  } else {
    for (var r = 0u; r < 4u; r++) {
      let kr = min(k + r, K - 1u);
      blk[r] = vec4f(b[bIndex(base, kr, min(n, N - 1u))], b[bIndex(base, kr, min(n + 1u, N - 1u))],
                     b[bIndex(base, kr, min(n + 2u, N - 1u))], b[bIndex(base, kr, min(n + 3u, N - 1u))]);
    }
  }
  for (var r = 0u; r < 4u; r++) {
    blk[r] = select(vec4f(0.0), blk[r], k + r < K);
  }
  return blk;
}

// C rows row0.. and columns col0..col0+3 of batch item z from the register tile (alpha, bias, bounds)
fn storeRegisterTile(z: u32, row0: u32, col0: u32, tile: array<vec4f, RT_M>) {
  let baseC = itemBase(z, params.offsetC, params.strideC, params.headStrideC);
  let cols = col0 + vec4u(0u, 1u, 2u, 3u);
  let biasv = biasAt(cols);
  // a run-time row count keeps this loop rolled (less code to compile); it indexes a copy of the
  // accumulators (the parameter) so that they stay in registers
  for (var i = 0u; i < min(RT_M, params.M - row0); i++) {
    let v = params.alpha * tile[i] + biasv;
    for (var j = 0u; j < 4u; j++) {
      if (cols[j] < params.N) { storeC(baseC, row0 + i, cols[j], v[j]); }
    }
  }
}

@compute @workgroup_size(WG_N)
fn matmul_register(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let M = params.M;
  let K = params.K;
  let baseA = itemBase(wg.z, params.offsetA, params.strideA, params.headStrideA);
  let baseB = itemBase(wg.z, params.offsetB, params.strideB, params.headStrideB);
  let row0 = wg.y * RT_M;
  let col0 = (wg.x * WG_N + lid.x) * 4u;
  var acc: array<vec4f, RT_M>;
  for (var k0 = 0u; k0 < K; k0 += 4u) {
    let blk = loadBBlock(baseB, k0, col0);
    for (var i = 0u; i < RT_M; i++) {
      let row = min(row0 + i, M - 1u);
      for (var r = 0u; r < 4u; r++) {
        let k = k0 + r;
        let v = select(0.0, a[aIndex(baseA, row, min(k, K - 1u))], k < K);
        acc[i] = fma(vec4f(v), blk[r], acc[i]);
      }
    }
  }
  storeRegisterTile(wg.z, row0, col0, acc);
}

// ---- workgroup-memory kernel ----------------------------------------------------------------------

const TS = 64u;         // output tile edge
const BK = 8u;          // k per tile
const THREADS = 16u;    // 16 x 16 threads, each 4 x 4 outputs strided by 16
const PAD = TS + 1u;    // row pitch of the tiles (avoids bank conflicts on the transposing writes)
var<workgroup> tileA: array<f32, BK * PAD>;  // [k][m]
var<workgroup> tileB: array<f32, BK * PAD>;  // [k][n]

@compute @workgroup_size(THREADS, THREADS)
fn matmul_shared(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) tid: u32,
) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let baseA = itemBase(wg.z, params.offsetA, params.strideA, params.headStrideA);
  let baseB = itemBase(wg.z, params.offsetB, params.strideB, params.headStrideB);
  let row0 = wg.y * TS;
  let col0 = wg.x * TS;
  var acc: array<vec4f, 4>;  // acc[i][j]: row lid.y + 16 i, column lid.x + 16 j
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // neighbouring threads read neighbouring addresses of each operand's memory layout
    for (var e = tid; e < BK * TS; e += THREADS * THREADS) {
      var m = e / BK;
      var kA = e % BK;
      if (TRANS_A) { m = e % TS; kA = e / TS; }
      let gm = row0 + m;
      let gkA = k0 + kA;
      let va = a[aIndex(baseA, min(gm, M - 1u), min(gkA, K - 1u))];
      tileA[kA * PAD + m] = select(0.0, va, gm < M && gkA < K);
      var n = e % TS;
      var kB = e / TS;
      if (TRANS_B) { n = e / BK; kB = e % BK; }
      let gn = col0 + n;
      let gkB = k0 + kB;
      let vb = b[bIndex(baseB, min(gkB, K - 1u), min(gn, N - 1u))];
      tileB[kB * PAD + n] = select(0.0, vb, gn < N && gkB < K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let rowB = kk * PAD + lid.x;
      let bv = vec4f(tileB[rowB], tileB[rowB + THREADS], tileB[rowB + 2u * THREADS], tileB[rowB + 3u * THREADS]);
      for (var i = 0u; i < 4u; i++) {
        acc[i] = fma(vec4f(tileA[kk * PAD + lid.y + THREADS * i]), bv, acc[i]);
      }
    }
    workgroupBarrier();
  }
  let baseC = itemBase(wg.z, params.offsetC, params.strideC, params.headStrideC);
  let cols = col0 + lid.x + THREADS * vec4u(0u, 1u, 2u, 3u);
  let biasv = biasAt(cols);
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + lid.y + THREADS * i;
    let v = params.alpha * acc[i] + biasv;
    for (var j = 0u; j < 4u; j++) {
      if (m < M && cols[j] < N) { storeC(baseC, m, cols[j], v[j]); }
    }
  }
}

// ---- A loads for matmul_subgroup4.wgsl ---------------------------------------------------------------

// the same buffer as a, read 4 floats at a time
@group(0) @binding(8) var<storage, read> a4: array<vec4f>;
// op(A)'s contiguous dimension (K, or M with TRANS_A), strideA, offsetA and ldA are multiples of 4
override VEC_A: bool = false;

// op(A)[m .. m+3, k] (rows past M re-read row M-1; zero at k past K)
fn loadACol(base: u32, m: u32, k: u32) -> vec4f {
  let M = params.M;
  let kk = min(k, params.K - 1u);
  var v: vec4f;
  if (VEC_A && TRANS_A) {
    v = a4[(base + kk * params.ldA + min(m, M - 4u)) / 4u];
  } else {
    v = vec4f(a[aIndex(base, min(m, M - 1u), kk)], a[aIndex(base, min(m + 1u, M - 1u), kk)],
              a[aIndex(base, min(m + 2u, M - 1u), kk)], a[aIndex(base, min(m + 3u, M - 1u), kk)]);
  }
  return select(vec4f(0.0), v, k < params.K);
}

// op(A)[m, k .. k+3] (a row past M re-reads row M-1; zero past K)
fn loadARow(base: u32, m: u32, k: u32) -> vec4f {
  let K = params.K;
  let row = min(m, params.M - 1u);
  var v: vec4f;
  if (VEC_A && !TRANS_A) {
    v = a4[(base + row * params.ldA + min(k, K - 4u)) / 4u];
  } else {
    v = vec4f(a[aIndex(base, row, min(k, K - 1u))], a[aIndex(base, row, min(k + 1u, K - 1u))],
              a[aIndex(base, row, min(k + 2u, K - 1u))], a[aIndex(base, row, min(k + 3u, K - 1u))]);
  }
  return select(vec4f(0.0), v, k + vec4u(0u, 1u, 2u, 3u) < vec4u(K));
}
