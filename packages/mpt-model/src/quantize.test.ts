import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { int8ThreadPool, selectBackend, setWasmThreads } from '@mptjs/kernels';
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

  it('decodes the same logits bit for bit with its int8 products split over threads', async () => {
    // Large enough that most products (the head, up, down and Wqkv projections) go to the thread pool.
    const config = tinyConfig({ dModel: 320, nHeads: 5, vocabSize: 2048 });
    const q = MPTModel.fromStateDict(config, initStateDict(config, 3), { quantize: 'int8' });
    const logitBits = async (threads: number): Promise<Uint32Array[]> => {
      setWasmThreads(threads);
      await int8ThreadPool()?.whenReady();
      const cache = q.newCache();
      const rows: Uint32Array[] = [];
      const take = (logits: tf.Tensor2D): number => {
        const data = logits.dataSync() as Float32Array;
        rows.push(new Uint32Array(data.slice().buffer));
        let best = 0;
        for (let i = 1; i < data.length; i++) if (data[i]! > data[best]!) best = i;
        logits.dispose();
        return best;
      };
      // A 5-id prompt: 5 rows per product (below the float-matmul switch), then 6 one-row steps.
      let next = take(q.prefill([[5, 17, 300, 1999, 42]], cache));
      for (let step = 0; step < 6; step++) next = take(q.decodeStep([next], cache));
      cache.dispose();
      return rows;
    };
    try {
      const one = await logitBits(1);
      expect(int8ThreadPool()).toBeNull();
      const two = await logitBits(2);
      expect(int8ThreadPool()!.sharedBytes).toBeGreaterThan(2048 * 320);
      expect(two).toEqual(one);
    } finally {
      setWasmThreads('auto');
      q.dispose();
    }
  });

  it('lets a process that used the int8 threads exit on its own (the workers do not hold it open)', async () => {
    const script = `
      import { int8Linear, int8ThreadPool, quantizeInt8, selectBackend, setWasmThreads, uploadInt8 } from '@mptjs/kernels';
      import * as tf from '@tensorflow/tfjs-core';
      await selectBackend('wasm', { log: false });
      setWasmThreads(2);
      const w = uploadInt8(quantizeInt8(new Float32Array(1024 * 512).fill(0.5), [1024, 512]));
      int8Linear(tf.ones([1, 512]), w).dispose();
      await int8ThreadPool().whenReady();
      const y = int8Linear(tf.ones([1, 512]), w);
      console.log('sum', y.sum().dataSync()[0], 'shared', int8ThreadPool().sharedBytes > 1024 * 512);`;
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd,
      timeout: 60_000,
    });
    // 1024 outputs of 512 products 0.5 * 1, up to the rounding of the int8 scale.
    const [sum, shared] = stdout
      .trim()
      .split(' ')
      .filter((_, i) => i % 2);
    expect(Math.abs(Number(sum) - 262144)).toBeLessThan(1);
    expect(shared).toBe('true');
  });
});
