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
#include "fma4.wgsl"

// One workgroup = one subgroup of 8 lanes, each owning 4 adjacent columns of GROUPS register tiles of
// 8 rows: 32 or 64 rows per workgroup. More rows per lane load B fewer times per FMA (a texel load is a
// call into lavapipe's sampling code): 64 rows run ~1.4x faster than the 16 of before. The accumulators
// are spilled to the stack either way (they are 128 or 256 vector registers' worth); each is loaded and
// stored once per 4 k. Every output is still one fma chain over k in order, whatever GROUPS is.
const LANES = 8u;
override GROUPS: u32 = 8u;  // 4 or 8 (matmul.ts picks by M)
const_assert RT_M == LANES;  // the accumulators are matmul.wgsl's register tiles, one per group

@group(0) @binding(1) var texA: texture_2d<f32>;
@group(0) @binding(2) var texB: texture_2d<f32>;
// with SUM_A (TRANS_A, one batch item): sumA[m] = sum over k of op(A)[m, k] (+= when accumulating), from
// the texels of A the product loads anyway: a linear layer's bias gradient beside dW = dy^T x
@group(0) @binding(7) var<storage, read_write> sumA: array<f32>;
override SUM_A: bool = false;

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

// op(A)[row0 + i, k .. k+3] from the GROUPS texels every lane fetched (`t`)
fn rowOfA(t: array<vec4f, 8>, i: u32) -> vec4f {
  if (TRANS_A) {
    // t[4 h + r] of lane q is texel (row0 / 4 + 8 h + q, k + r): row i is component i % 4 of lane
    // (i % 32) / 4's texels of the four k rows of h = i / 32
    let h = i / 32u;
    let q = (i % 32u) / 4u;
    let c = i % 4u;
    return vec4f(subgroupShuffle(t[4u * h][c], q), subgroupShuffle(t[4u * h + 1u][c], q),
                 subgroupShuffle(t[4u * h + 2u][c], q), subgroupShuffle(t[4u * h + 3u][c], q));
  }
  // t[g] of lane l is row row0 + 8 g + l
  return subgroupShuffle(t[i / LANES], i % LANES);
}

@compute @workgroup_size(LANES)
fn matmul_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let K = params.K;
  let row0 = wg.y * LANES * GROUPS;
  let col0 = (wg.x * LANES + lane) * 4u;
  let firstA = wg.z * select(params.M, K, TRANS_A);  // item z's first row in texA and texB
  let firstB = wg.z * select(K, params.N, TRANS_B);
  // accG[i]: row row0 + 8 G + i, columns col0 .. col0 + 3 (separate arrays, not one indexed by G: those
  // were not unrolled into registers and ran 3x slower)
  var acc0: array<vec4f, RT_M>;
  var acc1: array<vec4f, RT_M>;
  var acc2: array<vec4f, RT_M>;
  var acc3: array<vec4f, RT_M>;
  var acc4: array<vec4f, RT_M>;
  var acc5: array<vec4f, RT_M>;
  var acc6: array<vec4f, RT_M>;
  var acc7: array<vec4f, RT_M>;
  // SUM_A: rows row0 + 32 h + 4 lane .., over k % 4 in {0, 2} and {1, 3}, the order of before
  var sumsEven0 = vec4f(0.0);
  var sumsOdd0 = vec4f(0.0);
  var sumsEven1 = vec4f(0.0);
  var sumsOdd1 = vec4f(0.0);
  for (var k = 0u; k < K; k += 4u) {
    let b = loadB(firstB, k, col0);
    var t: array<vec4f, 8>;
    if (TRANS_A) {
      for (var g = 0u; g < GROUPS; g++) {
        let r = g % 4u;
        t[g] = select(vec4f(0.0), textureLoad(texA, vec2u(row0 / 4u + 8u * (g / 4u) + lane, firstA + k + r), 0), k + r < K);
      }
      if (SUM_A) {
        sumsEven0 += t[0] + t[2];
        sumsOdd0 += t[1] + t[3];
        if (GROUPS > 4u) {
          sumsEven1 += t[4] + t[6];
          sumsOdd1 += t[5] + t[7];
        }
      }
    } else {
      let inK = k + vec4u(0u, 1u, 2u, 3u) < vec4u(K);
      for (var g = 0u; g < GROUPS; g++) {
        t[g] = select(vec4f(0.0), textureLoad(texA, vec2u(k / 4u, firstA + row0 + LANES * g + lane), 0), inK);
      }
    }
    for (var i = 0u; i < RT_M; i++) {
      acc0[i] = fma4(acc0[i], rowOfA(t, i), b);
      acc1[i] = fma4(acc1[i], rowOfA(t, LANES + i), b);
      acc2[i] = fma4(acc2[i], rowOfA(t, 2u * LANES + i), b);
      acc3[i] = fma4(acc3[i], rowOfA(t, 3u * LANES + i), b);
      if (GROUPS > 4u) {
        acc4[i] = fma4(acc4[i], rowOfA(t, 4u * LANES + i), b);
        acc5[i] = fma4(acc5[i], rowOfA(t, 5u * LANES + i), b);
        acc6[i] = fma4(acc6[i], rowOfA(t, 6u * LANES + i), b);
        acc7[i] = fma4(acc7[i], rowOfA(t, 7u * LANES + i), b);
      }
    }
  }
  storeRegisterTile(wg.z, row0, col0, acc0);
  if (row0 + LANES < params.M) { storeRegisterTile(wg.z, row0 + LANES, col0, acc1); }
  if (row0 + 2u * LANES < params.M) { storeRegisterTile(wg.z, row0 + 2u * LANES, col0, acc2); }
  if (row0 + 3u * LANES < params.M) { storeRegisterTile(wg.z, row0 + 3u * LANES, col0, acc3); }
  if (GROUPS > 4u) {
    if (row0 + 4u * LANES < params.M) { storeRegisterTile(wg.z, row0 + 4u * LANES, col0, acc4); }
    if (row0 + 5u * LANES < params.M) { storeRegisterTile(wg.z, row0 + 5u * LANES, col0, acc5); }
    if (row0 + 6u * LANES < params.M) { storeRegisterTile(wg.z, row0 + 6u * LANES, col0, acc6); }
    if (row0 + 7u * LANES < params.M) { storeRegisterTile(wg.z, row0 + 7u * LANES, col0, acc7); }
  }
  if (SUM_A && TRANS_A && wg.x == 0u) {
    // lane q holds rows 4q .. 4q+3 of each block of 32
    for (var h = 0u; h < GROUPS / 4u; h++) {
      let total = select(sumsEven0 + sumsOdd0, sumsEven1 + sumsOdd1, h == 1u);
      for (var j = 0u; j < 4u; j++) {
        let m = row0 + 32u * h + 4u * lane + j;
        if (m < params.M) {
          if (ACCUMULATE) { sumA[m] += total[j]; } else { sumA[m] = total[j]; }
        }
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
