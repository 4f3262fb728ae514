/** Which ALiBi slope formula to use: llm-foundry's `mpt` or the original MosaicGPT code the 1b model shipped with. */
export type AlibiDialect = 'mpt' | 'mosaic_gpt';

/**
 * Per-head ALiBi slopes.
 * - `mosaic_gpt`: `m = 1..n` times `alibiBiasMax / n`, slope `2^-m`.
 * - `mpt` (llm-foundry `gen_slopes`): the same over `n' = 2^ceil(log2 n)` heads, then, when `n' != n`, the odd
 *   positions followed by the even ones, cut to `n` (`concat(slopes[1::2], slopes[::2])[:n]`).
 * The two agree whenever `nHeads` is a power of two.
 */
export function alibiSlopes(nHeads: number, alibiBiasMax = 8, dialect: AlibiDialect = 'mpt'): Float32Array {
  if (!Number.isInteger(nHeads) || nHeads < 1)
    throw new RangeError(`nHeads must be a positive integer, got ${nHeads}`);
  if (!(alibiBiasMax > 0) || !Number.isFinite(alibiBiasMax)) {
    throw new RangeError(`alibiBiasMax must be a positive number, got ${alibiBiasMax}`);
  }
  const n = dialect === 'mpt' ? 2 ** Math.ceil(Math.log2(nHeads)) : nHeads;
  // Computed in float32 like torch: m = arange(1, n+1) * (max / n), then 1 / 2^m.
  const slopes: number[] = [];
  for (let m = 1; m <= n; m++) slopes.push(1 / 2 ** Math.fround(m * Math.fround(alibiBiasMax / n)));
  if (n === nHeads) return Float32Array.from(slopes);
  const odd = slopes.filter((_, i) => i % 2 === 1);
  const even = slopes.filter((_, i) => i % 2 === 0);
  return Float32Array.from([...odd, ...even].slice(0, nHeads));
}
