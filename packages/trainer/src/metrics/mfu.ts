import type { MPTConfig } from '@mptjs/mpt-model';

/**
 * Training FLOPs per sample, llm-foundry's formula: `6 * n_params * seq + 12 * n_layers * d_model * seq^2`
 * (forward + backward of every weight, plus attention scores). The recompute in the unit-chain backward is
 * not counted, as MFU conventionally excludes it.
 */
export function flopsPerSample(config: MPTConfig, nParams: number, seqLen: number): number {
  return 6 * nParams * seqLen + 12 * config.nLayers * config.dModel * seqLen * seqLen;
}

/**
 * Peak FLOP/s per backend, measured on the reference machine (DESIGN.md section 6: a 1024^3 float32 matmul,
 * one thread). webgpu has no fixed figure (it depends on the adapter): pass `peak_flops` or measure.
 */
export const PEAK_FLOPS: Readonly<Record<string, number>> = { wasm: 41e9, cpu: 1.4e9 };

export function mfu(
  flopsPerSampleValue: number,
  samplesPerS: number,
  peakFlops: number | undefined,
): number | null {
  if (!peakFlops || !Number.isFinite(samplesPerS)) return null;
  return (flopsPerSampleValue * samplesPerS) / peakFlops;
}
