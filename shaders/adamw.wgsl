// One AdamW step in place, following torch.optim.AdamW (single-tensor path) operation by
// operation, in float32:
//   p *= 1 - lr * wd;  m = lerp(m, g, 1 - b1);  v = v * b2 + (1 - b2) * g * g;
//   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// Scalars that torch computes in float64 on the host (1 - lr*wd, 1 - b1, lr / bc1, sqrt(bc2))
// come in as uniforms computed the same way on the CPU.

struct Params {
  n: u32,
  decay: f32,           // 1 - lr * weight_decay
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  step_size: f32,       // lr / (1 - beta1^t)
  sqrt_bc2: f32,        // sqrt(1 - beta2^t)
  eps: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<f32>;

override WG: u32 = 256;
#include "grid.wgsl"

@compute @workgroup_size(WG)
fn adamw_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let g = grad[i];
  let p = param[i] * params.decay;
  // torch's lerp_(g, w): m + w * (g - m) for w < 0.5, else g - (g - m) * (1 - w)
  let m_old = exp_avg[i];
  var m: f32;
  if (params.one_minus_beta1 < 0.5) {
    m = m_old + params.one_minus_beta1 * (g - m_old);
  } else {
    m = g - (g - m_old) * params.beta1;
  }
  let v = exp_avg_sq[i] * params.beta2 + params.one_minus_beta2 * g * g;
  let denom = sqrt(v) / params.sqrt_bc2 + params.eps;
  param[i] = p - params.step_size * (m / denom);
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
}
