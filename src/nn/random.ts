// The library's seeded random source: parameter initialisation and dropout seeds.
// Counter-based (splitmix64 on a 64-bit counter held as BigInt), so the state is one number
// that checkpoints and gradient checkpointing can save and restore.

let state = 0x9e3779b97f4a7c15n;
const MASK = (1n << 64n) - 1n;

export function manualSeed(seed: number): void {
  state = (BigInt.asUintN(64, BigInt(Math.floor(seed))) * 0x9e3779b97f4a7c15n) & MASK;
}

export function getRngState(): string {
  return state.toString();
}

export function setRngState(s: string): void {
  state = BigInt(s) & MASK;
}

/** Next 64 random bits, folded to a float in [0, 1) with 53 bits. */
export function random(): number {
  state = (state + 0x9e3779b97f4a7c15n) & MASK;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  z = z ^ (z >> 31n);
  return Number(z >> 11n) / 2 ** 53;
}

/** A 32-bit seed for a GPU kernel (dropout masks). */
export function nextSeed(): number {
  return Math.floor(random() * 2 ** 32) >>> 0;
}

/**
 * n samples of N(mean, std^2) truncated to [a, b] (absolute bounds, like torch.nn.init.trunc_normal_).
 * Uses a fast local generator seeded from the global state, so large tensors stay cheap.
 */
export function truncNormal(n: number, std: number, mean = 0, a = -2, b = 2): Float32Array {
  let s = nextSeed() || 1;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; ) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const th = 2 * Math.PI * uniform();
    for (const z of [r * Math.cos(th), r * Math.sin(th)]) {
      const v = mean + std * z;
      if (i < n && v >= a && v <= b) out[i++] = v;
    }
  }
  return out;
}
