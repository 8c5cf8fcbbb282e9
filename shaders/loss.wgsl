// Softmax cross-entropy over logits [rows, cols] with int32 labels [rows], torch semantics
// (nn.CrossEntropyLoss, reduction 'mean', label_smoothing s):
//   loss_b = (1 - s) * (lse_b - x_b[label_b]) + s * (lse_b - mean_j x_b[j]),  loss = mean_b loss_b.
// Log-probabilities are formed as (x - max) - log(sum exp(x - max)) so large logits keep their
// precision. One workgroup per row; rows past 65535 spill into y. Labels are checked on the host
// (src/ops/loss.ts); one outside [0, cols) would give a NaN loss here.

struct Params {
  rows: u32,
  cols: u32,
  smoothing: f32,  // label smoothing s
  scale: f32,      // 1 / rows for the batch mean
}
@group(0) @binding(0) var<uniform> params: Params;

#include "rows.wgsl"

const LOWEST: f32 = -0x1.fffffep+127f; // the lowest finite f32

fn quiet_nan() -> f32 {
  var bits = 0x7fc00000u; // a var, so the bitcast is not a constant expression
  return bitcast<f32>(bits);
}

// ---- forward: per-row loss and softmax statistics (max, log-sum-exp of x - max) --------------
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats_out: array<vec2f>;

// (max, sum of exp(x - max), sum of (x - max)) over a row of the logits, in every invocation of the
// row's workgroup: the start of both the loss and the softmax
fn row_softmax_stats(base: u32, n: u32, lid: u32) -> vec3f {
  var m = LOWEST;
  for (var c = lid; c < n; c += WG) { m = max(m, logits[base + c]); }
  let row_max = workgroup_max(lid, m);
  var sums = vec2f(0.0);
  for (var c = lid; c < n; c += WG) {
    let shifted = logits[base + c] - row_max;
    sums += vec2f(exp(shifted), shifted);
  }
  let totals = workgroup_sum(lid, sums);
  return vec3f(row_max, totals);
}

@compute @workgroup_size(WG)
fn cross_entropy_rows(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= params.rows) { return; }
  let n = params.cols;
  let base = row * n;

  let stats = row_softmax_stats(base, n, lid.x);
  let row_max = stats.x;
  let log_sum = log(stats.y);

  if (lid.x == 0u) {
    let label = labels[row];
    var loss = quiet_nan();
    if (label >= 0 && u32(label) < n) {
      let nll = log_sum - (logits[base + u32(label)] - row_max);
      let smooth_loss = log_sum - stats.z / f32(n);
      loss = (1.0 - params.smoothing) * nll + params.smoothing * smooth_loss;
    }
    row_loss[row] = loss;
    stats_out[row] = vec2f(row_max, log_sum);
  }
}

// ---- forward: out[0] = scale * sum of the row losses (one workgroup, fixed order) ----------
@group(0) @binding(1) var<storage, read> row_loss_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss_out: array<f32>;

@compute @workgroup_size(WG)
fn cross_entropy_mean(@builtin(local_invocation_id) lid: vec3u) {
  var acc = 0.0;
  for (var r = lid.x; r < params.rows; r += WG) { acc += row_loss_in[r]; }
  let total = workgroup_sum(lid.x, vec2f(acc, 0.0)).x;
  if (lid.x == 0u) { loss_out[0] = total * params.scale; }
}

// ---- backward: dlogits = (softmax - target) * scale * dloss, one thread per element ----------
// target = (1 - s) * onehot(label) + s / cols
@group(0) @binding(3) var<storage, read> stats_in: array<vec2f>;
@group(0) @binding(4) var<storage, read> dloss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

const BACKWARD_WG = 256u;  // src/ops/loss.ts reads it

@compute @workgroup_size(BACKWARD_WG)
fn cross_entropy_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * BACKWARD_WG;
  let n = params.cols;
  if (i >= params.rows * n) { return; }
  let row = i / n;
  let c = i % n;
  let st = stats_in[row];
  let p = exp((logits[i] - st.x) - st.y);
  var want = params.smoothing / f32(n);
  if (i32(c) == labels[row]) { want += 1.0 - params.smoothing; }
  dlogits[i] = (p - want) * (params.scale * dloss[0]);
}

// ---- softmax over the last axis (forward only) ---------------------------------------------
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;

@compute @workgroup_size(WG)
fn softmax_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= params.rows) { return; }
  let n = params.cols;
  let base = row * n;
  let stats = row_softmax_stats(base, n, lid.x);
  let row_max = stats.x;
  let inv_sum = 1.0 / stats.y;
  for (var c = lid.x; c < n; c += WG) { probs[base + c] = exp(logits[base + c] - row_max) * inv_sum; }
}
