import { type MPTConfig, parseMptConfig } from '../config.js';

/** A small `mpt`-dialect config for fast tests; override any field. */
export function tinyConfig(overrides: Partial<MPTConfig> = {}): MPTConfig {
  const base = parseMptConfig({
    model_type: 'mpt',
    d_model: 24,
    n_heads: 3,
    n_layers: 2,
    expansion_ratio: 4,
    max_seq_len: 64,
    vocab_size: 40,
    no_bias: true,
    attn_config: { alibi: true, qk_ln: true, alibi_bias_max: 8 },
  });
  return { ...base, ...overrides };
}
