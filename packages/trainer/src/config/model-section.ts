import { TrainConfigError } from './errors.js';
import type { Json, Section } from './section.js';

export interface ModelSectionConfig {
  name: 'mpt_causal_lm';
  /** A local HF directory to fine-tune from (hub ids cannot be downloaded here). */
  pretrainedModelNameOrPath?: string;
  /** MPT keys in the llm-foundry `mpt` dialect, ready for mpt-model's `parseMptConfig`. */
  mptConfig: Json;
}

const ATTN_KEYS = [
  'attn_type',
  'attn_pdrop',
  'attn_impl',
  'qk_ln',
  'qk_gn',
  'clip_qkv',
  'softmax_scale',
  'prefix_lm',
  'attn_uses_sequence_id',
  'sliding_window_size',
  'alibi',
  'alibi_bias_max',
  'rope',
  'kv_n_heads',
];
const INIT_KEYS = [
  'name',
  'fan_mode',
  'init_nonlinearity',
  'init_div_is_residual',
  'emb_init_std',
  'emb_init_uniform_lim',
  'init_std',
  'init_gain',
  'verbose',
];
const MODEL_KEYS = [
  'd_model',
  'n_heads',
  'n_layers',
  'expansion_ratio',
  'max_seq_len',
  'vocab_size',
  'resid_pdrop',
  'emb_pdrop',
  'learned_pos_emb',
  'logit_scale',
  'no_bias',
  'embedding_fraction',
  'norm_type',
  'layer_norm_epsilon',
  'use_cache',
  'tokenizer_name',
  'init_device',
];
/** llm-foundry MPTConfig defaults for the keys parseMptConfig requires. */
const MODEL_DEFAULTS: Json = {
  d_model: 2048,
  n_heads: 16,
  n_layers: 24,
  max_seq_len: 2048,
  vocab_size: 50368,
};

/** Reads the `model` section: llm-foundry's `mpt_causal_lm`, or `hf_causal_lm` from a local directory. */
export function readModel(s: Section): ModelSectionConfig {
  const name = s.oneOf('name', ['mpt_causal_lm', 'hf_causal_lm'] as const) ?? 'mpt_causal_lm';
  const pretrained = s.str('pretrained_model_name_or_path');
  s.accept('pretrained', 'use_auth_token', 'loss_fn', 'use_flash_attention_2', 'trust_remote_code');
  const mpt: Json = { model_type: 'mpt' };
  for (const k of MODEL_KEYS) if (s.has(k)) mpt[k] = s.raw(k);
  for (const [k, keys] of [
    ['attn_config', ATTN_KEYS],
    ['init_config', INIT_KEYS],
  ] as const) {
    const sub = s.optionalSection(k);
    if (!sub) continue;
    sub.accept(...keys);
    sub.finish();
    mpt[k] = sub.obj;
  }
  const overrides = s.optionalSection('config_overrides');
  if (overrides) {
    overrides.accept(...MODEL_KEYS, 'attn_config', 'init_config');
    overrides.finish();
    Object.assign(mpt, overrides.obj);
  }
  s.finish();
  if (name === 'hf_causal_lm' && !pretrained) {
    throw new TrainConfigError(
      'config key "model.pretrained_model_name_or_path" is required for hf_causal_lm',
    );
  }
  if (!pretrained) for (const [k, v] of Object.entries(MODEL_DEFAULTS)) if (mpt[k] === undefined) mpt[k] = v;
  return {
    name: 'mpt_causal_lm',
    mptConfig: mpt,
    ...(pretrained ? { pretrainedModelNameOrPath: pretrained } : {}),
  };
}
