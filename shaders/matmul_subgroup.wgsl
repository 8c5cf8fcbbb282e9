// matmul_register_subgroup: matmul.wgsl's register kernel with A shared across the lanes by subgroupShuffle
// (see matmul.wgsl): each lane fetches one k of each of the RT_M rows, the others get it by shuffle, so a
// workgroup loads each A value once instead of once per lane. Needs the WebGPU `subgroups` feature; Device
// skips this file on adapters without it and matmul.ts then uses matmul_register.
enable subgroups;
#include "matmul.wgsl"

const KC = 8u;  // k values per step (one per lane of a subgroup of at least 8)

@compute @workgroup_size(WG_N)
fn matmul_register_subgroup(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(subgroup_size) subgroupSize: u32,
) {
  let M = params.M;
  let K = params.K;
  let baseA = itemBase(wg.z, params.offsetA, params.strideA, params.headStrideA);
  let baseB = itemBase(wg.z, params.offsetB, params.strideB, params.headStrideB);
  let row0 = wg.y * RT_M;
  let col0 = (wg.x * WG_N + lid.x) * 4u;
  // WebGPU subgroups have at least 4 invocations; 8 lets a step cover two 4-row blocks of B
  let quarters = min(KC, subgroupSize) / 4u;
  let slot = lane % (quarters * 4u);
  var acc: array<vec4f, RT_M>;
  for (var k0 = 0u; k0 < K; k0 += quarters * 4u) {
    // this lane's k of every row; the other lanes' values arrive by shuffle
    let kLane = k0 + slot;
    var aLane: array<f32, RT_M>;
    for (var i = 0u; i < RT_M; i++) {
      let v = a[aIndex(baseA, min(row0 + i, M - 1u), min(kLane, K - 1u))];
      aLane[i] = select(0.0, v, kLane < K);
    }
    for (var q = 0u; q < quarters; q++) {
      let blk = loadBBlock(baseB, k0 + 4u * q, col0);
      for (var r = 0u; r < 4u; r++) {
        for (var i = 0u; i < RT_M; i++) {
          acc[i] = fma(vec4f(subgroupShuffle(aLane[i], 4u * q + r)), blk[r], acc[i]);
        }
      }
    }
  }
  storeRegisterTile(wg.z, row0, col0, acc);
}
