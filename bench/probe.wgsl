// Ceiling probes for bench/: an FMA-bound loop (GFLOP/s) and a vec4 copy (GB/s).

struct Params {
  n: u32,       // fma: iterations per invocation; copy: vec4 elements
  pad: u32,
  seed: f32,
  pad2: f32,
}
@group(0) @binding(0) var<uniform> params: Params;

override WG: u32 = 64;

@group(0) @binding(1) var<storage, read_write> sink: array<vec4f>;

// 8 independent vec4 FMA chains per invocation: 64 flops per iteration.
@compute @workgroup_size(WG)
fn fma_probe(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let m = vec4f(0.9999, 1.0001, 0.99995, 1.00005);
  let c = vec4f(params.seed * 1e-6);
  var a0 = vec4f(f32(i)); var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
  var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
  for (var k = 0u; k < params.n; k++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  sink[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;

@compute @workgroup_size(WG)
fn copy_probe(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < params.n) { dst[i] = src[i]; }
}
