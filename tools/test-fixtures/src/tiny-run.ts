// Builds a small, real training setup on disk for tests: a byte-level BPE tokenizer.json (256 byte tokens plus
// <|endoftext|>, a few merges), JSON-lines streams, and an llm-foundry YAML config for a tiny MPT.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from './random.js';

/** GPT-2's byte -> printable character table (what ByteLevel pre-tokenization maps bytes to). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const map: string[] = new Array(256);
  for (const b of bs) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  return map;
}

export const TINY_VOCAB_SIZE = 264;

export function writeTinyTokenizer(path: string): void {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  chars.forEach((c, b) => {
    vocab[c] = b + 1;
  });
  const merges = ['t h', 'Ġ t', 'e r', 'i n', 'a n'];
  merges.forEach((m, i) => {
    vocab[m.replace(' ', '')] = 257 + i;
  });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 0,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  writeFileSync(path, JSON.stringify(tokenizer));
}

const WORDS =
  'the quick brown fox jumps over lazy dogs in winter and then there were many interesting patterns'.split(
    ' ',
  );

/** Deterministic pseudo-text documents. */
export function writeJsonlStream(dir: string, docs: number, seed: number): void {
  mkdirSync(dir, { recursive: true });
  const rand = seededRandom(seed);
  const lines: string[] = [];
  for (let d = 0; d < docs; d++) {
    const n = 8 + Math.floor(rand() * 30);
    const text = Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');
    lines.push(JSON.stringify({ text, meta: { doc: d } }));
  }
  writeFileSync(join(dir, 'data.jsonl'), `${lines.join('\n')}\n`);
}

export interface TinyRunOptions {
  maxDuration?: string;
  saveInterval?: string;
  extra?: string;
}

/** Writes tokenizer, two train streams, an eval split and `config.yaml` into `dir`; returns the config path. */
export function writeTinyRun(dir: string, opts: TinyRunOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  writeTinyTokenizer(join(dir, 'tokenizer.json'));
  writeJsonlStream(join(dir, 'data/web/train'), 60, 1);
  writeJsonlStream(join(dir, 'data/code/train'), 40, 2);
  writeJsonlStream(join(dir, 'data/web/val'), 20, 3);
  const yaml = `
variables:
  data: ${join(dir, 'data')}
  max_seq_len: 32
run_name: tiny
seed: 7
max_seq_len: \${variables.max_seq_len}
model:
  name: mpt_causal_lm
  d_model: 32
  n_heads: 4
  n_layers: 2
  expansion_ratio: 4
  max_seq_len: \${variables.max_seq_len}
  vocab_size: ${TINY_VOCAB_SIZE}
  no_bias: true
  attn_config:
    alibi: true
    qk_ln: true
tokenizer:
  name: ${join(dir, 'tokenizer.json')}
train_loader:
  name: text
  dataset:
    max_seq_len: \${variables.max_seq_len}
    shuffle: true
    shuffle_seed: 11
    streams:
      web:
        local: \${variables.data}/web
        split: train
        proportion: 0.6
      code:
        local: \${variables.data}/code
        split: train
        proportion: 0.4
  drop_last: true
eval_loader:
  name: text
  dataset:
    local: \${variables.data}/web
    split: val
    max_seq_len: \${variables.max_seq_len}
    shuffle: false
eval_interval: 3ba
eval_subset_num_batches: 2
device_eval_batch_size: 4
optimizer:
  name: decoupled_adamw
  lr: 3.0e-3
  betas: [0.9, 0.95]
  eps: 1.0e-8
  weight_decay: 1.0e-4
scheduler:
  name: cosine_with_warmup
  t_warmup: 2ba
  alpha_f: 0.1
algorithms:
  gradient_clipping:
    clipping_type: norm
    clipping_threshold: 1.0
max_duration: ${opts.maxDuration ?? '6ba'}
global_train_batch_size: 4
device_train_microbatch_size: 2
save_interval: ${opts.saveInterval ?? '3ba'}
save_num_checkpoints_to_keep: 2
console_log_interval: 1ba
precision: fp32
${opts.extra ?? ''}
`;
  const path = join(dir, 'config.yaml');
  writeFileSync(path, yaml);
  return path;
}
