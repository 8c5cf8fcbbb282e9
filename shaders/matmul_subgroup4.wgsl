// matmul_subgroup4: matmul.wgsl's product for SwiftShader (Chromium's software adapter), whose subgroups
// are 4 lanes, one SIMD vector each. Every buffer load there is a gather of one float per lane, so loads,
// not FMAs, set the speed, and SwiftShader keeps loops and arrays as written (an array indexed in a loop
// lives in memory). So: one workgroup = one subgroup of 4 lanes; each lane owns 4 adjacent columns of 16
// rows in 16 named vec4 accumulators; per 4 k the lanes load 16 rows of A between them (4 vec4 each)
// and share them by subgroupBroadcast, each loads its own 4 x 4 block of B, then 64 vec4 FMAs.
// Needs subgroups of at least 4 lanes (matmul.ts checks; Device compiles this file only with subgroups).
enable subgroups;
#include "matmul.wgsl"
#include "fma4.wgsl"

// a[i] = op(A)[m0 + 4 g + i, k .. k+3] spread over the lanes as loaded below, turned into the row
// for output row 4 g + i: with TRANS_A lane l holds op(A)[m0 + 4 g .. +3, k + l], so row i is component i
// of every lane; else lane l holds row m0 + 4 g + l, so row i is lane i's vector.
fn rowT(v: f32) -> vec4f {
  return vec4f(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
}

// lane `lane`'s share of A for rows m0 + 4 g .. m0 + 4 g + 3 at k: see rowT
fn loadAShare(base: u32, m: u32, k: u32, lane: u32) -> vec4f {
  if (TRANS_A) { return loadACol(base, m, k + lane); }
  return loadARow(base, m + lane, k);
}

const LANES = 4u;  // one workgroup = one subgroup (src/ops/matmul.ts reads these)
const ROWS = 16u;  // output rows per workgroup

@compute @workgroup_size(LANES)
fn matmul_subgroup4(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let K = params.K;
  let baseA = itemBase(wg.z, params.offsetA, params.strideA, params.headStrideA);
  let baseB = itemBase(wg.z, params.offsetB, params.strideB, params.headStrideB);
  let m0 = wg.y * ROWS;
  let n0 = (wg.x * LANES + lane) * 4u;
  var c0 = vec4f(0.0); var c1 = vec4f(0.0); var c2 = vec4f(0.0); var c3 = vec4f(0.0);
  var c4 = vec4f(0.0); var c5 = vec4f(0.0); var c6 = vec4f(0.0); var c7 = vec4f(0.0);
  var c8 = vec4f(0.0); var c9 = vec4f(0.0); var c10 = vec4f(0.0); var c11 = vec4f(0.0);
  var c12 = vec4f(0.0); var c13 = vec4f(0.0); var c14 = vec4f(0.0); var c15 = vec4f(0.0);
  for (var k = 0u; k < K; k += 4u) {
    let b = loadBBlock(baseB, k, min(n0, params.N - 1u));
    let a0 = loadAShare(baseA, m0, k, lane);
    let a1 = loadAShare(baseA, m0 + 4u, k, lane);
    let a2 = loadAShare(baseA, m0 + 8u, k, lane);
    let a3 = loadAShare(baseA, m0 + 12u, k, lane);
    if (TRANS_A) {
      c0 = fma4(c0, rowT(a0.x), b); c1 = fma4(c1, rowT(a0.y), b); c2 = fma4(c2, rowT(a0.z), b); c3 = fma4(c3, rowT(a0.w), b);
      c4 = fma4(c4, rowT(a1.x), b); c5 = fma4(c5, rowT(a1.y), b); c6 = fma4(c6, rowT(a1.z), b); c7 = fma4(c7, rowT(a1.w), b);
      c8 = fma4(c8, rowT(a2.x), b); c9 = fma4(c9, rowT(a2.y), b); c10 = fma4(c10, rowT(a2.z), b); c11 = fma4(c11, rowT(a2.w), b);
      c12 = fma4(c12, rowT(a3.x), b); c13 = fma4(c13, rowT(a3.y), b); c14 = fma4(c14, rowT(a3.z), b); c15 = fma4(c15, rowT(a3.w), b);
    } else {
      c0 = fma4(c0, subgroupBroadcast(a0, 0u), b); c1 = fma4(c1, subgroupBroadcast(a0, 1u), b);
      c2 = fma4(c2, subgroupBroadcast(a0, 2u), b); c3 = fma4(c3, subgroupBroadcast(a0, 3u), b);
      c4 = fma4(c4, subgroupBroadcast(a1, 0u), b); c5 = fma4(c5, subgroupBroadcast(a1, 1u), b);
      c6 = fma4(c6, subgroupBroadcast(a1, 2u), b); c7 = fma4(c7, subgroupBroadcast(a1, 3u), b);
      c8 = fma4(c8, subgroupBroadcast(a2, 0u), b); c9 = fma4(c9, subgroupBroadcast(a2, 1u), b);
      c10 = fma4(c10, subgroupBroadcast(a2, 2u), b); c11 = fma4(c11, subgroupBroadcast(a2, 3u), b);
      c12 = fma4(c12, subgroupBroadcast(a3, 0u), b); c13 = fma4(c13, subgroupBroadcast(a3, 1u), b);
      c14 = fma4(c14, subgroupBroadcast(a3, 2u), b); c15 = fma4(c15, subgroupBroadcast(a3, 3u), b);
    }
  }
  if (n0 >= params.N) { return; }
  storeRegisterTile(wg.z, m0, n0, array<vec4f, RT_M>(c0, c1, c2, c3, c4, c5, c6, c7));
  if (m0 + 8u < params.M) { storeRegisterTile(wg.z, m0 + 8u, n0, array<vec4f, RT_M>(c8, c9, c10, c11, c12, c13, c14, c15)); }
}
