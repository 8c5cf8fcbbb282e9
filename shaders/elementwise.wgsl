// Elementwise ops over flat f32 arrays. Each entry point uses only its own bindings, so one
// module serves them all. Work is 1-D; a grid larger than 65535 workgroups spills into y.

struct Params {
  n: u32,        // number of elements
  seed: u32,     // dropout seed
  alpha: f32,    // scale / fill value / dropout probability
  beta: f32,
}
@group(0) @binding(0) var<uniform> params: Params;

override WG: u32 = 256;

#include "grid.wgsl"

// ---- binary: out = a + b, out = a * b ------------------------------------------------------
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { out[i] = a[i] + b[i]; }
}

@compute @workgroup_size(WG)
fn mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { out[i] = a[i] * b[i]; }
}

// out = alpha * a + beta * b (also scale: beta = 0 with b = a)
@compute @workgroup_size(WG)
fn axpby(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { out[i] = params.alpha * a[i] + params.beta * b[i]; }
}

// ---- in place: target += alpha * src; target = alpha ---------------------------------------
@group(0) @binding(1) var<storage, read_write> target_: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

@compute @workgroup_size(WG)
fn accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { target_[i] = target_[i] + params.alpha * src[i]; }
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { target_[i] = params.alpha; }
}

// ---- unary activations: forward y = f(x); backward dx = dy * f'(x) ------------------------
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

#include "gelu.wgsl"

@compute @workgroup_size(WG)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { y[i] = gelu(x[i]); }
}

@compute @workgroup_size(WG)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { dx[i] = dy[i] * gelu_grad(x[i]); }
}

@compute @workgroup_size(WG)
fn tanh_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { y[i] = tanh(x[i]); }
}

// here x holds the forward output y = tanh(input): dx = dy * (1 - y^2)
@compute @workgroup_size(WG)
fn tanh_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { let t = x[i]; dx[i] = dy[i] * (1.0 - t * t); }
}

// ---- dropout: keep with probability 1 - p, scale kept values by 1 / (1 - p) ----------------
// The mask is a hash of (seed, index) (dropout_hash.wgsl), so backward regenerates it instead of storing it.
#include "dropout_hash.wgsl"

fn keep_element(i: u32) -> bool {
  return dropout_keeps(i, hash_u32(params.seed), params.alpha);
}

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i < params.n) { y[i] = select(0.0, x[i] / (1.0 - params.alpha), keep_element(i)); }
}

// dropout is linear: backward is the same mask applied to dy (bound as x)
