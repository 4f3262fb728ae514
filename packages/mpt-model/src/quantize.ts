/**
 * int8 quantization of a model for inference on wasm or webgpu: each block matrix (Wqkv, out_proj, up_proj,
 * down_proj) becomes per-row int8 + a float32 scale, and the tied output projection gets an int8 copy of its
 * own. `int8` keeps activations out of int8 (weight-only; wasm rounds a decode step's rows of x to int16, see
 * `int8Linear`); `w8a8` also quantizes activation rows to int8 for the many-row matmuls (prefill) on webgpu
 * devices with int8 subgroup matrices, and is `int8` elsewhere. The token embedding stays float32 (a lookup reads
 * one row per token, so int8 would save memory but no time, and the embedding feeds every layer), as do norms and
 * biases (tiny, and sensitive to rounding).
 */
import { type Int8Weight, int8WeightBytes, quantizeInt8, uploadInt8 } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { MPTConfig } from './config.js';
import { INT8_HEAD, isBlockLinearWeight } from './parameters.js';
import { expectedParameterShapes } from './state-dict.js';
import type { StateDict } from './unit-chain/host-tensor.js';

/** Weight quantization for inference (`ModelOptions.quantize`). */
export type QuantizeMode = 'int8' | 'w8a8';

export const QUANTIZE_MODES: readonly QuantizeMode[] = ['int8', 'w8a8'];

export class QuantizationError extends Error {
  override name = 'QuantizationError';
}

/** Throws unless `mode` is a supported quantization (for CLI flags and JSON options). */
export function parseQuantizeMode(mode: string): QuantizeMode {
  if (!(QUANTIZE_MODES as readonly string[]).includes(mode)) {
    throw new QuantizationError(`unknown quantization "${mode}" (supported: ${QUANTIZE_MODES.join(', ')})`);
  }
  return mode as QuantizeMode;
}

/** Bytes of the weights held as tensors: float32 as loaded, and with int8 block matrices plus the int8 head. */
export function quantizedWeightBytes(config: MPTConfig): { fp32: number; int8: number } {
  let fp32 = 0;
  let int8 = 0;
  for (const [name, shape] of expectedParameterShapes(config)) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    fp32 += bytes;
    int8 += isBlockLinearWeight(name) ? int8WeightBytes(shape[0]!, shape[1]!) : bytes;
  }
  int8 += int8WeightBytes(config.vocabSize, config.dModel);
  return { fp32, int8 };
}

/** Backends with int8 kernels. */
export const INT8_BACKENDS: readonly string[] = ['wasm', 'webgpu'];

/** Throws unless quantized weights can run here: the int8 kernels exist for the wasm and webgpu backends. */
export function assertInt8Backend(): void {
  const backend = tf.getBackend();
  if (!INT8_BACKENDS.includes(backend)) {
    throw new QuantizationError(
      `int8 quantization runs on the wasm and webgpu backends (active backend: ${backend}); select one of them or load float32 weights`,
    );
  }
}

/**
 * Quantizes and uploads the block matrices and the output head of `stateDict` (torch `[out, in]` layout).
 * Returns the int8 weights by parameter name (the head under `INT8_HEAD`).
 */
export function quantizeModelWeights(
  config: MPTConfig,
  stateDict: StateDict,
  mode: QuantizeMode = 'int8',
): Map<string, Int8Weight> {
  assertInt8Backend();
  const out = new Map<string, Int8Weight>();
  const upload = (data: Float32Array, shape: [number, number]) => {
    const w = uploadInt8(quantizeInt8(data, shape));
    if (mode === 'w8a8') w.activations = 'int8';
    return w;
  };
  try {
    for (const name of expectedParameterShapes(config).keys()) {
      if (!isBlockLinearWeight(name)) continue;
      const t = stateDict.get(name)!;
      out.set(name, upload(t.data, [t.shape[0]!, t.shape[1]!]));
    }
    const wte = stateDict.get('transformer.wte.weight')!;
    out.set(INT8_HEAD, upload(wte.data, [config.vocabSize, config.dModel]));
  } catch (err) {
    for (const w of out.values()) tf.dispose([w.packed, w.scales]);
    throw err;
  }
  return out;
}
