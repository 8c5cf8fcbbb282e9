// layernorm.wgsl's row kernels for CPU rasterisers (lavapipe), one 8-lane subgroup per row and no
// barriers: lane l holds the strided partial sums of threads l and l + 8 of layernorm.wgsl's 16-thread
// workgroup, and shuffles then add them in that workgroup's tree order, so the results are bit for bit
// those of WG = 16 (the default on CPUs). Its barriers are the cost this avoids: on lavapipe each one
// switches between the workgroup's SIMD halves.
// Needs subgroups of at least LANES invocations (src/ops/layernorm.ts checks; Device compiles this file
// only where the device has subgroups).
enable subgroups;
#include "layernorm.wgsl"

const LANES = 8u;
const THREADS = 2u * LANES;  // the workgroup size whose sums these kernels reproduce

// workgroup_sum's tree over THREADS partials, lane l holding partials l (lo) and l + 8 (hi); every lane
// gets the total
fn subgroup_tree_sum(lo: vec2f, hi: vec2f) -> vec2f {
  var v = lo + hi;                     // s = 8
  v += subgroupShuffleDown(v, 4u);     // s = 4, 2, 1: lanes below s add lane l + s
  v += subgroupShuffleDown(v, 2u);
  v += subgroupShuffleDown(v, 1u);
  return subgroupBroadcast(v, 0u);
}

@compute @workgroup_size(LANES)
fn layernorm_forward_subgroup(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let row = row_index(wid, nwg);
  if (row >= params.rows) { return; }
  let d = params.cols;
  let base = row * d;

  var lo = 0.0;
  var hi = 0.0;
  for (var c = lane; c < d; c += THREADS) {
    lo += x[base + c];
    if (c + LANES < d) { hi += x[base + c + LANES]; }
  }
  let mean = subgroup_tree_sum(vec2f(lo, 0.0), vec2f(hi, 0.0)).x / f32(d);

  var sq_lo = 0.0;
  var sq_hi = 0.0;
  for (var c = lane; c < d; c += THREADS) {
    let t = x[base + c] - mean;
    sq_lo += t * t;
    if (c + LANES < d) {
      let u = x[base + c + LANES] - mean;
      sq_hi += u * u;
    }
  }
  let variance = subgroup_tree_sum(vec2f(sq_lo, 0.0), vec2f(sq_hi, 0.0)).x / f32(d);
  let rstd = 1.0 / sqrt(variance + params.eps);

  for (var c = lane; c < d; c += LANES) {
    y[base + c] = (x[base + c] - mean) * rstd * weight[c] + bias[c];
  }
  if (lane == 0u) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
}

// (g, g * xhat) of column c, as backward_means sums them
fn backward_terms(base: u32, c: u32, mean: f32, rstd: f32) -> vec2f {
  let g = dy[base + c] * weight[c];
  let xhat = (x[base + c] - mean) * rstd;
  return vec2f(g, g * xhat);
}

@compute @workgroup_size(LANES)
fn layernorm_backward_input_subgroup(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let row = row_index(wid, nwg);
  if (row >= params.rows) { return; }
  let d = params.cols;
  let base = row * d;
  let mean = mean_in[row];
  let rstd = rstd_in[row];
  var lo = vec2f(0.0);
  var hi = vec2f(0.0);
  for (var c = lane; c < d; c += THREADS) {
    lo += backward_terms(base, c, mean, rstd);
    if (c + LANES < d) { hi += backward_terms(base, c + LANES, mean, rstd); }
  }
  let means = subgroup_tree_sum(lo, hi) / f32(d);
  for (var c = lane; c < d; c += LANES) {
    let own = backward_dx(base + c, c, mean, rstd, means);
    dx[base + c] = select(own, dx_pending[base + c] + own, ACCUMULATE);
  }
}
