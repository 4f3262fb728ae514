/**
 * Random initialization as llm-foundry's default `init_config: {name: kaiming_normal_}` does it
 * (`kaiming_normal_param_init_fn_` with `init_gain=0`, `fan_mode='fan_in'`, `init_nonlinearity='leaky_relu'`):
 * - every Linear weight (Wqkv per q/k/v slice, which share fan_in) ~ N(0, 2 / fan_in), bias 0;
 * - residual projections (`attn.out_proj`, `ffn.down_proj`) then divided by `sqrt(2 * n_layers)`;
 * - embeddings ~ N(0, 2 / d_model) (kaiming on `[vocab, d_model]`, fan_in = d_model);
 * - LayerNorm weight 1, bias 0.
 */
import type { MPTConfig } from './config.js';
import { deriveSeed, SeededRandom } from './random.js';
import { expectedParameterShapes } from './state-dict.js';
import type { StateDict } from './unit-chain/host-tensor.js';

const RESIDUAL = /\.(attn\.out_proj|ffn\.down_proj)\.weight$/;
const NORM = /(norm_1|norm_2|norm_f|q_ln|k_ln)\.weight$/;

/** The standard deviation llm-foundry's kaiming_normal_ init gives parameter `name` of `shape`. */
export function initStd(config: MPTConfig, name: string, shape: readonly number[]): number {
  if (name.endsWith('.bias') || NORM.test(name)) return 0;
  const fanIn = shape[1]!;
  const std = Math.sqrt(2 / fanIn);
  return RESIDUAL.test(name) ? std / Math.sqrt(2 * config.nLayers) : std;
}

/** A freshly initialized state dict; each parameter draws from its own seed (run seed + name). */
export function initStateDict(config: MPTConfig, seed: number): StateDict {
  const out: StateDict = new Map();
  for (const [name, shape] of expectedParameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (NORM.test(name)) data.fill(1);
    else if (!name.endsWith('.bias'))
      new SeededRandom(deriveSeed(seed, name)).fillNormal(data, initStd(config, name, shape));
    out.set(name, { shape: [...shape], data });
  }
  return out;
}
