/**
 * MPT model configuration. Reads both dialects found on the hub: the flat MosaicGPT `config.json`
 * (`model_type: "mosaic_gpt"`, the one mpt-1b-redpajama-200b ships) and llm-foundry's `mpt` (nested `attn_config`),
 * and writes the `mpt` one.
 */

import { type AttentionImplName, attentionImplNames } from '@mptjs/alibi-attention';

export type ModelType = 'mpt' | 'mosaic_gpt';
/** `attn_impl`: a name in `@mptjs/alibi-attention`'s registry (`torch`, `flash`, `triton`, or one a user added). */
export type AttnImpl = AttentionImplName;
export type NormType = 'layernorm' | 'low_precision_layernorm';

export interface MPTConfig {
  /** Decides the ALiBi slope formula (see alibi-attention) and the weight names of the source checkpoint. */
  modelType: ModelType;
  dModel: number;
  nHeads: number;
  nLayers: number;
  /** MLP hidden size is `expansionRatio * dModel` (`mlp_ratio` in MosaicGPT). */
  expansionRatio: number;
  maxSeqLen: number;
  vocabSize: number;
  alibi: boolean;
  alibiBiasMax: number;
  /** Learned position embeddings (`wpe`); MPT uses them only when ALiBi is off. */
  learnedPosEmb: boolean;
  qkLn: boolean;
  clipQkv: number | null;
  softmaxScale: number | null;
  noBias: boolean;
  embeddingFraction: number;
  /** Resolved multiplier for the logits (`"inv_sqrt_d_model"` becomes `1/sqrt(d_model)`), or null. */
  logitScale: number | null;
  normType: NormType;
  layerNormEps: number;
  attnImpl: AttnImpl;
  attnPdrop: number;
  residPdrop: number;
  embPdrop: number;
  initStd: number;
  tokenizerName: string | null;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;

const DEFAULTS: Omit<MPTConfig, 'modelType' | 'dModel' | 'nHeads' | 'nLayers' | 'vocabSize' | 'maxSeqLen'> = {
  expansionRatio: 4,
  alibi: false,
  alibiBiasMax: 8,
  learnedPosEmb: true,
  qkLn: false,
  clipQkv: null,
  softmaxScale: null,
  noBias: false,
  embeddingFraction: 1,
  logitScale: null,
  normType: 'low_precision_layernorm',
  layerNormEps: 1e-5,
  attnImpl: 'torch',
  attnPdrop: 0,
  residPdrop: 0,
  embPdrop: 0,
  initStd: 0.02,
  tokenizerName: null,
};

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Reader {
  constructor(
    private readonly obj: Json,
    private readonly prefix: string,
  ) {}

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  private fail(key: string, expected: string): never {
    throw new ConfigError(
      `config key "${this.prefix}${key}" must be ${expected}, got ${JSON.stringify(this.obj[key])}`,
    );
  }

  int(key: string, fallback?: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ConfigError(`config key "${this.prefix}${key}" is required`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(
        key,
        max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`,
      );
    }
    return v;
  }

  num(
    key: string,
    fallback: number,
    check: (n: number) => boolean = Number.isFinite,
    expected = 'a number',
  ): number {
    const v = this.obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !check(v)) this.fail(key, expected);
    return v;
  }

  numOrNull(key: string, check: (n: number) => boolean, expected: string): number | null {
    const v = this.obj[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !check(v)) this.fail(key, expected);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(key, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
    }
    return v as T;
  }

  str(key: string): string | null {
    const v = this.obj[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  logitScale(key: string, dModel: number): number | null {
    const v = this.obj[key];
    if (v === undefined || v === null) return null;
    if (v === 'inv_sqrt_d_model') return 1 / Math.sqrt(dModel);
    if (typeof v !== 'number' || !Number.isFinite(v) || v === 0) {
      this.fail(key, 'a non-zero number or "inv_sqrt_d_model"');
    }
    return v;
  }
}

/**
 * Upper bounds on the sizes a config may ask for. Each is far above any published MPT (mpt-30b: d_model 7168,
 * 48 layers, 8192 positions) yet small enough that a typo or a hostile file fails at parse time with the key's
 * name, instead of allocating gigabytes before some later shape check.
 */
export const CONFIG_LIMITS = {
  d_model: 65_536,
  n_heads: 1_024,
  n_layers: 1_024,
  max_seq_len: 1_048_576,
  vocab_size: 4_194_304,
  expansion_ratio: 64,
} as const;

const positive = (n: number) => Number.isFinite(n) && n > 0;
const ratio = (n: number) => positive(n) && n <= CONFIG_LIMITS.expansion_ratio;
const fraction = (n: number) => Number.isFinite(n) && n > 0 && n <= 1;
const probability = (n: number) => Number.isFinite(n) && n >= 0 && n < 1;

/** Parses a `config.json` object of either dialect, validating every value it uses. */
export function parseMptConfig(json: unknown): MPTConfig {
  if (!isObject(json)) throw new ConfigError('config must be a JSON object');
  const top = new Reader(json, '');
  const modelType = top.oneOf(
    'model_type',
    ['mpt', 'mosaic_gpt'] as const,
    'attn_config' in json ? 'mpt' : 'mosaic_gpt',
  );
  const dModel = top.int('d_model', undefined, 1, CONFIG_LIMITS.d_model);
  const nHeads = top.int('n_heads', undefined, 1, CONFIG_LIMITS.n_heads);
  const base = {
    modelType,
    dModel,
    nHeads,
    nLayers: top.int('n_layers', undefined, 1, CONFIG_LIMITS.n_layers),
    maxSeqLen: top.int('max_seq_len', undefined, 1, CONFIG_LIMITS.max_seq_len),
    vocabSize: top.int('vocab_size', undefined, 1, CONFIG_LIMITS.vocab_size),
    noBias: top.bool('no_bias', DEFAULTS.noBias),
    embeddingFraction: top.num('embedding_fraction', DEFAULTS.embeddingFraction, fraction, 'in (0, 1]'),
    logitScale: top.logitScale('logit_scale', dModel),
    layerNormEps: top.num('layer_norm_epsilon', DEFAULTS.layerNormEps, positive, 'a positive number'),
    residPdrop: top.num('resid_pdrop', 0, probability, 'in [0, 1)'),
    embPdrop: top.num('emb_pdrop', 0, probability, 'in [0, 1)'),
    tokenizerName: top.str('tokenizer_name'),
  };
  if (dModel % nHeads !== 0) {
    throw new ConfigError(`config key "d_model" (${dModel}) must be divisible by "n_heads" (${nHeads})`);
  }

  let rest: Omit<MPTConfig, keyof typeof base>;
  if (modelType === 'mosaic_gpt') {
    rest = {
      expansionRatio: top.num(
        'mlp_ratio',
        DEFAULTS.expansionRatio,
        ratio,
        `a positive number <= ${CONFIG_LIMITS.expansion_ratio}`,
      ),
      alibi: top.bool('alibi', DEFAULTS.alibi),
      alibiBiasMax: top.num('alibi_bias_max', DEFAULTS.alibiBiasMax, positive, 'a positive number'),
      learnedPosEmb: !top.bool('alibi', DEFAULTS.alibi),
      qkLn: top.bool('attn_qk_ln', DEFAULTS.qkLn),
      clipQkv: top.numOrNull('attn_clip_qkv', positive, 'a positive number or null'),
      softmaxScale: top.numOrNull('softmax_scale', positive, 'a positive number or null'),
      normType: top.bool('low_precision_layernorm', true) ? 'low_precision_layernorm' : 'layernorm',
      attnImpl: top.oneOf('attn_impl', attentionImplNames(), DEFAULTS.attnImpl),
      attnPdrop: top.num('attn_pdrop', 0, probability, 'in [0, 1)'),
      initStd: top.num('init_std', DEFAULTS.initStd, positive, 'a positive number'),
    };
  } else {
    const attn = json['attn_config'] ?? {};
    if (!isObject(attn)) throw new ConfigError('config key "attn_config" must be an object');
    const a = new Reader(attn, 'attn_config.');
    const attnType = a.oneOf('attn_type', ['multihead_attention'] as const, 'multihead_attention');
    void attnType;
    const init = isObject(json['init_config']) ? new Reader(json['init_config'], 'init_config.') : undefined;
    const alibi = a.bool('alibi', DEFAULTS.alibi);
    rest = {
      expansionRatio: top.num(
        'expansion_ratio',
        DEFAULTS.expansionRatio,
        ratio,
        `a positive number <= ${CONFIG_LIMITS.expansion_ratio}`,
      ),
      alibi,
      alibiBiasMax: a.num('alibi_bias_max', DEFAULTS.alibiBiasMax, positive, 'a positive number'),
      learnedPosEmb: top.bool('learned_pos_emb', !alibi),
      qkLn: a.bool('qk_ln', DEFAULTS.qkLn),
      clipQkv: a.numOrNull('clip_qkv', positive, 'a positive number or null'),
      softmaxScale: a.numOrNull('softmax_scale', positive, 'a positive number or null'),
      normType: top.oneOf('norm_type', ['layernorm', 'low_precision_layernorm'] as const, DEFAULTS.normType),
      attnImpl: a.oneOf('attn_impl', attentionImplNames(), DEFAULTS.attnImpl),
      attnPdrop: a.num('attn_pdrop', 0, probability, 'in [0, 1)'),
      initStd: init?.num('init_std', DEFAULTS.initStd, positive, 'a positive number') ?? DEFAULTS.initStd,
    };
  }
  rejectUnsupported(json);
  const config = { ...base, ...rest };
  for (const [key, value] of [
    ['attn_pdrop', config.attnPdrop],
    ['resid_pdrop', config.residPdrop],
    ['emb_pdrop', config.embPdrop],
  ] as const) {
    if (value !== 0)
      throw new ConfigError(`config key "${key}" = ${value}: dropout is not implemented; set it to 0`);
  }
  return config;
}

/**
 * MPT options that change the computation but that this implementation does not have. Accepting and ignoring
 * them would silently run a different model, so each one is an error naming the key.
 */
function rejectUnsupported(json: Json): void {
  const attn = isObject(json['attn_config']) ? json['attn_config'] : {};
  const nHeads = json['n_heads'];
  const checks: [string, unknown, (v: unknown) => boolean][] = [
    ['prefix_lm', json['prefix_lm'] ?? attn['prefix_lm'], (v) => v === true],
    [
      'attn_uses_sequence_id',
      json['attn_uses_sequence_id'] ?? attn['attn_uses_sequence_id'],
      (v) => v === true,
    ],
    ['attn_config.rope', attn['rope'], (v) => v === true],
    ['attn_config.qk_gn', attn['qk_gn'], (v) => v === true],
    ['attn_config.kv_n_heads', attn['kv_n_heads'], (v) => v !== undefined && v !== null && v !== nHeads],
    [
      'attn_config.sliding_window_size',
      attn['sliding_window_size'],
      (v) => v !== undefined && v !== null && v !== -1,
    ],
    [
      'ffn_config.ffn_type',
      isObject(json['ffn_config']) ? json['ffn_config']['ffn_type'] : undefined,
      (v) => v !== undefined && v !== 'mptmlp',
    ],
    [
      'ffn_config.ffn_act_fn',
      isObject(json['ffn_config']) ? json['ffn_config']['ffn_act_fn'] : undefined,
      (v) => v !== undefined && v !== null,
    ],
  ];
  for (const [key, value, unsupported] of checks) {
    if (unsupported(value)) {
      throw new ConfigError(
        `config key "${key}" = ${JSON.stringify(value)} is not supported by this MPT implementation`,
      );
    }
  }
}

/** The llm-foundry `mpt` dialect of `config.json`, as exports write it. */
export function toMptConfigJson(config: MPTConfig): Json {
  return {
    architectures: ['MPTForCausalLM'],
    model_type: 'mpt',
    d_model: config.dModel,
    n_heads: config.nHeads,
    n_layers: config.nLayers,
    expansion_ratio: config.expansionRatio,
    max_seq_len: config.maxSeqLen,
    vocab_size: config.vocabSize,
    resid_pdrop: config.residPdrop,
    emb_pdrop: config.embPdrop,
    learned_pos_emb: config.learnedPosEmb,
    attn_config: {
      attn_type: 'multihead_attention',
      attn_pdrop: config.attnPdrop,
      attn_impl: config.attnImpl,
      qk_ln: config.qkLn,
      clip_qkv: config.clipQkv,
      softmax_scale: config.softmaxScale,
      prefix_lm: false,
      attn_uses_sequence_id: false,
      alibi: config.alibi,
      alibi_bias_max: config.alibiBiasMax,
    },
    init_device: 'cpu',
    logit_scale: config.logitScale,
    no_bias: config.noBias,
    embedding_fraction: config.embeddingFraction,
    norm_type: config.normType,
    layer_norm_epsilon: config.layerNormEps,
    use_cache: false,
    init_config: { name: 'kaiming_normal_', init_std: config.initStd },
    tokenizer_name: config.tokenizerName ?? undefined,
    torch_dtype: 'float32',
  };
}
