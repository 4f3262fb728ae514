// Maps llm-foundry parameter names to the typed parameter groups each unit of the model takes.
import type { Int8Weight, LinearLayout, LinearParams, NormParams } from '@mptjs/kernels';
import type * as tf from '@tensorflow/tfjs-core';
import type { MPTConfig } from './config.js';

/** Any name -> tensor lookup (the model's Variables, or a gathered FSDP shard). */
export type ParameterLookup = (name: string) => tf.Tensor;

/** Weight-only int8 copies by parameter name (a quantized model's block matrices and output head). */
export type Int8Lookup = (name: string) => Int8Weight | undefined;

/** Name under which a quantized model keeps the int8 copy of the tied output matrix. */
export const INT8_HEAD = 'transformer.wte.weight:head';

export interface EmbeddingParams {
  wte: tf.Tensor;
  wpe?: tf.Tensor;
}

export interface BlockParams {
  norm1: NormParams;
  wqkv: LinearParams;
  qLn?: NormParams;
  kLn?: NormParams;
  outProj: LinearParams;
  norm2: NormParams;
  upProj: LinearParams;
  downProj: LinearParams;
}

export interface HeadParams {
  normF: NormParams;
  /** The tied output matrix: the token embedding `[vocab, d_model]`. */
  wte: tf.Tensor;
  /** Int8 copy of `wte` for the output projection only (lookups keep reading the float32 `wte`). */
  wteInt8?: Int8Weight;
}

export const blockPrefix = (i: number) => `transformer.blocks.${i}`;

function affine(config: MPTConfig, get: ParameterLookup, name: string): NormParams & LinearParams {
  return config.noBias
    ? { weight: get(`${name}.weight`) }
    : { weight: get(`${name}.weight`), bias: get(`${name}.bias`) };
}

export function embeddingParams(config: MPTConfig, get: ParameterLookup): EmbeddingParams {
  const wte = get('transformer.wte.weight');
  return config.learnedPosEmb ? { wte, wpe: get('transformer.wpe.weight') } : { wte };
}

/** The block's matrices (the ones `linearLayout: 'inOut'` stores transposed). */
export const BLOCK_LINEARS = ['attn.Wqkv', 'attn.out_proj', 'ffn.up_proj', 'ffn.down_proj'] as const;

/** True for the weight of a block linear layer (`transformer.blocks.{i}.attn.Wqkv.weight`, ...). */
export function isBlockLinearWeight(name: string): boolean {
  return /^transformer\.blocks\.\d+\.(attn\.Wqkv|attn\.out_proj|ffn\.up_proj|ffn\.down_proj)\.weight$/.test(
    name,
  );
}

export function blockParams(
  config: MPTConfig,
  get: ParameterLookup,
  layer: number,
  layout: LinearLayout = 'outIn',
  int8?: Int8Lookup,
): BlockParams {
  const p = blockPrefix(layer);
  const lin = (name: string): LinearParams => {
    const q = int8?.(`${name}.weight`);
    if (!q) return { ...affine(config, get, name), layout };
    // The float32 matrix is not kept: `weight` names the packed bytes, which only `int8` reads.
    const bias = config.noBias ? {} : { bias: get(`${name}.bias`) };
    return { weight: q.packed, int8: q, ...bias };
  };
  const params: BlockParams = {
    norm1: affine(config, get, `${p}.norm_1`),
    wqkv: lin(`${p}.attn.Wqkv`),
    outProj: lin(`${p}.attn.out_proj`),
    norm2: affine(config, get, `${p}.norm_2`),
    upProj: lin(`${p}.ffn.up_proj`),
    downProj: lin(`${p}.ffn.down_proj`),
  };
  if (config.qkLn) {
    params.qLn = affine(config, get, `${p}.attn.q_ln`);
    params.kLn = affine(config, get, `${p}.attn.k_ln`);
  }
  return params;
}

export function headParams(config: MPTConfig, get: ParameterLookup, int8?: Int8Lookup): HeadParams {
  const head: HeadParams = {
    normF: affine(config, get, 'transformer.norm_f'),
    wte: get('transformer.wte.weight'),
  };
  const q = int8?.(INT8_HEAD);
  if (q) head.wteInt8 = q;
  return head;
}
