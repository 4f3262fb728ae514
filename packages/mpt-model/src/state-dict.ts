import type { MPTConfig } from './config.js';

/** Every parameter an MPT model of this config has, with its shape, in llm-foundry naming. */
export function expectedParameterShapes(config: MPTConfig): Map<string, number[]> {
  const d = config.dModel;
  const hidden = Math.round(config.expansionRatio * d);
  const shapes = new Map<string, number[]>();
  shapes.set('transformer.wte.weight', [config.vocabSize, d]);
  if (config.learnedPosEmb) shapes.set('transformer.wpe.weight', [config.maxSeqLen, d]);
  const norm = (name: string) => {
    shapes.set(`${name}.weight`, [d]);
    if (!config.noBias) shapes.set(`${name}.bias`, [d]);
  };
  const linear = (name: string, out: number, inp: number) => {
    shapes.set(`${name}.weight`, [out, inp]);
    if (!config.noBias) shapes.set(`${name}.bias`, [out]);
  };
  for (let i = 0; i < config.nLayers; i++) {
    const p = `transformer.blocks.${i}`;
    norm(`${p}.norm_1`);
    linear(`${p}.attn.Wqkv`, 3 * d, d);
    if (config.qkLn) {
      norm(`${p}.attn.q_ln`);
      norm(`${p}.attn.k_ln`);
    }
    linear(`${p}.attn.out_proj`, d, d);
    norm(`${p}.norm_2`);
    linear(`${p}.ffn.up_proj`, hidden, d);
    linear(`${p}.ffn.down_proj`, d, hidden);
  }
  norm('transformer.norm_f');
  return shapes;
}
