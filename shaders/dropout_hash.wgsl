// The dropout mask, shared by elementwise.wgsl (dropout) and the attention kernels: element `index` of a
// tensor is kept when a hash of (seed, index) clears the drop probability. It is never stored: backward
// regenerates it, and the same seed drops the same elements in every kernel (src/ref/attention.ts
// dropoutKeeps is the same hash on the CPU).
fn hash_u32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u; h *= 0x7feb352du;
  h ^= h >> 15u; h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// seed_hash = hash_u32(seed), worked out once per invocation
fn dropout_keeps(index: u32, seed_hash: u32, prob: f32) -> bool {
  let r = hash_u32(index ^ seed_hash);
  return f32(r >> 8u) * (1.0 / 16777216.0) >= prob;
}
