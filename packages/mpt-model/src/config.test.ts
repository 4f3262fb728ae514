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
      'config key "vocab_size" must be an integer >= 1, got -3',
    );
    expect(() =>
      parseMptConfig({ ...mosaic, model_type: 'mpt', attn_config: { alibi_bias_max: 'big' } }),
    ).toThrow('config key "attn_config.alibi_bias_max" must be a positive number, got "big"');
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
