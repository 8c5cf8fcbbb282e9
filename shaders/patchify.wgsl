// Patch embedding and token ops: pure copies (plus one add), one invocation per output element,
// 1-D grids that spill into y past 65535 workgroups. Every backward is a gather (no atomics).
//
// patchify (im2col with kernel = stride): x [B, C, H, W] -> out [B, T, C*PH*PW],
//   out[b, row*GW + col, c*PH*PW + kh*PW + kw] = x[b, c, row*PH + kh, col*PW + kw].
// embeddings: h [B, T+1, D]; h[b, 0] = cls + pos[0], h[b, t+1] = patches[b, t] + pos[t+1].
// token_slice / token_pad: copy a run of tokens out of / back into a [B, S, D] tensor.

override WG: u32 = 256;

#include "grid.wgsl"

// ---- patchify -------------------------------------------------------------------------------
struct PatchParams {
  n: u32,        // elements (same count on both sides: it is a permutation)
  channels: u32, // C
  height: u32,   // H
  width: u32,    // W
  ph: u32,       // patch height
  pw: u32,       // patch width
  grid_w: u32,   // W / PW: patches per row
  tokens: u32,   // T = (H / PH) * (W / PW)
}
@group(0) @binding(0) var<uniform> pp: PatchParams;
@group(0) @binding(1) var<storage, read> patch_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> patch_dst: array<f32>;

// Image index of patch element (b, t, k), k = c*PH*PW + kh*PW + kw.
fn image_index(b: u32, t: u32, k: u32) -> u32 {
  let area = pp.ph * pp.pw;
  let c = k / area;
  let r = k - c * area;
  let kh = r / pp.pw;
  let kw = r - kh * pp.pw;
  let row = t / pp.grid_w;
  let col = t - row * pp.grid_w;
  return ((b * pp.channels + c) * pp.height + row * pp.ph + kh) * pp.width + col * pp.pw + kw;
}

// one thread per patch element: contiguous writes, reads in runs of PW
@compute @workgroup_size(WG)
fn patchify_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= pp.n) { return; }
  let features = pp.channels * pp.ph * pp.pw;
  let bt = i / features;
  let k = i - bt * features;
  let b = bt / pp.tokens;
  let t = bt - b * pp.tokens;
  patch_dst[i] = patch_src[image_index(b, t, k)];
}

// The inverse permutation, gathered: one thread per image element reads its patch element.
@compute @workgroup_size(WG)
fn patchify_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= pp.n) { return; }
  let bcy = i / pp.width;
  let xx = i - bcy * pp.width;
  let bc = bcy / pp.height;
  let yy = bcy - bc * pp.height;
  let b = bc / pp.channels;
  let c = bc - b * pp.channels;
  let row = yy / pp.ph;
  let kh = yy - row * pp.ph;
  let col = xx / pp.pw;
  let kw = xx - col * pp.pw;
  let t = row * pp.grid_w + col;
  let k = (c * pp.ph + kh) * pp.pw + kw;
  patch_dst[i] = patch_src[(b * pp.tokens + t) * pp.channels * pp.ph * pp.pw + k];
}

// ---- embeddings: [CLS] prepend + position embeddings -----------------------------------------
struct EmbedParams {
  n: u32,      // output elements: B*(T+1)*D in forward, (T+1)*D in the summed backward
  dim: u32,    // D
  tokens: u32, // T (patch tokens, without CLS)
  batch: u32,  // B
}
@group(0) @binding(0) var<uniform> ep: EmbedParams;
@group(0) @binding(1) var<storage, read> patches: array<f32>;
@group(0) @binding(2) var<storage, read> cls: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> hidden: array<f32>;

@compute @workgroup_size(WG)
fn embeddings_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= ep.n) { return; }
  let seq_len = ep.tokens + 1u;
  let bs = i / ep.dim;
  let d = i - bs * ep.dim;
  let b = bs / seq_len;
  let s = bs - b * seq_len;
  var v: f32;
  if (s == 0u) {
    v = cls[d];
  } else {
    v = patches[(b * ep.tokens + s - 1u) * ep.dim + d];
  }
  hidden[i] = v + pos[s * ep.dim + d];
}

// dpos[s, d] = sum over b of dh[b, s, d], in order of b; dcls = dpos[0].
@group(0) @binding(1) var<storage, read> dhidden: array<f32>;
@group(0) @binding(2) var<storage, read_write> dpos: array<f32>;
@group(0) @binding(3) var<storage, read_write> dcls: array<f32>;

@compute @workgroup_size(WG)
fn embeddings_backward_sum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= ep.n) { return; }
  var acc = 0.0;
  for (var b = 0u; b < ep.batch; b++) { acc += dhidden[b * ep.n + i]; }
  dpos[i] = acc;
  if (i < ep.dim) { dcls[i] = acc; }
}

// ---- token_slice / token_pad -----------------------------------------------------------------
struct TokenParams {
  n: u32,       // output elements
  dim: u32,     // D
  src_len: u32, // tokens per batch item in the input
  dst_len: u32, // tokens per batch item in the output
  start: u32,   // slice: first input token copied; pad: output token where the input begins
}
@group(0) @binding(0) var<uniform> tp: TokenParams;
@group(0) @binding(1) var<storage, read> tokens_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> tokens_out: array<f32>;

// out[b, s, d] = in[b, start + s, d]
@compute @workgroup_size(WG)
fn token_slice(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= tp.n) { return; }
  let bs = i / tp.dim;
  let d = i - bs * tp.dim;
  let b = bs / tp.dst_len;
  let s = bs - b * tp.dst_len;
  tokens_out[i] = tokens_in[(b * tp.src_len + tp.start + s) * tp.dim + d];
}

// out[b, s, d] = in[b, s - start, d] where 0 <= s - start < src_len, else 0
@compute @workgroup_size(WG)
fn token_pad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= tp.n) { return; }
  let bs = i / tp.dim;
  let d = i - bs * tp.dim;
  let b = bs / tp.dst_len;
  let s = bs - b * tp.dst_len;
  var v = 0.0;
  if (s >= tp.start && s - tp.start < tp.src_len) {
    v = tokens_in[(b * tp.src_len + s - tp.start) * tp.dim + d];
  }
  tokens_out[i] = v;
}
