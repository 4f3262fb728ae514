/**
 * Parameter names: MosaicGPT checkpoints (`ln_1`, `mlp.mlp_up`, `ln_f`) map to llm-foundry MPT names (`norm_1`,
 * `ffn.up_proj`, `norm_f`), the names a StateDict uses. Buffers that some checkpoints carry (ALiBi / causal masks)
 * are not parameters and are dropped.
 */

const MOSAIC_TO_MPT: [RegExp, string][] = [
  [/^transformer\.blocks\.(\d+)\.ln_1\./, 'transformer.blocks.$1.norm_1.'],
  [/^transformer\.blocks\.(\d+)\.ln_2\./, 'transformer.blocks.$1.norm_2.'],
  [/^transformer\.blocks\.(\d+)\.mlp\.mlp_up\./, 'transformer.blocks.$1.ffn.up_proj.'],
  [/^transformer\.blocks\.(\d+)\.mlp\.mlp_down\./, 'transformer.blocks.$1.ffn.down_proj.'],
  [/^transformer\.ln_f\./, 'transformer.norm_f.'],
];

const MPT_TO_MOSAIC: [RegExp, string][] = [
  [/^transformer\.blocks\.(\d+)\.norm_1\./, 'transformer.blocks.$1.ln_1.'],
  [/^transformer\.blocks\.(\d+)\.norm_2\./, 'transformer.blocks.$1.ln_2.'],
  [/^transformer\.blocks\.(\d+)\.ffn\.up_proj\./, 'transformer.blocks.$1.mlp.mlp_up.'],
  [/^transformer\.blocks\.(\d+)\.ffn\.down_proj\./, 'transformer.blocks.$1.mlp.mlp_down.'],
  [/^transformer\.norm_f\./, 'transformer.ln_f.'],
];

// Non-parameter buffers: MosaicGPT's `attn_bias` (ALiBi / causal mask) and GPT-2-style `attn.bias` /
// `attn.masked_bias` masks.
const BUFFER = /(^|\.)attn_bias$|\.attn\.(bias|masked_bias)$/;

/** True for checkpoint entries that are buffers, not parameters. */
export function isBufferName(name: string): boolean {
  return BUFFER.test(name);
}

function rename(name: string, rules: [RegExp, string][]): string {
  for (const [pattern, replacement] of rules) {
    if (pattern.test(name)) return name.replace(pattern, replacement);
  }
  return name;
}

/**
 * The llm-foundry MPT name of a checkpoint entry (either naming, with or without a leading `model.`), or null for
 * a buffer that is not a parameter.
 */
export function toMptName(name: string): string | null {
  const bare = name.startsWith('model.') ? name.slice('model.'.length) : name;
  if (isBufferName(bare)) return null;
  return rename(bare, MOSAIC_TO_MPT);
}

/** The MosaicGPT name of an llm-foundry MPT parameter name. */
export function toMosaicGptName(name: string): string {
  return rename(name, MPT_TO_MOSAIC);
}
