// matmul_texture: matmul.wgsl's product for CPU rasterisers (lavapipe), with both operands read from
// rgba32float textures. On lavapipe a storage-buffer load inside a loop compiles to a branchy loop over
// the SIMD lanes, about 7 instructions per float and lane, which made loads, not FMAs, the limit of the
// buffer kernels; a textureLoad fetches 4 floats for all 8 lanes in ~65 vector instructions, and a
// subgroup shuffle hands one lane's texel of A to the others.
//
// Each texture is the image of an operand as stored (a [M, K], or [K, M] with TRANS_A; b [K, N], or
// [N, K] with TRANS_B): texel (x, z * rows + r) = elements (r, 4x .. 4x+3) of batch item z, whose stored
// rows are stacked down the texture. matmul.ts fills it by copyBufferToTexture where rows are aligned
// (rounding a row up to whole texels within its pitch), else by pack_operand. Values past M or N (and
// texels past the edge, which robust access clamps) feed only outputs that are not stored; values past K
// are masked, so whatever lies there (the next item's rows, a row's padding) does not matter.
// Needs subgroups of at least LANES invocations (Device compiles this file only where the device has
// subgroups; matmul.ts checks the width and falls back to matmul_register).
enable subgroups;
#include "matmul.wgsl"

// one workgroup = one subgroup of 8 lanes, each owning 4 adjacent columns; ROWS rows per workgroup
const LANES = 8u;
const ROWS = 16u;  // 16 x 4 accumulators per lane
const_assert ROWS == 2u * LANES;
const_assert RT_M == LANES;  // the accumulators are matmul.wgsl's register tiles, one per half

@group(0) @binding(1) var texA: texture_2d<f32>;
@group(0) @binding(2) var texB: texture_2d<f32>;
// with SUM_A (TRANS_A, one batch item): sumA[m] = sum over k of op(A)[m, k] (+= when accumulating), from
// the texels of A the product loads anyway: a linear layer's bias gradient beside dW = dy^T x
@group(0) @binding(7) var<storage, read_write> sumA: array<f32>;
override SUM_A: bool = false;

// acc += a.x * B[k] + a.y * B[k+1] + a.z * B[k+2] + a.w * B[k+3] for one row's 4 values of A
fn fma4(acc: vec4f, a: vec4f, b: mat4x4f) -> vec4f {
  return fma(vec4f(a.w), b[3], fma(vec4f(a.z), b[2], fma(vec4f(a.y), b[1], fma(vec4f(a.x), b[0], acc))));
}

// b[r] = op(B)[k + r, col0 .. col0+3] (zero past K); `first` is item z's first texture row
fn loadB(first: u32, k: u32, col0: u32) -> mat4x4f {
  var b: mat4x4f;
  if (TRANS_B) {
    // texel (k / 4, n) holds op(B)[k .. k+3, n]: four columns, transposed in registers (free: one
    // vector register per component either way)
    for (var j = 0u; j < 4u; j++) { b[j] = textureLoad(texB, vec2u(k / 4u, first + col0 + j), 0); }
    b = transpose(b);
  } else {
    for (var r = 0u; r < 4u; r++) { b[r] = textureLoad(texB, vec2u(col0 / 4u, first + k + r), 0); }
  }
  for (var r = 0u; r < 4u; r++) { b[r] = select(vec4f(0.0), b[r], k + r < params.K); }
  return b;
}

// op(A)[row, k .. k+3] for row = row0 + i of 16, from the two texels every lane fetched (`near`, `far`)
fn rowOfA(near: vec4f, far: vec4f, i: u32) -> vec4f {
  if (TRANS_A) {
    // lane q + 4 r holds texels (row0 / 4 + q, k + r) (near) and (.., k + 2 + r) (far), q < 4, r < 2:
    // row i is component i % 4 of column q = i / 4 in each of the four k rows
    let q = i / 4u;
    let c = i % 4u;
    return vec4f(subgroupShuffle(near[c], q), subgroupShuffle(near[c], q + 4u),
                 subgroupShuffle(far[c], q), subgroupShuffle(far[c], q + 4u));
  }
  // lane l holds row row0 + l (near) and row0 + 8 + l (far)
  if (i < LANES) { return subgroupShuffle(near, i); }
  return subgroupShuffle(far, i - LANES);
}

@compute @workgroup_size(LANES)
fn matmul_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let K = params.K;
  let row0 = wg.y * ROWS;
  let col0 = (wg.x * LANES + lane) * 4u;
  let firstA = wg.z * select(params.M, K, TRANS_A);  // item z's first row in texA and texB
  let firstB = wg.z * select(K, params.N, TRANS_B);
  var top: array<vec4f, RT_M>;     // rows row0 .. row0 + 7, columns col0 .. col0 + 3
  var bottom: array<vec4f, RT_M>;  // rows row0 + 8 .. row0 + 15
  var sums = vec4f(0.0);           // SUM_A: rows row0 + 4 (lane % 4) .., over k = lane / 4 (mod 2)
  for (var k = 0u; k < K; k += 4u) {
    let b = loadB(firstB, k, col0);
    var near: vec4f;
    var far: vec4f;
    if (TRANS_A) {
      let x = row0 / 4u + lane % 4u;
      let r = k + lane / 4u;
      near = select(vec4f(0.0), textureLoad(texA, vec2u(x, firstA + r), 0), r < K);
      far = select(vec4f(0.0), textureLoad(texA, vec2u(x, firstA + r + 2u), 0), r + 2u < K);
      if (SUM_A) { sums += near + far; }
    } else {
      let inK = k + vec4u(0u, 1u, 2u, 3u) < vec4u(K);
      near = select(vec4f(0.0), textureLoad(texA, vec2u(k / 4u, firstA + row0 + lane), 0), inK);
      far = select(vec4f(0.0), textureLoad(texA, vec2u(k / 4u, firstA + row0 + LANES + lane), 0), inK);
    }
    for (var i = 0u; i < RT_M; i++) {
      top[i] = fma4(top[i], rowOfA(near, far, i), b);
      bottom[i] = fma4(bottom[i], rowOfA(near, far, i + LANES), b);
    }
  }
  storeRegisterTile(wg.z, row0, col0, top);
  if (row0 + LANES < params.M) { storeRegisterTile(wg.z, row0 + LANES, col0, bottom); }
  if (SUM_A && TRANS_A && wg.x == 0u) {
    // lanes q and q + 4 hold the same 4 rows, the other half of the k values
    let total = sums + subgroupShuffle(sums, lane ^ 4u);
    for (var j = 0u; j < 4u; j++) {
      let m = row0 + 4u * lane + j;
      if (lane < 4u && m < params.M) {
        if (ACCUMULATE) { sumA[m] += total[j]; } else { sumA[m] = total[j]; }
      }
    }
  }
}

// ---- packing (operands whose rows copyBufferToTexture cannot take) ----------------------------------

// An operand as stored: element (r, c) of item z is src[offset + (z / heads) * stride + (z % heads) * headStride + r * ld + c]
struct Pack {
  rows: u32,
  cols: u32,
  ld: u32,
  offset: u32,
  stride: u32,
  heads: u32,
  headStride: u32,
}
@group(0) @binding(0) var<uniform> pack: Pack;
@group(0) @binding(2) var packed: texture_storage_2d<rgba32float, write>;

// texel (x, z * rows + r) = elements (r, 4x .. 4x+3) of item z, zero past the row's end
const PACK_X = 16u;  // texels per row of a workgroup (src/ops/matmul.ts reads these)
const PACK_Y = 4u;   // rows per workgroup
@compute @workgroup_size(PACK_X, PACK_Y)
fn pack_operand(@builtin(global_invocation_id) id: vec3u) {
  let c0 = id.x * 4u;
  let r = id.y;
  if (c0 >= pack.cols || r >= pack.rows) { return; }
  let base = pack.offset + (id.z / pack.heads) * pack.stride + (id.z % pack.heads) * pack.headStride + r * pack.ld;
  var v = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    v[j] = select(0.0, a[base + min(c0 + j, pack.cols - 1u)], c0 + j < pack.cols);
  }
  textureStore(packed, vec2u(id.x, id.z * pack.rows + r), v);
}
