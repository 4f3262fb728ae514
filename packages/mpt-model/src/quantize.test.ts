import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initStateDict } from './init.js';
import { MPTModel } from './model.js';
import { chooseOffload, WASM_HEAP_LIMIT_BYTES } from './offload.js';
import { quantizedWeightBytes } from './quantize.js';
import { tinyConfig } from './testing/tiny-config.js';

describe('int8 weight-only quantized model', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { log: false });
  });

  it('keeps no float32 copy of the quantized matrices and counts the same parameters', () => {
    const config = tinyConfig();
    const sd = initStateDict(config, 1);
    const fp32 = MPTModel.fromStateDict(config, sd);
    const before = tf.memory().numBytes;
    const q = MPTModel.fromStateDict(config, sd, { quantize: 'int8' });
    expect(q.quantization).toBe('int8');
    expect(fp32.quantization).toBeNull();
    expect(q.numParameters).toBe(fp32.numParameters);
    expect(q.params.has('transformer.blocks.0.attn.Wqkv.weight')).toBe(false);
    expect(q.params.has('transformer.wte.weight')).toBe(true);
    expect(tf.memory().numBytes - before).toBe(quantizedWeightBytes(config).int8);
    expect(() => q.get('transformer.blocks.0.ffn.up_proj.weight')).toThrow(/int8-quantized/);
    fp32.dispose();
    q.dispose();
  });

  it('rejects training, saving, offload and non-wasm backends clearly', async () => {
    const config = tinyConfig();
    const sd = initStateDict(config, 2);
    expect(() =>
      MPTModel.fromStateDict(config, sd, { quantize: 'int8', offload: { maxResidentBytes: 1e9 } }),
    ).toThrow(/cannot be combined/);
    const q = MPTModel.fromStateDict(config, sd, { quantize: 'int8' });
    expect(() => q.loss([[1, 2, 3]], [[2, 3, 4]])).toThrow(/loss \(training\) needs float32 weights/);
    await expect(q.toStateDict()).rejects.toThrow(/saving a state dict needs float32 weights/);
    q.dispose();
    await selectBackend('cpu', { log: false });
    expect(() => MPTModel.fromStateDict(config, sd, { quantize: 'int8' })).toThrow(
      /wasm and webgpu backends \(active backend: cpu\)/,
    );
    await selectBackend('wasm', { log: false });
  });

  it('fits mpt-1b (1.3B parameters) in the wasm heap without offload once int8, and never offloads int8', () => {
    const config = tinyConfig({ dModel: 2048, nHeads: 16, nLayers: 24, vocabSize: 50432, maxSeqLen: 2048 });
    const { fp32, int8 } = quantizedWeightBytes(config);
    expect(fp32).toBeGreaterThan(WASM_HEAP_LIMIT_BYTES);
    expect(int8).toBeLessThan(0.4 * fp32);
    const backend = 'wasm';
    expect(chooseOffload(config, { backend, mode: 'auto' }).offload).toBeDefined();
    expect(chooseOffload(config, { backend, mode: 'auto', quantize: 'int8' }).offload).toBeUndefined();
    expect(() => chooseOffload(config, { backend, mode: 'on', quantize: 'int8' })).toThrow(
      /cannot be offloaded/,
    );
    const huge = { ...config, nLayers: 96 };
    expect(() => chooseOffload(huge, { backend, mode: 'auto', quantize: 'int8' })).toThrow(
      /do not fit the 4.00 GiB wasm heap/,
    );
  });
});
