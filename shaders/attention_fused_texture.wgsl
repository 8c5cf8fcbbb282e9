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

const LANES = 8u;  // one workgroup = one subgroup of 8 lanes
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

// the sum of four partial dot products
fn hsum(x: vec4f) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

// Register tiles: each lane owns QROWS query rows (rows r * LANES + lane of its workgroup's block), so
// every texel of a key or value row, fetched and shuffled once, feeds QROWS rows' multiply-adds. Measured
// on lavapipe at S = 577, hd 64: 4 rows beat 1, 2 and 8 (more rows: more code and stack per iteration).
// Dot products keep four partial sums (a vec4) per row: independent multiply-add chains, not one serial
// chain of 64. Accumulators declared inside a loop are initialised explicitly (`array<...>()`): a bare
// `var x: array<...>;` there was zeroed only once on lavapipe, not on every iteration.
const QROWS = 4u;  // (src/ops/attention.ts reads QROWS and KROWS)
const Q_BLOCK = QROWS * LANES;  // query rows per workgroup
const KEYS = 4u;  // keys per step of the online softmax: the running sum and context are rescaled once per step

// Query rows per lane: the context rows and their log-sum-exps.
@compute @workgroup_size(LANES)
fn forward_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let seed_hash = hash_u32(p.seed);
  let y0 = (wg.z * p.heads + h) * p.seq;  // texture row of key 0
  var qi: array<array<vec4f, MAX_HD4>, QROWS>;
  var acc: array<array<vec4f, MAX_HD4>, QROWS>;
  var row: array<u32, QROWS>;  // [B, H, S] row
  var m: array<f32, QROWS>;
  var l: array<f32, QROWS>;
  for (var r = 0u; r < QROWS; r++) {
    let i = min(wg.x * Q_BLOCK + r * LANES + lane, p.seq - 1u);
    row[r] = (b * p.heads + h) * p.seq + i;
    let base = row_base(b * p.seq + i, h);
    for (var t = 0u; t < HD4; t++) { qi[r][t] = q_texel(base, t) * p.scale; }
    m[r] = NEG_BIG;
    l[r] = 0.0;
  }
  for (var j0 = 0u; j0 < p.seq; j0 += KEYS) {
    var s = array<vec4f, QROWS>();
    for (var jj = 0u; jj < KEYS; jj++) {
      let kr = fetch_row(k_tex, y0 + min(j0 + jj, p.seq - 1u), lane);
      var d = array<vec4f, QROWS>();  // four partial sums each: independent multiply-add chains
      for (var t = 0u; t < HD4; t++) {
        let kt = texel_of(kr, t);
        for (var r = 0u; r < QROWS; r++) { d[r] = fma(qi[r][t], kt, d[r]); }
      }
      for (var r = 0u; r < QROWS; r++) { s[r][jj] = select(NEG_BIG, hsum(d[r]), j0 + jj < p.seq); }  // keys past S get probability 0
    }
    var c = array<f32, QROWS>();
    var w = array<vec4f, QROWS>();
    for (var r = 0u; r < QROWS; r++) {
      let m_new = max(m[r], max(max(s[r].x, s[r].y), max(s[r].z, s[r].w)));
      c[r] = exp(m[r] - m_new);
      let e = exp(s[r] - vec4f(m_new));
      l[r] = l[r] * c[r] + (e.x + e.y + e.z + e.w);
      w[r] = e;
      if (DROPOUT) {
        for (var jj = 0u; jj < KEYS; jj++) { w[r][jj] *= dropout_factor(row[r] * p.seq, j0 + jj, seed_hash); }
      }
      m[r] = m_new;
    }
    for (var jj = 0u; jj < KEYS; jj++) {
      let vr = fetch_row(v_tex, y0 + min(j0 + jj, p.seq - 1u), lane);
      for (var t = 0u; t < HD4; t++) {
        let vt = texel_of(vr, t);
        for (var r = 0u; r < QROWS; r++) {
          var a = acc[r][t];
          if (jj == 0u) { a *= c[r]; }  // the rescale, folded into the first key's pass
          acc[r][t] = fma(vec4f(w[r][jj]), vt, a);
        }
      }
    }
  }
  for (var r = 0u; r < QROWS; r++) {
    let i = wg.x * Q_BLOCK + r * LANES + lane;
    if (i < p.seq) {
      let f = head_factor(h) / l[r];
      let base = row_base(b * p.seq + i, h);
      for (var t = 0u; t < HD4; t++) { store_row(base, t, acc[r][t] * f); }
      stats_out[row[r]] = vec2f(m[r] + log(l[r]), 0.0);
    }
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
  var qi: array<array<vec4f, MAX_HD4>, QROWS>;
  var doi: array<array<vec4f, MAX_HD4>, QROWS>;
  var dq: array<array<vec4f, MAX_HD4>, QROWS>;
  var row: array<u32, QROWS>;
  var st: array<vec2f, QROWS>;
  for (var r = 0u; r < QROWS; r++) {
    let i = min(wg.x * Q_BLOCK + r * LANES + lane, p.seq - 1u);
    row[r] = (b * p.heads + h) * p.seq + i;
    st[r] = stats[row[r]];
    let base = row_base(b * p.seq + i, h);
    for (var t = 0u; t < HD4; t++) { qi[r][t] = q_texel(base, t) * p.scale; doi[r][t] = d_out_texel(base, t); }
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
        s[r] = fma(qi[r][t], kt, s[r]);
        dp[r] = fma(doi[r][t], vt, dp[r]);
      }
    }
    var ds: array<f32, QROWS>;
    for (var r = 0u; r < QROWS; r++) {
      let f = hf * dropout_factor(row[r] * p.seq, j, seed_hash);
      ds[r] = exp(hsum(s[r]) - st[r].x) * (f * hsum(dp[r]) - st[r].y);
    }
    for (var t = 0u; t < HD4; t++) {
      for (var r = 0u; r < QROWS; r++) { dq[r][t] = fma(vec4f(ds[r]), kc[t], dq[r][t]); }
    }
  }
  for (var r = 0u; r < QROWS; r++) {
    let i = wg.x * Q_BLOCK + r * LANES + lane;
    if (i < p.seq) {
      let base = row_base(b * p.seq + i, h);
      for (var t = 0u; t < HD4; t++) { store_row(base, t, dq[r][t] * p.scale); }
    }
  }
}

// Key rows per lane (KROWS: rows r * LANES + lane of the block): dk and dv, over all queries (q and dO
// from textures; each lane loads the (lse, D) of one of the next 8 queries and shuffles hand them round).
const KROWS = 4u;
const K_BLOCK = KROWS * LANES;  // key rows per workgroup

@compute @workgroup_size(LANES)
fn backward_dkdv_texture(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = p.batch0 + wg.z;
  let h = wg.y;
  let first_row = (b * p.heads + h) * p.seq;  // [B, H, S] row of query 0
  let seed_hash = hash_u32(p.seed);
  let y0 = (wg.z * p.heads + h) * p.seq;
  let hf = head_factor(h);
  var kj: array<array<vec4f, MAX_HD4>, KROWS>;
  var vj: array<array<vec4f, MAX_HD4>, KROWS>;
  var dk: array<array<vec4f, MAX_HD4>, KROWS>;
  var dv: array<array<vec4f, MAX_HD4>, KROWS>;
  var key: array<u32, KROWS>;
  for (var r = 0u; r < KROWS; r++) {
    key[r] = min(wg.x * K_BLOCK + r * LANES + lane, p.seq - 1u);
    let base = row_base(b * p.seq + key[r], h);
    for (var t = 0u; t < HD4; t++) { kj[r][t] = k_texel(base, t) * p.scale; vj[r][t] = v_texel(base, t); }
  }
  for (var i0 = 0u; i0 < p.seq; i0 += LANES) {
    let lane_stats = stats[first_row + min(i0 + lane, p.seq - 1u)];
    for (var ii = 0u; ii < min(LANES, p.seq - i0); ii++) {
      let st = subgroupShuffle(lane_stats, ii);
      let qr = fetch_row(q_tex, y0 + i0 + ii, lane);
      let dr = fetch_row(d_out_tex, y0 + i0 + ii, lane);
      var s = array<vec4f, KROWS>();  // partial sums, as in forward_texture
      var dp = array<vec4f, KROWS>();
      var qc: array<vec4f, MAX_HD4>;  // q_i's and dO_i's texels, shuffled once for both loops
      var dc: array<vec4f, MAX_HD4>;
      for (var t = 0u; t < HD4; t++) {
        let qt = texel_of(qr, t);
        let dt = texel_of(dr, t);
        qc[t] = qt;
        dc[t] = dt;
        for (var r = 0u; r < KROWS; r++) {
          s[r] = fma(kj[r][t], qt, s[r]);
          dp[r] = fma(vj[r][t], dt, dp[r]);
        }
      }
      var pw: array<f32, KROWS>;  // p' of (query, key r): dv's weight
      var ds: array<f32, KROWS>;
      for (var r = 0u; r < KROWS; r++) {
        let f = hf * dropout_factor((first_row + i0 + ii) * p.seq, key[r], seed_hash);
        let pr = exp(hsum(s[r]) - st.x);
        pw[r] = pr * f;
        ds[r] = pr * (f * hsum(dp[r]) - st.y);
      }
      for (var t = 0u; t < HD4; t++) {
        for (var r = 0u; r < KROWS; r++) {
          dv[r][t] = fma(vec4f(pw[r]), dc[t], dv[r][t]);
          dk[r][t] = fma(vec4f(ds[r]), qc[t], dk[r][t]);
        }
      }
    }
  }
  for (var r = 0u; r < KROWS; r++) {
    let j = wg.x * K_BLOCK + r * LANES + lane;
    if (j < p.seq) {
      let base = row_base(b * p.seq + j, h);
      for (var t = 0u; t < HD4; t++) {
        store_row(base, t, dk[r][t] * p.scale);
        store_row2(base, t, dv[r][t]);
      }
    }
  }
}
