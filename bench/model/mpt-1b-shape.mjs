// The mpt-1b-redpajama-200b shape shared by the model benches, and the per-token cost formulas they report against.
import { parseMptConfig } from '@mptjs/mpt-model';

/** The hub config of mpt-1b-redpajama-200b (MosaicGPT dialect), with `layers` of its 24 blocks. */
export function mpt1bConfig(layers = 24) {
  return parseMptConfig({
    model_type: 'mosaic_gpt',
    d_model: 2048,
    n_heads: 16,
    n_layers: layers,
    mlp_ratio: 4,
    max_seq_len: 2048,
    vocab_size: 50432,
    alibi: true,
    alibi_bias_max: 8,
    attn_qk_ln: true,
    no_bias: true,
    low_precision_layernorm: true,
  });
}

/** fp32 bytes of weights read per decoded token: every block's matrices and norms, plus the tied head. */
export function decodeBytesPerToken(config, layers = config.nLayers) {
  const d = config.dModel;
  return 4 * (layers * (12 * d * d + 6 * d) + config.vocabSize * d + d);
}

/** Prefill FLOPs: 24 d^2 per token per block, attention 4 d per visible key, the head on the last position only. */
export function prefillFlops(config, promptLength, layers = config.nLayers) {
  const d = config.dModel;
  const attention = 4 * d * ((promptLength * (promptLength + 1)) / 2);
  return layers * (24 * d * d * promptLength + attention) + 2 * d * config.vocabSize;
}
