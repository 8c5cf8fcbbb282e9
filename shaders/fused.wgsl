// Backward passes of the fused ops (src/ops/fused.ts) that are not matmuls.
//
// gelu_backward_bias: for y = gelu(z), z = x W^T + b: dz = dy * gelu'(z) and db = column sums of dz in one
// pass over dy and z (unfused: the GELU backward, then a bias sum that reads dz again). One thread per
// column sums the rows in order, as reduce.wgsl's sum_rows does: the same bits, no atomics.

struct Params {
  rows: u32,
  cols: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

#include "gelu.wgsl"

@compute @workgroup_size(64)
fn gelu_backward_bias(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.cols) { return; }
  var acc = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    let i = r * params.cols + c;
    let g = dy[i] * gelu_grad(z[i]);
    dz[i] = g;
    acc += g;
  }
  db[c] = acc;
}
