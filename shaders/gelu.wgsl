// The exact-erf GELU of torch's nn.functional.gelu (approximate='none') and its derivative, shared by
// elementwise.wgsl's GELU kernels and matmul.wgsl's GELU epilogue (the same code gives the same bits).

// erf by Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): WGSL has no erf, and the golden tolerances
// need the exact-erf GELU, not the tanh approximation.
fn erf_approx(v: f32) -> f32 {
  let s = sign(v);
  let z = abs(v);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1.0 - poly * exp(-z * z));
}

const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

fn gelu(v: f32) -> f32 {
  return 0.5 * v * (1.0 + erf_approx(v * INV_SQRT2));
}

// d gelu(v) / dv = cdf(v) + v pdf(v)
fn gelu_grad(v: f32) -> f32 {
  let cdf = 0.5 * (1.0 + erf_approx(v * INV_SQRT2));
  let pdf = INV_SQRT_2PI * exp(-0.5 * v * v);
  return cdf + v * pdf;
}
