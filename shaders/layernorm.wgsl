// LayerNorm over the last axis of x viewed as [rows, cols], torch semantics: biased variance by
// two passes (mean, then mean of squared deviations), rstd = 1 / sqrt(var + eps),
// y = (x - mean) * rstd * weight + bias. One workgroup per row; rows past 65535 spill into y.
// Backward: dx per row (one workgroup per row); dweight/dbias as fixed-order column sums
// (partial sums over CHUNK_ROWS rows, then a sum over the partials), so results are deterministic.

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}
@group(0) @binding(0) var<uniform> params: Params;

#include "rows.wgsl"

override CHUNK_ROWS: u32 = 32;  // rows per partial sum of the parameter gradients

// ---- forward -----------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;

@compute @workgroup_size(WG)
fn layernorm_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= params.rows) { return; }
  let d = params.cols;
  let base = row * d;

  var s = 0.0;
  for (var c = lid.x; c < d; c += WG) { s += x[base + c]; }
  let mean = workgroup_sum(lid.x, vec2f(s, 0.0)).x / f32(d);

  var sq = 0.0;
  for (var c = lid.x; c < d; c += WG) {
    let t = x[base + c] - mean;
    sq += t * t;
  }
  let variance = workgroup_sum(lid.x, vec2f(sq, 0.0)).x / f32(d);
  let rstd = 1.0 / sqrt(variance + params.eps);

  for (var c = lid.x; c < d; c += WG) {
    y[base + c] = (x[base + c] - mean) * rstd * weight[c] + bias[c];
  }
  if (lid.x == 0u) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
}

// ---- backward: dx -----------------------------------------------------------------------
// With xhat = (x - mean) * rstd and g = dy * weight:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// With ACCUMULATE it writes dx_pending + dx instead: the tape hands it the gradient
// that x already has from its other consumers (a residual add), which saves that add's pass.
@group(0) @binding(3) var<storage, read> mean_in: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read> dx_pending: array<f32>;  // (dy stands in without ACCUMULATE)
override ACCUMULATE: bool = false;

// (mean(g), mean(g * xhat)) of a row, summed across the workgroup
fn backward_means(base: u32, mean: f32, rstd: f32, lid: u32) -> vec2f {
  let d = params.cols;
  var sums = vec2f(0.0);
  for (var c = lid; c < d; c += WG) {
    let g = dy[base + c] * weight[c];
    let xhat = (x[base + c] - mean) * rstd;
    sums += vec2f(g, g * xhat);
  }
  return workgroup_sum(lid, sums) / f32(d);
}

fn backward_dx(i: u32, c: u32, mean: f32, rstd: f32, means: vec2f) -> f32 {
  let g = dy[i] * weight[c];
  let xhat = (x[i] - mean) * rstd;
  return rstd * (g - means.x - xhat * means.y);
}

@compute @workgroup_size(WG)
fn layernorm_backward_input(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  let mean = mean_in[row];
  let rstd = rstd_in[row];
  let means = backward_means(base, mean, rstd, lid.x);
  for (var c = lid.x; c < params.cols; c += WG) {
    let own = backward_dx(base + c, c, mean, rstd, means);
    // pending first, in the order of the tape's add(pending, dx)
    dx[base + c] = select(own, dx_pending[base + c] + own, ACCUMULATE);
  }
}

// ---- backward: dweight = sum over rows of dy * xhat, dbias = sum over rows of dy -------------
// Stage 1: thread (col, chunk) sums CHUNK_ROWS rows in order into partial_dw/partial_db[chunk, col].
@group(0) @binding(2) var<storage, read> mean_rows: array<f32>;
@group(0) @binding(3) var<storage, read> rstd_rows: array<f32>;
@group(0) @binding(4) var<storage, read> dy_rows: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial_dw: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial_db: array<f32>;

const PARAM_WG = 64u;  // columns per workgroup of the parameter-gradient sums (src/ops/layernorm.ts reads it)

@compute @workgroup_size(PARAM_WG)
fn layernorm_backward_params_partial(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let chunk = gid.y;
  let d = params.cols;
  if (c >= d) { return; }
  let first = chunk * CHUNK_ROWS;
  let last = min(first + CHUNK_ROWS, params.rows);
  var dw = 0.0;
  var db = 0.0;
  for (var r = first; r < last; r++) {
    let g = dy_rows[r * d + c];
    dw += g * (x[r * d + c] - mean_rows[r]) * rstd_rows[r];
    db += g;
  }
  partial_dw[chunk * d + c] = dw;
  partial_db[chunk * d + c] = db;
}

// Stage 2: thread per column sums the partials of all chunks in order (params.rows = chunks here).
@group(0) @binding(1) var<storage, read> partial_dw_in: array<f32>;
@group(0) @binding(2) var<storage, read> partial_db_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(PARAM_WG)
fn layernorm_backward_params_finish(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let d = params.cols;
  if (c >= d) { return; }
  var dw = 0.0;
  var db = 0.0;
  for (var k = 0u; k < params.rows; k++) {
    dw += partial_dw_in[k * d + c];
    db += partial_db_in[k * d + c];
  }
  dweight[c] = dw;
  dbias[c] = db;
}
