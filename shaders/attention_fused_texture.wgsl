// The fused attention kernels of attention_fused.wgsl for CPU rasterisers (lavapipe): no workgroup memory
// or barriers (expensive there), a few query (or key) rows per invocation (register tiles: each texel of
// the other side, loaded once, feeds all of them), and the rows of the other side
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
#include "fma4.wgsl"

const LANES = 8u;  // one workgroup = one subgroup of 8 lanes
const_assert 2u * LANES >= MAX_HD4;  // two texels per lane cover a head row

// TAIL: a pipeline for the last block of a sequence when it holds at most LANES rows (one per lane; at
// S = 577 the 10th block of 64 queries holds one), which src/ops/attention.ts dispatches on its own: it
// computes only row 0 of each lane. A pipeline constant, so the rows it skips are compiled out, not
// branched over, and row 0 keeps its order of operations (the same bits).
override TAIL: bool = false;
fn computes(r: u32) -> bool {
  return !TAIL | (r == 0u);  // (not ||: no branch)
}

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

// the sum of four partial dot products
fn hsum(x: vec4f) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

// Register tiles: each lane owns a few query (or key) rows, rows r * LANES + lane of its workgroup's
// block, so that every texel of a row of the other side, fetched and shuffled once, feeds all of their
// multiply-adds. Dot products keep four partial sums (a vec4) per row: independent multiply-add chains,
// not one serial chain of 64. Accumulators declared inside a loop are initialised explicitly
// (`array<...>()`): a bare `var x: array<...>;` there was zeroed only once on lavapipe.
// What NIR (Mesa's compiler) needs for these to run well: every array index static after it unrolls the
// loops over texels. It unrolls a loop only while the unrolled size stays within a budget, so the rows'
// accumulators are separate arrays (acc0, acc1, ...) updated by one helper call each, and a step's rows of
// the other side are gathered once into a matrix per texel (for_texels) by constant column. A loop left
// rolled indexes its arrays at run time, from memory: 2-8x slower (measured, session 6).
const QROWS = 4u;  // backward_dq_texture's rows per lane (src/ops/attention.ts reads QROWS, FROWS, KROWS)
const Q_BLOCK = QROWS * LANES;  // query rows per workgroup
const KEYS = 4u;  // keys per step of the online softmax: the running sum and context are rescaled once per step
const_assert KEYS == 4u;  // forward_texture spells out a step's four keys

// Query rows per lane: the context rows and their log-sum-exps, four keys per step. Eight rows per lane
// (64 per workgroup), as two halves of four whose scores are one helper call each: each texel fetch (a
// call into lavapipe's sampling code) feeds twice the FMAs of four rows. Per step, each row's context is
// loaded, rescaled, given its four keys' values and stored once (rescale_add), not once per key.
const FROWS = 8u;  // (src/ops/attention.ts reads FROWS)
const F_BLOCK = FROWS * LANES;  // query rows per workgroup
@compute @workgroup_size(LANES)
fn forward_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let block = p.block0 + wg.x;
  let seed_hash = hash_u32(p.seed);
  let y0 = (wg.z * p.heads + h) * p.seq;  // texture row of key 0
  var qa: array<array<vec4f, MAX_HD4>, 4>;  // q rows 0-3 (scaled), then 4-7
  var qb: array<array<vec4f, MAX_HD4>, 4>;
  // the context rows, one array each: separate arrays, passed by pointer, keep every index static
  var acc0: array<vec4f, MAX_HD4>;
  var acc1: array<vec4f, MAX_HD4>;
  var acc2: array<vec4f, MAX_HD4>;
  var acc3: array<vec4f, MAX_HD4>;
  var acc4: array<vec4f, MAX_HD4>;
  var acc5: array<vec4f, MAX_HD4>;
  var acc6: array<vec4f, MAX_HD4>;
  var acc7: array<vec4f, MAX_HD4>;
  var row: array<u32, FROWS>;  // [B, H, S] row
  var m: array<f32, FROWS>;
  var l: array<f32, FROWS>;
  for (var r = 0u; r < FROWS; r++) {
    let i = min(block * F_BLOCK + r * LANES + lane, p.seq - 1u);
    row[r] = (b * p.heads + h) * p.seq + i;
    m[r] = NEG_BIG;
    l[r] = 0.0;
  }
  for (var r = 0u; r < 4u; r++) {
    for (var t = 0u; t < HD4; t++) {
      if (computes(r)) { qa[r][t] = textureLoad(q_tex, vec2u(t, y0 + row[r] % p.seq), 0) * p.scale; }
      if (computes(r + 4u)) { qb[r][t] = textureLoad(q_tex, vec2u(t, y0 + row[r + 4u] % p.seq), 0) * p.scale; }
    }
  }
  for (var j0 = 0u; j0 < p.seq; j0 += KEYS) {
    var sa: array<vec4f, 4>;  // (row r, key jj) scores of rows 0-3 and 4-7
    var sb: array<vec4f, 4>;
    for (var jj = 0u; jj < KEYS; jj++) {
      let kr = fetch_row(k_tex, y0 + min(j0 + jj, p.seq - 1u), lane);
      let in_seq = j0 + jj < p.seq;  // keys past S get probability 0
      scores(&sa, jj, &qa, 0u, kr, in_seq);
      if (computes(4u)) { scores(&sb, jj, &qb, 4u, kr, in_seq); }
    }
    var c: array<f32, FROWS>;
    var w: array<vec4f, FROWS>;
    for (var r = 0u; r < FROWS; r++) {
      if (computes(r)) {
        let s = select(sb[r % 4u], sa[r % 4u], r < 4u);
        let m_new = max(m[r], max(max(s.x, s.y), max(s.z, s.w)));
        c[r] = exp(m[r] - m_new);
        let e = exp(s - vec4f(m_new));
        l[r] = l[r] * c[r] + (e.x + e.y + e.z + e.w);
        w[r] = e;
        if (DROPOUT) {
          for (var jj = 0u; jj < KEYS; jj++) { w[r][jj] *= dropout_factor(row[r] * p.seq, j0 + jj, seed_hash); }
        }
        m[r] = m_new;
      }
    }
    // the step's value rows, shuffled once: vt[t][jj] = texel t of value row j0 + jj
    var vt: array<mat4x4f, MAX_HD4>;
    for_texels(&vt, 0u, fetch_row(v_tex, y0 + min(j0, p.seq - 1u), lane));
    for_texels(&vt, 1u, fetch_row(v_tex, y0 + min(j0 + 1u, p.seq - 1u), lane));
    for_texels(&vt, 2u, fetch_row(v_tex, y0 + min(j0 + 2u, p.seq - 1u), lane));
    for_texels(&vt, 3u, fetch_row(v_tex, y0 + min(j0 + 3u, p.seq - 1u), lane));
    rescale_add(&acc0, c[0], w[0], &vt);
    if (computes(1u)) { rescale_add(&acc1, c[1], w[1], &vt); }
    if (computes(2u)) { rescale_add(&acc2, c[2], w[2], &vt); }
    if (computes(3u)) { rescale_add(&acc3, c[3], w[3], &vt); }
    if (computes(4u)) { rescale_add(&acc4, c[4], w[4], &vt); }
    if (computes(5u)) { rescale_add(&acc5, c[5], w[5], &vt); }
    if (computes(6u)) { rescale_add(&acc6, c[6], w[6], &vt); }
    if (computes(7u)) { rescale_add(&acc7, c[7], w[7], &vt); }
  }
  var f: array<f32, FROWS>;
  for (var r = 0u; r < FROWS; r++) {
    let i = block * F_BLOCK + r * LANES + lane;
    f[r] = head_factor(h) / l[r];
    if (i < p.seq) { stats_out[row[r]] = vec2f(m[r] + log(l[r]), 0.0); }
  }
  let i0 = block * F_BLOCK + lane;
  store_scaled(&acc0, i0, b, h, f[0]);
  store_scaled(&acc1, i0 + LANES, b, h, f[1]);
  store_scaled(&acc2, i0 + 2u * LANES, b, h, f[2]);
  store_scaled(&acc3, i0 + 3u * LANES, b, h, f[3]);
  store_scaled(&acc4, i0 + 4u * LANES, b, h, f[4]);
  store_scaled(&acc5, i0 + 5u * LANES, b, h, f[5]);
  store_scaled(&acc6, i0 + 6u * LANES, b, h, f[6]);
  store_scaled(&acc7, i0 + 7u * LANES, b, h, f[7]);
}

// Component jj of dots[r] = a[r].x for a lane's four rows of a (rows row0 .. row0 + 3 of its block)
// against the spread row x (NEG_BIG where !valid). Four partial sums per dot product: independent
// multiply-add chains.
fn scores(dots: ptr<function, array<vec4f, 4>>, jj: u32, a: ptr<function, array<array<vec4f, MAX_HD4>, 4>>, row0: u32, x: SpreadRow, valid: bool) {
  var d = array<vec4f, 4>();
  for (var t = 0u; t < HD4; t++) {
    let xt = texel_of(x, t);
    for (var r = 0u; r < 4u; r++) {
      if (computes(row0 + r)) { d[r] = fma((*a)[r][t], xt, d[r]); }
    }
  }
  for (var r = 0u; r < 4u; r++) { (*dots)[r][jj] = select(NEG_BIG, hsum(d[r]), valid); }
}

// row i (of item b, head h) of the result = acc * f, if i < S
fn store_scaled(acc: ptr<function, array<vec4f, MAX_HD4>>, i: u32, b: u32, h: u32, f: f32) {
  if (i < p.seq) {
    let base = row_base(b * p.seq + i, h);
    for (var t = 0u; t < HD4; t++) { store_row(base, t, (*acc)[t] * f); }
  }
}

// column jj of texels[t] = texel t of a spread row, for every t
fn for_texels(texels: ptr<function, array<mat4x4f, MAX_HD4>>, jj: u32, r: SpreadRow) {
  for (var t = 0u; t < HD4; t++) { (*texels)[t][jj] = texel_of(r, t); }
}

// acc[t] = acc[t] * c + w.x v[t][0] + w.y v[t][1] + w.z v[t][2] + w.w v[t][3], in that order (one row's
// context over a step of four keys: its accumulators are loaded and stored once per step, not per key)
fn rescale_add(acc: ptr<function, array<vec4f, MAX_HD4>>, c: f32, w: vec4f, v: ptr<function, array<mat4x4f, MAX_HD4>>) {
  for (var t = 0u; t < HD4; t++) {
    (*acc)[t] = fma4((*acc)[t] * c, w, (*v)[t]);
  }
}

// Query rows per lane: dq, over all keys.
@compute @workgroup_size(LANES)
fn backward_dq_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let seed_hash = hash_u32(p.seed);
  let y0 = (wg.z * p.heads + h) * p.seq;
  let hf = head_factor(h);
  let block = p.block0 + wg.x;
  var qi: array<array<vec4f, MAX_HD4>, QROWS>;
  var doi: array<array<vec4f, MAX_HD4>, QROWS>;
  var dq: array<array<vec4f, MAX_HD4>, QROWS>;
  var row: array<u32, QROWS>;
  var st: array<vec2f, QROWS>;
  for (var r = 0u; r < QROWS; r++) {
    if (computes(r)) {
      let i = min(block * Q_BLOCK + r * LANES + lane, p.seq - 1u);
      row[r] = (b * p.heads + h) * p.seq + i;
      st[r] = stats[row[r]];
      let base = row_base(b * p.seq + i, h);
      for (var t = 0u; t < HD4; t++) { qi[r][t] = q_texel(base, t) * p.scale; doi[r][t] = d_out_texel(base, t); }
    }
  }
  for (var j = 0u; j < p.seq; j++) {
    let kr = fetch_row(k_tex, y0 + j, lane);
    let vr = fetch_row(v_tex, y0 + j, lane);
    var s = array<vec4f, QROWS>();  // partial sums, as in forward_texture
    var dp = array<vec4f, QROWS>();
    var kc: array<vec4f, MAX_HD4>;  // k_j's texels, shuffled once for both loops (faster than shuffling again)
    for (var t = 0u; t < HD4; t++) {
      let kt = texel_of(kr, t);
      let vt = texel_of(vr, t);
      kc[t] = kt;
      for (var r = 0u; r < QROWS; r++) {
        if (computes(r)) {
          s[r] = fma(qi[r][t], kt, s[r]);
          dp[r] = fma(doi[r][t], vt, dp[r]);
        }
      }
    }
    var ds: array<f32, QROWS>;
    for (var r = 0u; r < QROWS; r++) {
      if (computes(r)) {
        let f = hf * dropout_factor(row[r] * p.seq, j, seed_hash);
        ds[r] = exp(hsum(s[r]) - st[r].x) * (f * hsum(dp[r]) - st[r].y);
      }
    }
    for (var t = 0u; t < HD4; t++) {
      for (var r = 0u; r < QROWS; r++) {
        if (computes(r)) { dq[r][t] = fma(vec4f(ds[r]), kc[t], dq[r][t]); }
      }
    }
  }
  for (var r = 0u; r < QROWS; r++) {
    let i = block * Q_BLOCK + r * LANES + lane;
    if (i < p.seq) {
      let base = row_base(b * p.seq + i, h);
      for (var t = 0u; t < HD4; t++) { store_row(base, t, dq[r][t] * p.scale); }
    }
  }
}

// Component jj of dots[r] = a[r].x_jj and of dots2[r] = b[r].y_jj for a lane's four rows, where x_jj
// is the row gathered in column jj (texel t = x[t][jj]). Four partial sums per dot product: independent
// multiply-add chains. One loop per product: both in one loop unrolled past NIR's budget, left the loop
// rolled and its arrays indexed at run time (0.35x).
fn pair_dots(
  dots: ptr<function, array<vec4f, 4>>, dots2: ptr<function, array<vec4f, 4>>, jj: u32,
  a: ptr<function, array<array<vec4f, MAX_HD4>, 4>>, b: ptr<function, array<array<vec4f, MAX_HD4>, 4>>,
  x: ptr<function, array<mat4x4f, MAX_HD4>>, y: ptr<function, array<mat4x4f, MAX_HD4>>,
) {
  var d = array<vec4f, 4>();
  for (var t = 0u; t < HD4; t++) {
    let xt = (*x)[t][jj];
    for (var r = 0u; r < 4u; r++) {
      if (computes(r)) { d[r] = fma((*a)[r][t], xt, d[r]); }
    }
  }
  var d2 = array<vec4f, 4>();
  for (var t = 0u; t < HD4; t++) {
    let yt = (*y)[t][jj];
    for (var r = 0u; r < 4u; r++) {
      if (computes(r)) { d2[r] = fma((*b)[r][t], yt, d2[r]); }
    }
  }
  for (var r = 0u; r < 4u; r++) {
    (*dots)[r][jj] = hsum(d[r]);
    (*dots2)[r][jj] = hsum(d2[r]);
  }
}

// Key rows per lane (KROWS: rows r * LANES + lane of the block): dk and dv, over all queries, four per step
// (q and dO from textures; lanes 0-3 load the (lse, D) of the step's queries and shuffles hand them round).
// The step's q and dO rows are fetched and gathered once and feed both the dot products and the updates
// (fetched twice before, when the dot products shuffled the spread rows: 1.04-1.21x, same sums).
// Each accumulator row is loaded and stored once per four queries (1.3-1.4x faster than once per query);
// 8 rows per lane, as in forward_texture, ran 3x slower here (twice the operands and accumulators: ~80 KB
// of stack per workgroup).
const KROWS = 4u;
const K_BLOCK = KROWS * LANES;  // key rows per workgroup
const_assert KROWS == 4u;  // backward_dkdv_texture spells out its four key rows

@compute @workgroup_size(LANES)
fn backward_dkdv_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let first_row = (b * p.heads + h) * p.seq;  // [B, H, S] row of query 0
  let seed_hash = hash_u32(p.seed);
  let y0 = (wg.z * p.heads + h) * p.seq;
  let hf = head_factor(h);
  let block = p.block0 + wg.x;
  var kj: array<array<vec4f, MAX_HD4>, KROWS>;
  var vj: array<array<vec4f, MAX_HD4>, KROWS>;
  var dk0: array<vec4f, MAX_HD4>;  // one array per key row
  var dk1: array<vec4f, MAX_HD4>;
  var dk2: array<vec4f, MAX_HD4>;
  var dk3: array<vec4f, MAX_HD4>;
  var dv0: array<vec4f, MAX_HD4>;
  var dv1: array<vec4f, MAX_HD4>;
  var dv2: array<vec4f, MAX_HD4>;
  var dv3: array<vec4f, MAX_HD4>;
  var key: array<u32, KROWS>;
  for (var r = 0u; r < KROWS; r++) {
    key[r] = min(block * K_BLOCK + r * LANES + lane, p.seq - 1u);
    if (computes(r)) {
      for (var t = 0u; t < HD4; t++) {
        kj[r][t] = textureLoad(k_tex, vec2u(t, y0 + key[r]), 0) * p.scale;
        vj[r][t] = textureLoad(v_tex, vec2u(t, y0 + key[r]), 0);
      }
    }
  }
  for (var i0 = 0u; i0 < p.seq; i0 += 4u) {
    let lane_stats = stats[first_row + min(i0 + lane % 4u, p.seq - 1u)];
    // the step's q and dO rows, shuffled once: qc[t][ii] = texel t of q_(i0 + ii)
    var qc: array<mat4x4f, MAX_HD4>;
    var dc: array<mat4x4f, MAX_HD4>;
    for_texels(&qc, 0u, fetch_row(q_tex, y0 + min(i0, p.seq - 1u), lane));
    for_texels(&qc, 1u, fetch_row(q_tex, y0 + min(i0 + 1u, p.seq - 1u), lane));
    for_texels(&qc, 2u, fetch_row(q_tex, y0 + min(i0 + 2u, p.seq - 1u), lane));
    for_texels(&qc, 3u, fetch_row(q_tex, y0 + min(i0 + 3u, p.seq - 1u), lane));
    for_texels(&dc, 0u, fetch_row(d_out_tex, y0 + min(i0, p.seq - 1u), lane));
    for_texels(&dc, 1u, fetch_row(d_out_tex, y0 + min(i0 + 1u, p.seq - 1u), lane));
    for_texels(&dc, 2u, fetch_row(d_out_tex, y0 + min(i0 + 2u, p.seq - 1u), lane));
    for_texels(&dc, 3u, fetch_row(d_out_tex, y0 + min(i0 + 3u, p.seq - 1u), lane));
    var s: array<vec4f, KROWS>;  // (key r, query ii): k_j.q_i and v_j.dO_i
    var dp: array<vec4f, KROWS>;
    pair_dots(&s, &dp, 0u, &kj, &vj, &qc, &dc);
    pair_dots(&s, &dp, 1u, &kj, &vj, &qc, &dc);
    pair_dots(&s, &dp, 2u, &kj, &vj, &qc, &dc);
    pair_dots(&s, &dp, 3u, &kj, &vj, &qc, &dc);
    let lse = vec4f(subgroupShuffle(lane_stats.x, 0u), subgroupShuffle(lane_stats.x, 1u), subgroupShuffle(lane_stats.x, 2u), subgroupShuffle(lane_stats.x, 3u));
    let delta = vec4f(subgroupShuffle(lane_stats.y, 0u), subgroupShuffle(lane_stats.y, 1u), subgroupShuffle(lane_stats.y, 2u), subgroupShuffle(lane_stats.y, 3u));
    let in_seq = i0 + vec4u(0u, 1u, 2u, 3u) < vec4u(p.seq);  // queries past S add nothing
    var pw: array<vec4f, KROWS>;  // p' of (query ii, key r): dv's weight
    var ds: array<vec4f, KROWS>;
    for (var r = 0u; r < KROWS; r++) {
      if (computes(r)) {
        var f = vec4f(hf);
        if (DROPOUT) {
          for (var ii = 0u; ii < 4u; ii++) { f[ii] = hf * dropout_factor((first_row + i0 + ii) * p.seq, key[r], seed_hash); }
        }
        let pr = exp(s[r] - lse);
        pw[r] = select(vec4f(0.0), pr * f, in_seq);
        ds[r] = select(vec4f(0.0), pr * (f * dp[r] - delta), in_seq);
      }
    }
    rescale_add(&dv0, 1.0, pw[0], &dc);
    if (computes(1u)) { rescale_add(&dv1, 1.0, pw[1], &dc); }
    if (computes(2u)) { rescale_add(&dv2, 1.0, pw[2], &dc); }
    if (computes(3u)) { rescale_add(&dv3, 1.0, pw[3], &dc); }
    rescale_add(&dk0, 1.0, ds[0], &qc);
    if (computes(1u)) { rescale_add(&dk1, 1.0, ds[1], &qc); }
    if (computes(2u)) { rescale_add(&dk2, 1.0, ds[2], &qc); }
    if (computes(3u)) { rescale_add(&dk3, 1.0, ds[3], &qc); }
  }
  let j0 = block * K_BLOCK + lane;
  store_scaled(&dk0, j0, b, h, p.scale);
  store_scaled(&dk1, j0 + LANES, b, h, p.scale);
  store_scaled(&dk2, j0 + 2u * LANES, b, h, p.scale);
  store_scaled(&dk3, j0 + 3u * LANES, b, h, p.scale);
  store_second(&dv0, j0, b, h);
  store_second(&dv1, j0 + LANES, b, h);
  store_second(&dv2, j0 + 2u * LANES, b, h);
  store_second(&dv3, j0 + 3u * LANES, b, h);
}

// row j (of item b, head h) of the second result = acc, if j < S
fn store_second(acc: ptr<function, array<vec4f, MAX_HD4>>, j: u32, b: u32, h: u32) {
  if (j < p.seq) {
    let base = row_base(b * p.seq + j, h);
    for (var t = 0u; t < HD4; t++) { store_row2(base, t, (*acc)[t]); }
  }
}
