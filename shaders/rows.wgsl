// Helpers for row kernels that run one workgroup of WG threads per row (layernorm.wgsl, loss.wgsl
// include this file): tree reductions across the workgroup and the row a workgroup owns.

override WG: u32 = 64;  // threads per row (a power of two)

var<workgroup> partial: array<vec2f, WG>;

// Tree sum of one vec2 per thread across the workgroup; every thread gets the total.
fn workgroup_sum(lid: u32, v: vec2f) -> vec2f {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before it is reused
  return total;
}

// Tree maximum of one value per thread; every thread gets it.
fn workgroup_max(lid: u32, v: f32) -> f32 {
  partial[lid] = vec2f(v, 0.0);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid].x = max(partial[lid].x, partial[lid + s].x); }
    workgroupBarrier();
  }
  let total = partial[0].x;
  workgroupBarrier();
  return total;
}

// Rows past 65535 workgroups spill into y.
fn row_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}
