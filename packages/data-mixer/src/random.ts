// Seeded, counter-based randomness. Hand-written (not a library) because the exact bit stream is part of the
// determinism contract: the same seed must give the same data order in every version and on every platform.

/** 32-bit avalanche mix (the finaliser of MurmurHash3). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes a list of integers and strings into a 32-bit seed. */
export function hashSeed(...parts: Array<number | string>): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    if (typeof part === 'number') {
      // Numbers up to 2^53: hash the low and high 32-bit halves.
      h = fmix32(h ^ (part >>> 0));
      h = fmix32(h ^ Math.floor(part / 2 ** 32));
    } else {
      for (let i = 0; i < part.length; i++) h = fmix32(h ^ part.charCodeAt(i));
      h = fmix32(h ^ part.length);
    }
  }
  return h;
}

/** A uniform number in [0, 1) that depends only on its arguments (53 random bits). */
export function uniformAt(...parts: Array<number | string>): number {
  const hi = hashSeed(...parts, 1) >>> 5; // 27 bits
  const lo = hashSeed(...parts, 2) >>> 6; // 26 bits
  return (hi * 2 ** 26 + lo) / 2 ** 53;
}

/** sfc32: a small, fast PRNG with a 128-bit state; returns uniform numbers in [0, 1). */
export function sfc32(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** A uniformly random permutation of 0..n-1 (Fisher-Yates) drawn from `seed`. */
export function permutation(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const rand = sfc32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}
