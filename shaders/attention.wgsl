// Softmax attention (Hugging Face ViTSelfAttention) as a few kernels over [B, H, S, S] scores, stored with
// a row pitch of S or more (rows padded to 256 bytes where matmul_texture copies them into textures):
//   batched_matmul    one strided per-(batch, head) matmul used for Q K^T, P V, dC V^T, dS K, dS^T Q, P^T dC;
//                     strides let it read and write head slices of the merged [B, S, H*hd] layout directly.
//                     Where matmul_texture runs (lavapipe), src/ops/attention.ts uses that instead.
//   softmax_forward   one invocation per score row: stable softmax in place.
//   softmax_backward  one invocation per row: dS = scale * p * (dP - sum_j p_j dP_j), dP = dP' * mask.
//   apply_mask        one invocation per row: p' = p * mask when dropout or a head mask is on; backward
//                     regenerates p' the same way (the dropout mask is a hash, never stored).
//   unpad_rows        one invocation per row: a dense [B, H, S, S] copy of padded rows (returned probabilities).
// Each entry point uses only its own bindings, so binding numbers are reused with other variables.

override WG: u32 = 64;

#include "grid.wgsl"

// ---- batched strided matmul: C[z] = alpha * A[z] B[z] for z = (batch, head) ------------------
// Element (r, c) of operand X in batch z = (b, h) lives at b*x_batch + h*x_head + r*x_row + c*x_col.
struct MatmulParams {
  m: u32, n: u32, k: u32,
  heads: u32, batches: u32,   // batches = B * H
  a_batch: u32, a_head: u32, a_row: u32, a_col: u32,
  b_batch: u32, b_head: u32, b_row: u32, b_col: u32,
  c_batch: u32, c_head: u32, c_row: u32, c_col: u32,
  alpha: f32,
}
@group(0) @binding(0) var<uniform> mm: MatmulParams;
@group(0) @binding(1) var<storage, read> mat_a: array<f32>;
@group(0) @binding(2) var<storage, read> mat_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> mat_c: array<f32>;

// Each invocation owns an 8x8 register tile and no workgroup memory: on a CPU rasteriser barriers
// cost more than the reloads they save, and 8x8 measured ~2x faster than 4x4 on lavapipe.
const TM: u32 = 8u;
const TN: u32 = 8u;

@compute @workgroup_size(WG)
fn batched_matmul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let tiles_m = (mm.m + TM - 1u) / TM;
  let tiles_n = (mm.n + TN - 1u) / TN;
  let tiles = tiles_m * tiles_n;
  let t = flat_index(gid, nwg);
  let z = t / tiles;
  if (z >= mm.batches) { return; }
  let b = z / mm.heads;
  let h = z % mm.heads;
  let m0 = ((t % tiles) / tiles_n) * TM;
  let n0 = ((t % tiles) % tiles_n) * TN;

  // Rows and columns past the edge re-read the last valid one (always in bounds); only stores are guarded.
  var a_off: array<u32, TM>;
  var b_off: array<u32, TN>;
  for (var i = 0u; i < TM; i++) { a_off[i] = b * mm.a_batch + h * mm.a_head + min(m0 + i, mm.m - 1u) * mm.a_row; }
  for (var j = 0u; j < TN; j++) { b_off[j] = b * mm.b_batch + h * mm.b_head + min(n0 + j, mm.n - 1u) * mm.b_col; }

  var acc: array<array<f32, TN>, TM>;
  for (var kk = 0u; kk < mm.k; kk++) {
    var b_val: array<f32, TN>;
    for (var j = 0u; j < TN; j++) { b_val[j] = mat_b[b_off[j]]; b_off[j] += mm.b_row; }
    for (var i = 0u; i < TM; i++) {
      let a_val = mat_a[a_off[i]];
      a_off[i] += mm.a_col;
      for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a_val, b_val[j], acc[i][j]); }
    }
  }

  let c_base = b * mm.c_batch + h * mm.c_head;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) {
      if (m0 + i < mm.m && n0 + j < mm.n) {
        mat_c[c_base + (m0 + i) * mm.c_row + (n0 + j) * mm.c_col] = mm.alpha * acc[i][j];
      }
    }
  }
}

// ---- row kernels over the [B, H, S, S] probabilities ---------------------------------------
struct RowParams {
  rows: u32,       // B * H * S
  len: u32,        // S: row length and rows per (batch, head)
  heads: u32,
  seed: u32,       // dropout seed
  pitch: u32,      // elements from one stored row to the next (len or more)
  scale: f32,      // score scale (softmax_backward folds it into dS)
  drop: f32,       // dropout probability
  keep_scale: f32, // 1 / (1 - drop)
}
@group(0) @binding(0) var<uniform> rp: RowParams;

override DROPOUT: bool = false;
override HEAD_MASK: bool = false;

@group(0) @binding(2) var<storage, read> head_mask: array<f32>;

// The dropout hash (dropout_hash.wgsl), over the flat index into a dense [B, H, S, S] (whatever the row pitch).
#include "dropout_hash.wgsl"

// What p is multiplied by to give p': the inverted-dropout factor times the head's mask value.
fn mask_factor(flat: u32, seed_hash: u32, head: u32) -> f32 {
  var f = 1.0;
  if (DROPOUT) {
    f = select(0.0, rp.keep_scale, dropout_keeps(flat, seed_hash, rp.drop));
  }
  if (HEAD_MASK) { f *= head_mask[head]; }
  return f;
}

fn row_head(row: u32) -> u32 {
  return (row / rp.len) % rp.heads;
}

@group(0) @binding(1) var<storage, read_write> scores: array<f32>;

// scores (already scaled) -> p in place.
@compute @workgroup_size(WG)
fn softmax_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = flat_index(gid, nwg);
  if (row >= rp.rows) { return; }
  let base = row * rp.pitch;
  let end = base + rp.len;
  var row_max = scores[base];
  for (var i = base + 1u; i < end; i++) { row_max = max(row_max, scores[i]); }
  var total = 0.0;
  for (var i = base; i < end; i++) {
    let e = exp(scores[i] - row_max);
    scores[i] = e;
    total += e;
  }
  let inv_total = 1.0 / total;
  for (var i = base; i < end; i++) { scores[i] *= inv_total; }
}

@group(0) @binding(1) var<storage, read_write> grad_scores: array<f32>;
@group(0) @binding(3) var<storage, read> probs: array<f32>;

// grad_scores holds dP' = dC V^T on entry and dS = scale * p * (dP - sum_j p_j dP_j) on exit,
// where dP = dP' * mask is the gradient with respect to the softmax output before dropout.
@compute @workgroup_size(WG)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = flat_index(gid, nwg);
  if (row >= rp.rows) { return; }
  let base = row * rp.pitch;
  let end = base + rp.len;
  let seed_hash = hash_u32(rp.seed);
  let head = row_head(row);
  let flat = row * rp.len - base;  // + i: the element's index in a dense [B, H, S, S]
  var dot = 0.0;
  for (var i = base; i < end; i++) {
    var g = grad_scores[i];
    if (DROPOUT || HEAD_MASK) {
      g *= mask_factor(flat + i, seed_hash, head);
      grad_scores[i] = g;
    }
    dot += probs[i] * g;
  }
  for (var i = base; i < end; i++) {
    grad_scores[i] = rp.scale * probs[i] * (grad_scores[i] - dot);
  }
}

@group(0) @binding(1) var<storage, read> plain_probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> masked_probs: array<f32>;

// masked_probs = plain_probs * mask, one invocation per row (integer division per element is slow
// on a CPU rasteriser, so the head is worked out once per row).
@compute @workgroup_size(WG)
fn apply_mask(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = flat_index(gid, nwg);
  if (row >= rp.rows) { return; }
  let base = row * rp.pitch;
  let seed_hash = hash_u32(rp.seed);
  let head = row_head(row);
  let flat = row * rp.len - base;  // + i: the element's index in a dense [B, H, S, S]
  for (var i = base; i < base + rp.len; i++) { masked_probs[i] = plain_probs[i] * mask_factor(flat + i, seed_hash, head); }
}

@group(0) @binding(2) var<storage, read_write> dense_probs: array<f32>;

// dense_probs = the rows of plain_probs without their padding
@compute @workgroup_size(WG)
fn unpad_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = flat_index(gid, nwg);
  if (row >= rp.rows) { return; }
  for (var i = 0u; i < rp.len; i++) { dense_probs[row * rp.len + i] = plain_probs[row * rp.pitch + i]; }
}
