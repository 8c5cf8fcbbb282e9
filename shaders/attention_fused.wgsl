// Fused softmax attention (Hugging Face ViTSelfAttention) on the merged [B, S, H*hd] layout, with nothing
// of size S^2 (FlashAttention-2): forward keeps a running max and sum per query row over the keys (online
// softmax) and writes the context and one log-sum-exp per row; backward recomputes the probabilities from
// q, k and that log-sum-exp.
//   p_ij = exp(scale q_i.k_j - lse_i);  p'_ij = p_ij * f_ij, f = inverted dropout (hashed, never stored)
//   times the head mask;  context_i = sum_j p'_ij v_j
//   dS_ij = p_ij (f_ij dO_i.v_j - D_i), D_i = dO_i.context_i;  dq_i = scale sum_j dS_ij k_j,
//   dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i p'_ij dO_i
// Variants (src/ops/attention.ts picks one):
//   *_tiles     this file, for GPUs: one query (or key) row per invocation, the other side's rows staged
//               block by block in workgroup memory.
//   *_texture   attention_fused_texture.wgsl, for lavapipe: no barriers, the other side read from textures.
// Shared here: the uniforms, the dropout factor, row loads, D (attention_delta), the returned
// probabilities (attention_probs) and the texture packing.
// Each entry point uses only its own bindings, so binding numbers are reused with other variables.
#include "dropout_hash.wgsl"

struct Params {
  seq: u32,        // S
  heads: u32,      // H
  head_dim: u32,   // hd
  width: u32,      // H * hd
  batch0: u32,     // first batch item of this dispatch (the texture variant splits the batch)
  rows: u32,       // attention_delta: B * H * S; pack_heads: texture rows
  block0: u32,     // the texture variant: the block of rows (or keys) of workgroup 0
  seed: u32,       // dropout seed
  scale: f32,      // multiplies q.k
  drop: f32,       // dropout probability
  keep_scale: f32, // 1 / (1 - drop)
}
@group(0) @binding(0) var<uniform> p: Params;

override DROPOUT: bool = false;
override HEAD_MASK: bool = false;
// ceil(hd / 4): the texels of a head row (at most MAX_HD4: the rows live in registers)
override HD4: u32 = 16u;
const MAX_HD4 = 16u;

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> head_mask: array<f32>;
@group(0) @binding(6) var<storage, read> stats: array<vec2f>;  // (lse, D) per [B, H, S] row
@group(0) @binding(7) var<storage, read> d_out: array<f32>;

const NEG_BIG = -3.0e38;  // a running max below every score (exp of it minus a score is 0)

// The inverted-dropout factor of element (row, col) of one (batch, head) matrix, whose first element
// has index `flat_row` in a dense [B, H, S, S] (the same index as attention.wgsl's mask_factor).
fn dropout_factor(flat_row: u32, col: u32, seed_hash: u32) -> f32 {
  if (DROPOUT) { return select(0.0, p.keep_scale, dropout_keeps(flat_row + col, seed_hash, p.drop)); }
  return 1.0;
}

fn head_factor(h: u32) -> f32 {
  if (HEAD_MASK) { return head_mask[h]; }
  return 1.0;
}

// Where head h of token row `row` (= b * S + i) starts in a [B, S, H*hd] buffer.
fn row_base(row: u32, h: u32) -> u32 {
  return row * p.width + h * p.head_dim;
}

// Elements 4t .. 4t+3 of a head row (indices clamped into the row, values past hd zero).
fn texel_index(base: u32, t: u32) -> vec4u {
  return base + min(4u * t + vec4u(0u, 1u, 2u, 3u), vec4u(p.head_dim - 1u));
}
fn in_head(t: u32) -> vec4<bool> {
  return 4u * t + vec4u(0u, 1u, 2u, 3u) < vec4u(p.head_dim);
}
fn q_texel(base: u32, t: u32) -> vec4f {
  let i = texel_index(base, t);
  return select(vec4f(0.0), vec4f(q[i.x], q[i.y], q[i.z], q[i.w]), in_head(t));
}
fn k_texel(base: u32, t: u32) -> vec4f {
  let i = texel_index(base, t);
  return select(vec4f(0.0), vec4f(k[i.x], k[i.y], k[i.z], k[i.w]), in_head(t));
}
fn v_texel(base: u32, t: u32) -> vec4f {
  let i = texel_index(base, t);
  return select(vec4f(0.0), vec4f(v[i.x], v[i.y], v[i.z], v[i.w]), in_head(t));
}
fn d_out_texel(base: u32, t: u32) -> vec4f {
  let i = texel_index(base, t);
  return select(vec4f(0.0), vec4f(d_out[i.x], d_out[i.y], d_out[i.z], d_out[i.w]), in_head(t));
}

// ---- workgroup-tile variant (GPUs) ----------------------------------------------------------------
const ROWS = 64u;  // rows per workgroup, one per invocation
const TILE = 16u;  // rows of the other side staged per block

var<workgroup> tile_a: array<vec4f, TILE * MAX_HD4>;
var<workgroup> tile_b: array<vec4f, TILE * MAX_HD4>;
var<workgroup> tile_stats: array<vec2f, TILE>;

@group(0) @binding(5) var<storage, read_write> result: array<f32>;      // context, dq or dk
@group(0) @binding(6) var<storage, read_write> stats_out: array<vec2f>;
@group(0) @binding(8) var<storage, read_write> result2: array<f32>;     // dv

fn store_row(base: u32, t: u32, x: vec4f) {
  for (var c = 0u; c < 4u; c++) {
    if (4u * t + c < p.head_dim) { result[base + 4u * t + c] = x[c]; }
  }
}
fn store_row2(base: u32, t: u32, x: vec4f) {
  for (var c = 0u; c < 4u; c++) {
    if (4u * t + c < p.head_dim) { result2[base + 4u * t + c] = x[c]; }
  }
}

// k and v rows j0 .. j0 + TILE - 1 (clamped to the last) of item b, head h, into tile_a and tile_b.
fn stage_keys(b: u32, h: u32, j0: u32, lid: u32) {
  workgroupBarrier();  // everyone is done with the previous block
  for (var e = lid; e < TILE * HD4; e += ROWS) {
    let base = row_base(b * p.seq + min(j0 + e / HD4, p.seq - 1u), h);
    tile_a[e / HD4 * MAX_HD4 + e % HD4] = k_texel(base, e % HD4);
    tile_b[e / HD4 * MAX_HD4 + e % HD4] = v_texel(base, e % HD4);
  }
  workgroupBarrier();
}

// One query row per invocation: the context row and its log-sum-exp.
@compute @workgroup_size(ROWS)
fn forward_tiles(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let i = min(wg.x * ROWS + lid, p.seq - 1u);
  let row = (b * p.heads + h) * p.seq + i;  // [B, H, S] row
  let seed_hash = hash_u32(p.seed);
  let base = row_base(b * p.seq + i, h);
  var qi: array<vec4f, MAX_HD4>;
  for (var t = 0u; t < HD4; t++) { qi[t] = q_texel(base, t) * p.scale; }
  var acc: array<vec4f, MAX_HD4>;
  var m = NEG_BIG;
  var l = 0.0;
  for (var j0 = 0u; j0 < p.seq; j0 += TILE) {
    stage_keys(b, h, j0, lid);
    for (var jj = 0u; jj < min(TILE, p.seq - j0); jj++) {
      var s = 0.0;
      for (var t = 0u; t < HD4; t++) { s += dot(qi[t], tile_a[jj * MAX_HD4 + t]); }
      let m_new = max(m, s);
      let c = exp(m - m_new);
      let e = exp(s - m_new);
      l = l * c + e;
      let w = e * dropout_factor(row * p.seq, j0 + jj, seed_hash);
      for (var t = 0u; t < HD4; t++) { acc[t] = fma(vec4f(w), tile_b[jj * MAX_HD4 + t], acc[t] * c); }
      m = m_new;
    }
  }
  if (wg.x * ROWS + lid >= p.seq) { return; }
  let f = head_factor(h) / l;
  for (var t = 0u; t < HD4; t++) { store_row(base, t, acc[t] * f); }
  stats_out[row] = vec2f(m + log(l), 0.0);
}

// One query row per invocation: dq.
@compute @workgroup_size(ROWS)
fn backward_dq_tiles(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let i = min(wg.x * ROWS + lid, p.seq - 1u);
  let row = (b * p.heads + h) * p.seq + i;
  let seed_hash = hash_u32(p.seed);
  let base = row_base(b * p.seq + i, h);
  let hf = head_factor(h);
  let st = stats[row];
  var qi: array<vec4f, MAX_HD4>;
  var doi: array<vec4f, MAX_HD4>;
  for (var t = 0u; t < HD4; t++) { qi[t] = q_texel(base, t) * p.scale; doi[t] = d_out_texel(base, t); }
  var dq: array<vec4f, MAX_HD4>;
  for (var j0 = 0u; j0 < p.seq; j0 += TILE) {
    stage_keys(b, h, j0, lid);
    for (var jj = 0u; jj < min(TILE, p.seq - j0); jj++) {
      var s = 0.0;
      var dp = 0.0;
      for (var t = 0u; t < HD4; t++) {
        s += dot(qi[t], tile_a[jj * MAX_HD4 + t]);
        dp += dot(doi[t], tile_b[jj * MAX_HD4 + t]);
      }
      let f = hf * dropout_factor(row * p.seq, j0 + jj, seed_hash);
      let ds = exp(s - st.x) * (f * dp - st.y);
      for (var t = 0u; t < HD4; t++) { dq[t] = fma(vec4f(ds), tile_a[jj * MAX_HD4 + t], dq[t]); }
    }
  }
  if (wg.x * ROWS + lid >= p.seq) { return; }
  for (var t = 0u; t < HD4; t++) { store_row(base, t, dq[t] * p.scale); }
}

// One key row per invocation: dk and dv, over blocks of query rows (q in tile_a, dO in tile_b).
@compute @workgroup_size(ROWS)
fn backward_dkdv_tiles(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let j = min(wg.x * ROWS + lid, p.seq - 1u);
  let first_row = (b * p.heads + h) * p.seq;  // [B, H, S] row of query 0
  let seed_hash = hash_u32(p.seed);
  let base = row_base(b * p.seq + j, h);
  let hf = head_factor(h);
  var kj: array<vec4f, MAX_HD4>;
  var vj: array<vec4f, MAX_HD4>;
  for (var t = 0u; t < HD4; t++) { kj[t] = k_texel(base, t) * p.scale; vj[t] = v_texel(base, t); }
  var dk: array<vec4f, MAX_HD4>;
  var dv: array<vec4f, MAX_HD4>;
  for (var i0 = 0u; i0 < p.seq; i0 += TILE) {
    workgroupBarrier();
    for (var e = lid; e < TILE * HD4; e += ROWS) {
      let qbase = row_base(b * p.seq + min(i0 + e / HD4, p.seq - 1u), h);
      tile_a[e / HD4 * MAX_HD4 + e % HD4] = q_texel(qbase, e % HD4);
      tile_b[e / HD4 * MAX_HD4 + e % HD4] = d_out_texel(qbase, e % HD4);
    }
    if (lid < TILE) { tile_stats[lid] = stats[first_row + min(i0 + lid, p.seq - 1u)]; }
    workgroupBarrier();
    for (var ii = 0u; ii < min(TILE, p.seq - i0); ii++) {
      var s = 0.0;
      var dp = 0.0;
      for (var t = 0u; t < HD4; t++) {
        s += dot(kj[t], tile_a[ii * MAX_HD4 + t]);
        dp += dot(vj[t], tile_b[ii * MAX_HD4 + t]);
      }
      let st = tile_stats[ii];
      let f = hf * dropout_factor((first_row + i0 + ii) * p.seq, j, seed_hash);
      let pr = exp(s - st.x);
      let ds = pr * (f * dp - st.y);
      for (var t = 0u; t < HD4; t++) {
        dv[t] = fma(vec4f(pr * f), tile_b[ii * MAX_HD4 + t], dv[t]);
        dk[t] = fma(vec4f(ds), tile_a[ii * MAX_HD4 + t], dk[t]);
      }
    }
  }
  if (wg.x * ROWS + lid >= p.seq) { return; }
  for (var t = 0u; t < HD4; t++) {
    store_row(base, t, dk[t] * p.scale);
    store_row2(base, t, dv[t]);
  }
}

// ---- shared by both variants ----------------------------------------------------------------------
override WG: u32 = 64;
#include "grid.wgsl"

@group(0) @binding(1) var<storage, read> context_in: array<f32>;
@group(0) @binding(2) var<storage, read> d_out_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats_rw: array<vec2f>;

// D = rowsum(dO * context) into the second half of each row's stats, one [B, H, S] row per invocation.
@compute @workgroup_size(WG)
fn attention_delta(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = flat_index(gid, nwg);
  if (row >= p.rows) { return; }
  let i = row % p.seq;
  let bh = row / p.seq;
  let base = row_base((bh / p.heads) * p.seq + i, bh % p.heads);
  var d = 0.0;
  for (var e = base; e < base + p.head_dim; e++) { d = fma(d_out_in[e], context_in[e], d); }
  stats_rw[row].y = d;
}

@group(0) @binding(3) var<storage, read> stats_in: array<vec2f>;
@group(0) @binding(5) var<storage, read_write> probs: array<f32>;

// The returned probabilities p' [B, H, S, S] from q, k and the log-sum-exp, one element per invocation.
@compute @workgroup_size(WG)
fn attention_probs(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let flat = flat_index(gid, nwg);
  let row = flat / p.seq;
  if (row >= p.rows) { return; }
  let j = flat % p.seq;
  let i = row % p.seq;
  let bh = row / p.seq;
  let b = bh / p.heads;
  let h = bh % p.heads;
  let qb = row_base(b * p.seq + i, h);
  let kb = row_base(b * p.seq + j, h);
  var s = 0.0;
  for (var t = 0u; t < HD4; t++) { s += dot(q_texel(qb, t) * p.scale, k_texel(kb, t)); }
  probs[flat] = exp(s - stats_in[row].x) * head_factor(h) * dropout_factor(row * p.seq, j, hash_u32(p.seed));
}

@group(0) @binding(1) var<storage, read> pack_src: array<f32>;
@group(0) @binding(2) var packed: texture_storage_2d<rgba32float, write>;

// The texture image (attention_fused_texture.wgsl) of items batch0 .. of a [B, S, H*hd] buffer, for head
// dims and widths that copyBufferToTexture cannot lay out: texel (t, (z * H + h) * S + j) = elements
// 4t .. 4t+3 of head h of token j of item batch0 + z, zero past hd.
const PACK_X = 16u;  // texels per row of a workgroup (src/ops/attention.ts reads these)
const PACK_Y = 4u;   // rows per workgroup
@compute @workgroup_size(PACK_X, PACK_Y)
fn pack_heads(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= HD4 || id.y >= p.rows) { return; }
  let j = id.y % p.seq;
  let zh = id.y / p.seq;
  let i = texel_index(row_base((p.batch0 + zh / p.heads) * p.seq + j, zh % p.heads), id.x);
  let x = vec4f(pack_src[i.x], pack_src[i.y], pack_src[i.z], pack_src[i.w]);
  textureStore(packed, id.xy, select(vec4f(0.0), x, in_head(id.x)));
}
