// acc + a.x * b[0] + a.y * b[1] + a.z * b[2] + a.w * b[3], one fma after another in that order: four
// steps of a product's k (matmul_texture, matmul_subgroup4) or of the fused attention's keys and queries
fn fma4(acc: vec4f, a: vec4f, b: mat4x4f) -> vec4f {
  return fma(vec4f(a.w), b[3], fma(vec4f(a.z), b[2], fma(vec4f(a.y), b[1], fma(vec4f(a.x), b[0], acc))));
}
