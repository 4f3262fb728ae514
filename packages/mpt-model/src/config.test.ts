import { registerAttentionImpl } from '@mptjs/alibi-attention';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseMptConfig, toMptConfigJson } from './config.js';

const mosaic = {
  model_type: 'mosaic_gpt',
  d_model: 64,
  n_heads: 4,
  n_layers: 2,
  mlp_ratio: 4,
  max_seq_len: 128,
  vocab_size: 50432,
  alibi: true,
  alibi_bias_max: 8,
  attn_qk_ln: true,
  attn_clip_qkv: null,
  softmax_scale: null,
  no_bias: true,
  logit_scale: null,
  low_precision_layernorm: true,
};

describe('parseMptConfig', () => {
  it('reads the MosaicGPT dialect and round-trips through the mpt dialect it writes', () => {
    const c = parseMptConfig(mosaic);
    expect(c).toMatchObject({
      modelType: 'mosaic_gpt',
      dModel: 64,
      nHeads: 4,
      alibi: true,
      qkLn: true,
      noBias: true,
    });
    expect(c.learnedPosEmb).toBe(false);
    const again = parseMptConfig(toMptConfigJson(c));
    expect({ ...again, modelType: 'mosaic_gpt' }).toEqual(c);
    expect(again.modelType).toBe('mpt');
  });

  it('resolves logit_scale "inv_sqrt_d_model"', () => {
    expect(parseMptConfig({ ...mosaic, logit_scale: 'inv_sqrt_d_model' }).logitScale).toBeCloseTo(1 / 8);
  });

  it('names the key and the value that is impossible', () => {
    expect(() => parseMptConfig({ ...mosaic, n_heads: 5 })).toThrow(
      '"d_model" (64) must be divisible by "n_heads" (5)',
    );
    expect(() => parseMptConfig({ ...mosaic, vocab_size: -3 })).toThrow(
      'config key "vocab_size" must be an integer in 1..4194304, got -3',
    );
    expect(() =>
      parseMptConfig({ ...mosaic, model_type: 'mpt', attn_config: { alibi_bias_max: 'big' } }),
    ).toThrow('config key "attn_config.alibi_bias_max" must be a positive number, got "big"');
  });

  it("takes attn_impl from alibi-attention's registered names, in both dialects", () => {
    expect(parseMptConfig(mosaic).attnImpl).toBe('torch');
    expect(parseMptConfig({ ...mosaic, attn_impl: 'triton' }).attnImpl).toBe('triton');
    const mpt = { ...mosaic, model_type: 'mpt' };
    expect(() => parseMptConfig({ ...mpt, attn_config: { attn_impl: 'xformers' } })).toThrow(
      'config key "attn_config.attn_impl" must be one of "torch", "flash", "triton", got "xformers"',
    );
    expect(() => parseMptConfig({ ...mosaic, attn_impl: 'auto' })).toThrow(
      'config key "attn_impl" must be one of "torch", "flash", "triton", got "auto"',
    );
    registerAttentionImpl('xformers', { path: 'fused', noticeOnFallback: true });
    const c = parseMptConfig({ ...mpt, attn_config: { attn_impl: 'xformers' } });
    expect(c.attnImpl).toBe('xformers');
    expect(toMptConfigJson(c)['attn_config']).toMatchObject({ attn_impl: 'xformers' });
    expect(() => parseMptConfig({ ...mosaic, attn_impl: 'flex' })).toThrow(
      'config key "attn_impl" must be one of "torch", "flash", "triton", "xformers", got "flex"',
    );
  });

  it('bounds every size before anything is allocated, naming the key', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ n_layers: 1_000_000 }, 'config key "n_layers" must be an integer in 1..1024, got 1000000'],
      [{ d_model: 2 ** 20, n_heads: 1 }, 'config key "d_model" must be an integer in 1..65536, got 1048576'],
      [{ n_heads: 4096 }, 'config key "n_heads" must be an integer in 1..1024, got 4096'],
      [{ vocab_size: 1e9 }, 'config key "vocab_size" must be an integer in 1..4194304, got 1000000000'],
      [{ max_seq_len: 2 ** 31 }, 'config key "max_seq_len" must be an integer in 1..1048576, got 2147483648'],
      [{ mlp_ratio: 1e6 }, 'config key "mlp_ratio" must be a positive number <= 64, got 1000000'],
      [{ n_layers: 1.5 }, 'config key "n_layers" must be an integer in 1..1024, got 1.5'],
      [{ n_layers: '2' }, 'config key "n_layers" must be an integer in 1..1024, got "2"'],
    ];
    for (const [patch, message] of cases) {
      expect(() => parseMptConfig({ ...mosaic, ...patch }), message).toThrow(message);
    }
    expect(() => parseMptConfig({ ...mosaic, model_type: 'mpt', expansion_ratio: 100 })).toThrow(
      'config key "expansion_ratio" must be a positive number <= 64, got 100',
    );
    // The limits leave room for every published MPT.
    expect(
      parseMptConfig({ ...mosaic, d_model: 7168, n_heads: 64, n_layers: 48, max_seq_len: 65536 }).nLayers,
    ).toBe(48);
  });

  it('rejects features that would silently change the model', () => {
    const mpt = { ...mosaic, model_type: 'mpt', attn_config: { alibi: true } };
    expect(() => parseMptConfig({ ...mpt, attn_config: { rope: true } })).toThrow(
      'config key "attn_config.rope" = true is not supported',
    );
    expect(() => parseMptConfig({ ...mpt, attn_config: { kv_n_heads: 1 } })).toThrow(
      '"attn_config.kv_n_heads" = 1',
    );
    expect(() => parseMptConfig({ ...mosaic, prefix_lm: true })).toThrow('"prefix_lm" = true');
    expect(() => parseMptConfig({ ...mosaic, resid_pdrop: 0.1 })).toThrow('dropout is not implemented');
    expect(parseMptConfig({ ...mpt, attn_config: { kv_n_heads: 4, sliding_window_size: -1 } }).nHeads).toBe(
      4,
    );
    expect(() => parseMptConfig([])).toThrow(ConfigError);
  });
});
