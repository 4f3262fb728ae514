import type { MPTConfig } from '../config.js';
import { initStateDict } from '../init.js';
import { type ModelOptions, MPTModel } from '../model.js';
import { tinyConfig } from './tiny-config.js';

/** What the recorded decode steps' tests compare with the tfjs path. */
export const DECODE_PROMPT = [3, 1, 4, 1, 5, 9, 2];

/** A tiny model of `max_seq_len` 16 with seeded weights; override any config field or model option. */
export function tinyDecodeModel(overrides: Partial<MPTConfig> = {}, options: ModelOptions = {}): MPTModel {
  const config = tinyConfig({ maxSeqLen: 16, ...overrides });
  return MPTModel.fromStateDict(config, initStateDict(config, 5), options);
}

/** Logits of the tfjs path, one sequence alone, after `start` and after each of `tokens`. */
export async function tfjsLogits(
  model: MPTModel,
  start: number[],
  tokens: number[],
): Promise<Float32Array[]> {
  const cache = model.newCache();
  const out = [(await model.prefill([start], cache).data()) as Float32Array];
  for (const t of tokens) out.push((await model.decodeStep([t], cache).data()) as Float32Array);
  cache.dispose();
  return out;
}

/** The model variants each recorded step is checked on: the kernels each config or layout selects. */
export const DECODE_CASES: [string, Partial<MPTConfig>, ModelOptions][] = [
  ['ALiBi + QK-LN, no bias', {}, {}],
  ['ALiBi + QK-LN, no bias, [in, out] weights', {}, { linearLayout: 'inOut' }],
  [
    'biases, learned positions, clip_qkv, softmax_scale, logit_scale',
    {
      noBias: false,
      alibi: false,
      learnedPosEmb: true,
      qkLn: false,
      clipQkv: 0.5,
      softmaxScale: 0.3,
      logitScale: 0.5,
    },
    {},
  ],
];
