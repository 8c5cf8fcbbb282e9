// Inputs of the browser tests' matmul check that the page (browser-page.ts) and Node (browser.test.ts) both make.

/** Inputs both sides regenerate: sin of the index, scaled per seed. */
export const testValues = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.731 + seed) * (1 + (seed % 3)));

/** The attention shape of the variant check: odd sequence length and head dim (B, S, H, hd). */
export const ATTENTION_CASE = { batch: 2, seq: 17, heads: 2, headDim: 10 } as const;

/** The matmul shapes of the variant check: [M, K, N, batch] (odd edges, aligned vec4 rows, a batch). */
export const MATMUL_CASES = [[17, 26, 13, 1], [26, 35, 17, 3], [24, 32, 16, 2], [65, 32, 65, 2]] as const;
