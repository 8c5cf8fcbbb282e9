// Reductions. sum_rows: out[c] = sum over rows r of x[r, c] (bias gradients, batch sums).
// sum_all: one workgroup tree-sums everything (losses, small tensors).

struct Params {
  rows: u32,
  cols: u32,
  alpha: f32,   // multiplies the result
  beta: f32,    // out = alpha * sum + beta * out (beta = 1 accumulates)
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 64;
#include "grid.wgsl"

// One thread per column, rows summed sequentially (in order, like a float32 reference loop).
@compute @workgroup_size(WG)
fn sum_rows(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.cols) { return; }
  var acc = 0.0;
  for (var r = 0u; r < params.rows; r++) { acc += x[r * params.cols + c]; }
  let prev = select(0.0, out[c], params.beta != 0.0);
  out[c] = params.alpha * acc + params.beta * prev;
}

// GPUs: sum_rows alone has one thread per column, far too little parallel work for a few hundred
// columns (22 ms of a 107 ms ViT-Ti step on an H200). This first pass sums CHUNK-row slices, one
// row of partial sums per slice (out: [ceil(rows / CHUNK), cols]); sum_rows then adds those rows.
override CHUNK: u32 = 64;

@compute @workgroup_size(WG)
fn sum_rows_chunks(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.cols) { return; }
  let first = gid.y * CHUNK;
  let end = min(first + CHUNK, params.rows);
  var acc = 0.0;
  for (var r = first; r < end; r++) { acc += x[r * params.cols + c]; }
  out[gid.y * params.cols + c] = acc;
}

const SUM_WG: u32 = 256;
var<workgroup> partial: array<f32, SUM_WG>;

@compute @workgroup_size(SUM_WG)
fn sum_all(@builtin(local_invocation_id) lid: vec3u) {
  let n = params.rows * params.cols;
  var acc = 0.0;
  for (var i = lid.x; i < n; i += SUM_WG) { acc += x[i]; }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var s = SUM_WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { partial[lid.x] += partial[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let prev = select(0.0, out[0], params.beta != 0.0);
    out[0] = params.alpha * partial[0] + params.beta * prev;
  }
}

// broadcast_rows: out[r, c] = alpha * x[c] (backward of sum_rows)
@compute @workgroup_size(WG)
fn broadcast_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= params.rows * params.cols) { return; }
  out[i] = params.alpha * x[i % params.cols];
}
