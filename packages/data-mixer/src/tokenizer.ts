// The mixer needs only "text -> ids" and the EOS id. Tokenizers are described by a spec (a path and a library)
// so that a worker thread can build its own copy: functions cannot cross thread boundaries.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@mptjs/tokenizer';

/** What the mixer needs from a tokenizer. `encode` may be synchronous or asynchronous. */
export interface TextTokenizer {
  encode(text: string): ArrayLike<number> | Promise<ArrayLike<number>>;
  /** Optional batched encoding (faster for libraries that parallelise it). */
  encodeBatch?(texts: string[]): Promise<ArrayLike<number>[]>;
}

export const EOS_TOKEN = '<|endoftext|>';

/** Which library loads `tokenizer.json`: ours (`@mptjs/tokenizer`), Hugging Face's Rust binding, or the first that works. */
export type TokenizerLibrary = 'mptjs' | 'hf-tokenizers' | 'auto';

export interface TokenizerSpec {
  /** `tokenizer.json`, or a directory holding one. */
  path: string;
  library?: TokenizerLibrary;
}

export interface LoadedTokenizer {
  tokenizer: TextTokenizer;
  eosId: number;
  library: Exclude<TokenizerLibrary, 'auto'>;
}

/** Resolves `tokenizer.name`: a tokenizer.json file or a directory containing one. */
export function resolveTokenizerFile(path: string): string {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch {
    throw new Error(`tokenizer not found: ${path} (give a tokenizer.json file or a directory holding one)`);
  }
  if (!stats.isDirectory()) return path;
  const file = join(path, 'tokenizer.json');
  try {
    statSync(file);
  } catch {
    throw new Error(`tokenizer directory ${path} has no tokenizer.json`);
  }
  return file;
}

function eosOf(id: number | null | undefined, file: string): number {
  if (typeof id !== 'number') throw new Error(`tokenizer ${file} has no ${EOS_TOKEN} token`);
  return id;
}

async function loadMptjs(file: string): Promise<LoadedTokenizer> {
  const tok = await Tokenizer.fromFile(file);
  // Only `encode`: its `encodeBatch` runs a worker pool of its own that would outlive the mixer's worker.
  const tokenizer: TextTokenizer = { encode: (text) => tok.encode(text) };
  return { tokenizer, eosId: eosOf(tok.tokenToId(EOS_TOKEN), file), library: 'mptjs' };
}

async function loadHfTokenizers(file: string): Promise<LoadedTokenizer> {
  const { Tokenizer } = await import('tokenizers');
  const tok = Tokenizer.fromFile(file);
  const tokenizer: TextTokenizer = {
    encode: async (text) => (await tok.encode(text, null, { addSpecialTokens: false })).getIds(),
    encodeBatch: async (texts) =>
      (await tok.encodeBatch(texts, { addSpecialTokens: false })).map((e) => e.getIds()),
  };
  return { tokenizer, eosId: eosOf(tok.tokenToId(EOS_TOKEN), file), library: 'hf-tokenizers' };
}

/** Loads the tokenizer a spec names. `auto` prefers `@mptjs/tokenizer` and falls back to `tokenizers`. */
export async function loadTokenizer(spec: TokenizerSpec): Promise<LoadedTokenizer> {
  const file = resolveTokenizerFile(spec.path);
  const library = spec.library ?? 'auto';
  if (library === 'mptjs') return loadMptjs(file);
  if (library === 'hf-tokenizers') return loadHfTokenizers(file);
  try {
    return await loadMptjs(file);
  } catch (mptjsError) {
    try {
      return await loadHfTokenizers(file);
    } catch {
      throw mptjsError;
    }
  }
}
