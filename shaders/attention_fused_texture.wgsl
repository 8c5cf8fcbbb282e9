// The fused attention kernels of attention_fused.wgsl for CPU rasterisers (lavapipe): no workgroup memory
// or barriers (expensive there), one query (or key) row per invocation, and the rows of the other side
// read from rgba32float textures rather than storage buffers (a storage load in a loop is a per-lane loop
// on lavapipe, a textureLoad is vector code; see matmul_texture.wgsl). All lanes need the same row: each
// fetches a different texel of it and subgroup shuffles hand them round, so a 64-wide head row costs two
// texture loads per lane instead of sixteen.
//
// A texture holds the head rows of batch items batch0 .. of a [B, S, H*hd] buffer, head-major (each
// head's rows contiguous: far faster than one texture row per token at H = 12): texel (t, (z * H + h) * S
// + j) = elements 4t .. 4t+3 of head h of token j of item batch0 + z (zero past hd), filled by one
// copyBufferToTexture per (item, head) where hd is a multiple of 4 and tokens are 256-byte aligned,
// else by pack_heads. Needs subgroups of at least LANES invocations
// (src/ops/attention.ts falls back to the unfused kernels elsewhere).
enable subgroups;
#include "attention_fused.wgsl"

const LANES = 8u;  // one workgroup = one subgroup of 8 lanes = 8 rows
const_assert 2u * LANES >= MAX_HD4;  // two texels per lane cover a head row

@group(0) @binding(1) var q_tex: texture_2d<f32>;
@group(0) @binding(2) var k_tex: texture_2d<f32>;
@group(0) @binding(3) var v_tex: texture_2d<f32>;
@group(0) @binding(7) var d_out_tex: texture_2d<f32>;

// One head row of a texture spread over the subgroup: lane l holds texels l (near) and l + 8 (far).
struct SpreadRow { near: vec4f, far: vec4f }

fn fetch_row(tex: texture_2d<f32>, y: u32, lane: u32) -> SpreadRow {
  var r: SpreadRow;
  r.near = textureLoad(tex, vec2u(min(lane, HD4 - 1u), y), 0);
  if (HD4 > LANES) { r.far = textureLoad(tex, vec2u(min(lane + LANES, HD4 - 1u), y), 0); }
  return r;
}

// texel t of a spread row, from the lane that holds it
fn texel_of(r: SpreadRow, t: u32) -> vec4f {
  if (t < LANES) { return subgroupShuffle(r.near, t); }
  return subgroupShuffle(r.far, t - LANES);
}

// One query row per lane: the context row and its log-sum-exp. Keys go four at a time, so the running
// sum and context are rescaled once per four keys.
@compute @workgroup_size(LANES)
fn forward_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let i = min(wg.x * LANES + lane, p.seq - 1u);
  let row = (b * p.heads + h) * p.seq + i;  // [B, H, S] row
  let seed_hash = hash_u32(p.seed);
  let base = row_base(b * p.seq + i, h);
  let y0 = (wg.z * p.heads + h) * p.seq;  // texture row of key 0
  var qi: array<vec4f, MAX_HD4>;
  for (var t = 0u; t < HD4; t++) { qi[t] = q_texel(base, t) * p.scale; }
  var acc: array<vec4f, MAX_HD4>;
  var m = NEG_BIG;
  var l = 0.0;
  for (var j0 = 0u; j0 < p.seq; j0 += 4u) {
    var s = vec4f(NEG_BIG);  // keys past S get probability 0
    for (var jj = 0u; jj < 4u; jj++) {
      let kr = fetch_row(k_tex, y0 + min(j0 + jj, p.seq - 1u), lane);
      var d = 0.0;
      for (var t = 0u; t < HD4; t++) { d += dot(qi[t], texel_of(kr, t)); }
      if (j0 + jj < p.seq) { s[jj] = d; }
    }
    let m_new = max(m, max(max(s.x, s.y), max(s.z, s.w)));
    let c = exp(m - m_new);
    let e = exp(s - vec4f(m_new));
    l = l * c + (e.x + e.y + e.z + e.w);
    var w = e;
    if (DROPOUT) {
      for (var jj = 0u; jj < 4u; jj++) { w[jj] *= dropout_factor(row * p.seq, j0 + jj, seed_hash); }
    }
    for (var t = 0u; t < HD4; t++) { acc[t] *= c; }
    for (var jj = 0u; jj < 4u; jj++) {  // (keys past S have weight 0)
      let vr = fetch_row(v_tex, y0 + min(j0 + jj, p.seq - 1u), lane);
      for (var t = 0u; t < HD4; t++) { acc[t] = fma(vec4f(w[jj]), texel_of(vr, t), acc[t]); }
    }
    m = m_new;
  }
  if (wg.x * LANES + lane >= p.seq) { return; }
  let f = head_factor(h) / l;
  for (var t = 0u; t < HD4; t++) { store_row(base, t, acc[t] * f); }
  stats_out[row] = vec2f(m + log(l), 0.0);
}

// One query row per lane: dq, over all keys.
@compute @workgroup_size(LANES)
fn backward_dq_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let i = min(wg.x * LANES + lane, p.seq - 1u);
  let row = (b * p.heads + h) * p.seq + i;
  let seed_hash = hash_u32(p.seed);
  let base = row_base(b * p.seq + i, h);
  let y0 = (wg.z * p.heads + h) * p.seq;
  let hf = head_factor(h);
  let st = stats[row];
  var qi: array<vec4f, MAX_HD4>;
  var doi: array<vec4f, MAX_HD4>;
  for (var t = 0u; t < HD4; t++) { qi[t] = q_texel(base, t) * p.scale; doi[t] = d_out_texel(base, t); }
  var dq: array<vec4f, MAX_HD4>;
  for (var j = 0u; j < p.seq; j++) {
    let kr = fetch_row(k_tex, y0 + j, lane);
    let vr = fetch_row(v_tex, y0 + j, lane);
    var s = 0.0;
    var dp = 0.0;
    for (var t = 0u; t < HD4; t++) {
      s += dot(qi[t], texel_of(kr, t));
      dp += dot(doi[t], texel_of(vr, t));
    }
    let f = hf * dropout_factor(row * p.seq, j, seed_hash);
    let ds = exp(s - st.x) * (f * dp - st.y);
    // the shuffles again rather than keeping k_j: fewer live registers, much faster to compile
    for (var t = 0u; t < HD4; t++) { dq[t] = fma(vec4f(ds), texel_of(kr, t), dq[t]); }
  }
  if (wg.x * LANES + lane >= p.seq) { return; }
  for (var t = 0u; t < HD4; t++) { store_row(base, t, dq[t] * p.scale); }
}

// One key row per lane: dk and dv, over all queries (q and dO from textures; each lane loads the
// (lse, D) of one of the next 8 queries and shuffles hand them round).
@compute @workgroup_size(LANES)
fn backward_dkdv_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let j = min(wg.x * LANES + lane, p.seq - 1u);
  let first_row = (b * p.heads + h) * p.seq;
  let seed_hash = hash_u32(p.seed);
  let base = row_base(b * p.seq + j, h);
  let y0 = (wg.z * p.heads + h) * p.seq;
  let hf = head_factor(h);
  var kj: array<vec4f, MAX_HD4>;
  var vj: array<vec4f, MAX_HD4>;
  for (var t = 0u; t < HD4; t++) { kj[t] = k_texel(base, t) * p.scale; vj[t] = v_texel(base, t); }
  var dk: array<vec4f, MAX_HD4>;
  var dv: array<vec4f, MAX_HD4>;
  for (var i0 = 0u; i0 < p.seq; i0 += LANES) {
    let lane_stats = stats[first_row + min(i0 + lane, p.seq - 1u)];
    for (var ii = 0u; ii < min(LANES, p.seq - i0); ii++) {
      let st = subgroupShuffle(lane_stats, ii);
      let qr = fetch_row(q_tex, y0 + i0 + ii, lane);
      let dr = fetch_row(d_out_tex, y0 + i0 + ii, lane);
      var s = 0.0;
      var dp = 0.0;
      for (var t = 0u; t < HD4; t++) {
        s += dot(kj[t], texel_of(qr, t));
        dp += dot(vj[t], texel_of(dr, t));
      }
      let f = hf * dropout_factor((first_row + i0 + ii) * p.seq, j, seed_hash);
      let pr = exp(s - st.x);
      let ds = pr * (f * dp - st.y);
      for (var t = 0u; t < HD4; t++) {
        dv[t] = fma(vec4f(pr * f), texel_of(dr, t), dv[t]);
        dk[t] = fma(vec4f(ds), texel_of(qr, t), dk[t]);
      }
    }
  }
  if (wg.x * LANES + lane >= p.seq) { return; }
  for (var t = 0u; t < HD4; t++) {
    store_row(base, t, dk[t] * p.scale);
    store_row2(base, t, dv[t]);
  }
}
